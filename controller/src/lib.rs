//! ec2-reconciler: a Kubernetes controller that drives EBS volumes and AMIs toward the state
//! declared in custom resources.
//!
//! Layers, arrows pointing down: `runtime` -> `reconcile` -> {`plan`, `aws`, `api`};
//! `aws` -> the pure values of `plan` (`plan::observed`, `plan::tags`); `plan` -> `api`
//! only. `architecture_test` enforces it.

pub mod api;
pub mod aws;
pub mod plan;
pub mod reconcile;
pub mod runtime;

#[cfg(test)]
mod architecture_test;
