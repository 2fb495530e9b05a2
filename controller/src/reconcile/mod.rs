//! One reconcile per kind: load -> observe -> plan -> execute -> status.

pub mod aws_errors;
pub mod aws_state;
pub mod context;
pub mod ebs_volume;
pub mod error;
pub mod finalizers;
pub mod kind;
pub mod skeleton;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use rand::Rng;

pub use context::{Clock, Context};
pub use error::Error;
pub use kind::ManagedKind;

/// The finalizer that makes deletes pass through the controller.
pub const FINALIZER: &str = "ec2.reconciler.dev/cleanup";

/// Requeues after a failed reconcile, jittered so that many objects failing together do
/// not come back together.
pub fn error_policy<K: ManagedKind>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let _ = (obj, ctx);
    let base = error.base_delay();
    let jitter = rand::rng().random_range(0.8..1.2);
    Action::requeue(Duration::from_secs_f64(base.as_secs_f64() * jitter))
}
