//! What every kind's status has in common, so one reconcile pipeline can write any of them.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::conditions::Condition;
use super::intent::Intent;
use super::{AmiImageStatus, EbsVolumeStatus, EncryptedVolumeMigrationStatus};

/// The fields the pipeline reads and writes in every kind's status.
pub trait KindStatus:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn observed_generation(&self) -> Option<i64>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// `status.plan`: the next actions in words.
    fn set_plan(&mut self, plan: Vec<String>);
    fn intents(&self) -> &[Intent];
    fn intents_mut(&mut self) -> &mut Vec<Intent>;
}

macro_rules! kind_status {
    ($ty:ty) => {
        impl KindStatus for $ty {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn set_conditions(&mut self, conditions: Vec<Condition>) {
                self.conditions = conditions;
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn set_plan(&mut self, plan: Vec<String>) {
                self.plan = plan;
            }
            fn intents(&self) -> &[Intent] {
                &self.intents
            }
            fn intents_mut(&mut self) -> &mut Vec<Intent> {
                &mut self.intents
            }
        }
    };
}

kind_status!(EbsVolumeStatus);
kind_status!(AmiImageStatus);
kind_status!(EncryptedVolumeMigrationStatus);
