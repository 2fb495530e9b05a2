//! The only code that talks to AWS: a narrow trait of the EC2/KMS calls we make and its SDK
//! implementation ([`client`]), batched observation ([`observer`]), ownership tags
//! ([`tags`]), client tokens ([`tokens`]), client-side rate limits and retries ([`rate`]),
//! the actions we call ([`actions`]) and the IAM policy they need ([`iam_policy`]), error classification ([`errors`]) and the call
//! metrics ([`metrics`]).
//!
//! Depends on `api` and `plan::observed` only, never on `reconcile` or `runtime`.

pub mod actions;
pub mod client;
pub mod errors;
pub mod iam_policy;
pub mod identity;
pub mod metrics;
pub mod observer;
pub mod rate;
pub mod tags;
pub mod tokens;

pub use actions::AwsAction;
pub use client::{AwsClients, Ec2, Ec2Client};
pub use errors::AwsError;
pub use metrics::{AwsCallCounter, AwsCallLabels, AwsCallMetrics};
pub use observer::{ImageObserver, ObserverConfig, SnapshotObserver, VolumeEntry, VolumeObserver};
