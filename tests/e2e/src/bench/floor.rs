//! The rate floor: the least time in which the controller's own CreateVolume token bucket
//! lets N creates out, read from the controller's rate configuration (not restated here).

use ec2_reconciler::aws::AwsAction;
use ec2_reconciler::aws::rate::{ActionClass, RateConfig};
use serde::{Deserialize, Serialize};

/// The client-side CreateVolume bucket the controller runs with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Tokens available at once (a full bucket at start).
    pub burst: f64,
    /// Tokens added per second.
    pub refill_per_second: f64,
}

impl Bucket {
    /// The bucket of `ec2-reconciler run --aws-rate-fraction <fraction> --aws-rate-scale
    /// <scale>`.
    pub fn create_volume(fraction: f64, scale: f64) -> Self {
        let config = RateConfig {
            fraction,
            scale,
            ..RateConfig::default()
        };
        let (burst, refill_per_second) = config.bucket(ActionClass::of(AwsAction::CreateVolume));
        Self {
            burst,
            refill_per_second,
        }
    }

    /// Seconds until the bucket has let `n` requests out, starting full: the burst at once,
    /// then one per refill interval.
    pub fn floor_seconds(&self, n: usize) -> f64 {
        let beyond_burst = (n as f64 - self.burst.floor()).max(0.0);
        beyond_burst / self.refill_per_second
    }
}

/// Whether these are the controller's default limits (its `RateConfig::default()`).
pub fn default_limits(fraction: f64, scale: f64) -> bool {
    let default = RateConfig::default();
    fraction == default.fraction && scale == default.scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_floor_is_the_burst_then_the_refill_of_half_the_aws_bucket() {
        // AWS's CreateVolume bucket is 100 and 5/s; half of it is 50 and 2.5/s.
        let bucket = Bucket::create_volume(0.5, 1.0);
        assert_eq!(
            bucket,
            Bucket {
                burst: 50.0,
                refill_per_second: 2.5
            }
        );
        assert_eq!(bucket.floor_seconds(1000), 380.0);
        assert_eq!(bucket.floor_seconds(3000), 1180.0);
        assert_eq!(bucket.floor_seconds(20), 0.0);
        assert!(default_limits(0.5, 1.0));
    }

    #[test]
    fn a_scale_shortens_the_floor_and_is_not_the_default() {
        let bucket = Bucket::create_volume(0.5, 10.0);
        assert_eq!(bucket.floor_seconds(10_000), 380.0);
        assert!(!default_limits(0.5, 10.0));
    }
}
