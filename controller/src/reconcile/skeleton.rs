//! A kind whose AWS behaviour is not built yet goes through the same pipeline: they hold
//! the finalizer so that deletes pass through the controller, plan nothing, and report
//! honestly that they acted on nothing.

use super::error::Result;
use super::pipeline::{Pass, Reconciler};
use super::status::StatusWriter;
use crate::api::EncryptedVolumeMigration;
use crate::plan::core::{NoAction, NoWait, Plan, not_implemented};

macro_rules! not_built_yet {
    ($ty:ty) => {
        impl Reconciler for $ty {
            type Observation = ();
            type Action = NoAction;
            type Wait = NoWait;
            type Plan = Plan<NoAction, NoWait>;

            async fn observe(_pass: &Pass<'_, Self>) -> Result<()> {
                Ok(())
            }

            fn plan(pass: &Pass<'_, Self>, _: &(), _: &Self::Status) -> Self::Plan {
                // Nothing was ever created in AWS for this object: a deletion is done.
                not_implemented(<$ty as super::ManagedKind>::KIND, pass.deleting)
            }

            fn record(_: &mut Self::Status, _: &(), _: &Self::Plan) {}

            async fn execute(
                _: &Pass<'_, Self>,
                action: &NoAction,
                _: &mut Self::Status,
                _: &mut StatusWriter<'_, Self>,
            ) -> Result<()> {
                match *action {}
            }
        }
    };
}

not_built_yet!(EncryptedVolumeMigration);
