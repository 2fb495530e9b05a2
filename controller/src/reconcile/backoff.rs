//! Per-object backoff: each consecutive failure of the same object doubles its delay (up to
//! a cap), with jitter, and a success forgets it. kube-runtime has none built in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// The longest any object waits between two failed attempts.
const MAX_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records one more failure of `key` and returns how long to wait, starting at `base`.
    pub fn failed(&self, key: &str, base: Duration) -> Duration {
        let failures = match self.failures.lock() {
            Ok(mut map) => {
                let n = map.entry(key.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        let jitter = rand::rng().random_range(0.8..1.2);
        delay(base, failures).mul_f64(jitter).min(MAX_DELAY)
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

/// `base` doubled for each failure after the first, capped.
fn delay(base: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_up_to_the_cap() {
        let base = Duration::from_secs(5);
        assert_eq!(delay(base, 1), Duration::from_secs(5));
        assert_eq!(delay(base, 2), Duration::from_secs(10));
        assert_eq!(delay(base, 4), Duration::from_secs(40));
        assert_eq!(delay(base, 30), MAX_DELAY);
    }

    #[test]
    fn a_success_starts_the_count_again() {
        let b = Backoff::default();
        let base = Duration::from_secs(10);
        b.failed("ns/a", base);
        let second = b.failed("ns/a", base);
        assert!(second >= Duration::from_secs(16), "{second:?}");
        b.succeeded("ns/a");
        let after_success = b.failed("ns/a", base);
        assert!(
            after_success <= Duration::from_secs(12),
            "{after_success:?}"
        );
        // Other objects are independent.
        assert!(b.failed("ns/b", base) <= Duration::from_secs(12));
    }
}
