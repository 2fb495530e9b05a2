//! Per-object backoff: each consecutive failure of the same object doubles its delay (up to
//! a cap), with jitter, and a success forgets it. kube-runtime has none built in. Until the
//! delay has passed the object is held: a pass woken by something else (its own status
//! write, an unrelated event) does not repeat the failed call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// The longest any object waits between two failed attempts.
const MAX_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    retry_at: Instant,
}

#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, Failures>>,
}

impl Backoff {
    /// Records one more failure of `key` and returns how long to wait, starting at `base`
    /// (doubled per consecutive failure, capped, jittered by ±20 %).
    pub fn failed(&self, key: &str, base: Duration) -> Duration {
        let jitter = rand::rng().random_range(0.8..1.2);
        self.hold(key, |count| {
            delay(base, count).mul_f64(jitter).min(MAX_DELAY)
        })
    }

    /// Records one more failure of `key` that is re-checked after `after` exactly (a
    /// rejection, re-checked once per resync whatever the count).
    pub fn rejected(&self, key: &str, after: Duration) -> Duration {
        self.hold(key, |_| after)
    }

    fn hold(&self, key: &str, wait: impl FnOnce(u32) -> Duration) -> Duration {
        let Ok(mut map) = self.failures.lock() else {
            return wait(1);
        };
        let entry = map.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            retry_at: Instant::now(),
        });
        entry.count = entry.count.saturating_add(1);
        let after = wait(entry.count);
        entry.retry_at = Instant::now() + after;
        after
    }

    /// Whether `key` failed and its delay has not passed yet.
    pub fn holding(&self, key: &str) -> bool {
        self.failures
            .lock()
            .ok()
            .and_then(|map| map.get(key).copied())
            .is_some_and(|f| Instant::now() < f.retry_at)
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

    #[tokio::test(start_paused = true)]
    async fn a_failed_object_is_held_until_its_delay_has_passed() {
        let b = Backoff::default();
        assert!(!b.holding("ns/a"));
        let after = b.rejected("ns/a", Duration::from_secs(60));
        assert_eq!(after, Duration::from_secs(60));
        assert!(b.holding("ns/a"));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(b.holding("ns/a"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!b.holding("ns/a"), "re-checked once the delay has passed");
        b.rejected("ns/a", Duration::from_secs(60));
        b.succeeded("ns/a");
        assert!(!b.holding("ns/a"));
    }
}
