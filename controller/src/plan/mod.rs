//! Pure planning: spec + observed AWS state + now -> an ordered list of actions.
//!
//! No I/O, no async, no clock reads: time comes in as a value. Depends on `api` only.

pub mod ami_image;
pub mod core;
pub mod ebs_volume;
pub mod migration;
pub mod observed;
pub mod observed_tags;
pub mod tags;
pub mod tenancy;
