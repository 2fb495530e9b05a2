//! Client-side rate discipline: one token bucket per EC2 action class (a fraction of AWS's
//! own buckets, which every tool in the account shares) and retries with a budget per class,
//! so one throttled API does not slow the others.
//!
//! Bucket sizes: "Request throttling for the Amazon EC2 API" (see `shared/AWS-FACTS.md`).
//! The SDK's own retries are off (`max_attempts` 1): [`RateLimiter::with_retries`] is the
//! only retry loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::actions::AwsAction;
use super::errors::AwsError;

pub mod deferral;

use deferral::{Claim, Reservations};

/// The EC2 throttling buckets an action draws from (plus KMS, which has its own quotas).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Filtered or paginated `Describe*` (100, 20/s).
    Describe,
    /// Unfiltered and unpaginated DescribeVolumes / DescribeSnapshots / DescribeInstances
    /// (50, 10/s). We never make such calls on purpose; kept for completeness.
    UnfilteredDescribe,
    /// Mutating actions not listed elsewhere: ModifyVolume, AttachVolume, DetachVolume,
    /// CopySnapshot, CreateImage, RegisterImage, Enable/DisableImageDeprecation (50, 5/s).
    Mutating,
    /// CreateVolume, CreateSnapshot, DeleteVolume, DeleteSnapshot, DeregisterImage,
    /// ModifyImageAttribute, ModifySnapshotAttribute (100, 5/s).
    CreateDelete,
    /// CopyImage (100, 1/s).
    CopyImage,
    /// CreateTags, DeleteTags (100, 10/s).
    Tags,
    /// KMS DescribeKey and friends (KMS quotas are far larger; 100, 50/s here).
    Kms,
}

impl ActionClass {
    pub const ALL: [ActionClass; 7] = [
        ActionClass::Describe,
        ActionClass::UnfilteredDescribe,
        ActionClass::Mutating,
        ActionClass::CreateDelete,
        ActionClass::CopyImage,
        ActionClass::Tags,
        ActionClass::Kms,
    ];

    /// AWS's bucket for this class: (capacity, refill per second).
    pub fn aws_bucket(self) -> (f64, f64) {
        match self {
            ActionClass::Describe => (100.0, 20.0),
            ActionClass::UnfilteredDescribe => (50.0, 10.0),
            ActionClass::Mutating => (50.0, 5.0),
            ActionClass::CreateDelete => (100.0, 5.0),
            ActionClass::CopyImage => (100.0, 1.0),
            ActionClass::Tags => (100.0, 10.0),
            ActionClass::Kms => (100.0, 50.0),
        }
    }

    /// Whether a call of this class may be deferred to a later pass of its object (see
    /// [`deferral`]): the mutating classes. Reads are merged across objects by the
    /// observers, and KMS lookups are cached and far from their quotas.
    pub fn is_deferrable(self) -> bool {
        matches!(
            self,
            ActionClass::Mutating
                | ActionClass::CreateDelete
                | ActionClass::CopyImage
                | ActionClass::Tags
        )
    }

    /// The bucket `action` draws from. Exhaustive on purpose: a new action must be placed in
    /// the table by hand, since AWS's buckets do not follow the names' prefixes.
    pub fn of(action: AwsAction) -> ActionClass {
        match action {
            AwsAction::CreateVolume
            | AwsAction::CreateSnapshot
            | AwsAction::DeleteVolume
            | AwsAction::DeleteSnapshot
            | AwsAction::DeregisterImage
            | AwsAction::ModifyImageAttribute
            | AwsAction::ModifySnapshotAttribute => ActionClass::CreateDelete,
            AwsAction::CopyImage => ActionClass::CopyImage,
            AwsAction::CreateTags | AwsAction::DeleteTags => ActionClass::Tags,
            AwsAction::KmsDescribeKey => ActionClass::Kms,
            // We always filter or paginate these, so they stay out of the unfiltered bucket.
            // The non-mutating bucket holds every Describe*/Get* action (GetImageBlockPublicAccessState,
            // DescribeImageAttribute included).
            AwsAction::DescribeVolumes
            | AwsAction::DescribeVolumesModifications
            | AwsAction::DescribeSnapshots
            | AwsAction::DescribeInstances
            | AwsAction::DescribeInstanceTypes
            | AwsAction::DescribeImages
            | AwsAction::DescribeImageAttribute
            | AwsAction::DescribeSnapshotAttribute
            | AwsAction::GetImageBlockPublicAccessState
            | AwsAction::GetEbsDefaultKmsKeyId => ActionClass::Describe,
            // Image deprecation and deregistration protection are not listed in AWS's table:
            // default mutating.
            AwsAction::ModifyVolume
            | AwsAction::AttachVolume
            | AwsAction::DetachVolume
            | AwsAction::CopySnapshot
            | AwsAction::CreateImage
            | AwsAction::RegisterImage
            | AwsAction::EnableImageDeprecation
            | AwsAction::DisableImageDeprecation
            | AwsAction::EnableImageDeregistrationProtection
            | AwsAction::DisableImageDeregistrationProtection
            | AwsAction::StopInstances
            | AwsAction::StartInstances
            | AwsAction::ModifyInstanceAttribute => ActionClass::Mutating,
        }
    }
}

/// Whether a failed call may be sent again without risk of doing it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, calls with a ClientToken, and calls whose repeat is harmless or detected
    /// (DeleteVolume, CreateTags): every retryable error is retried.
    Safe,
    /// Calls without a token (CreateSnapshot, CopySnapshot, CreateImage): only throttling (not
    /// applied by AWS) is retried; after a 5xx or a transport error the caller must look for
    /// the resource by its tags before trying again.
    Unsafe,
}

/// The largest [`RateConfig::scale`]: past it a misplaced digit, not a raised quota.
pub const MAX_SCALE: f64 = 100.0;

/// Limits and retry settings, resolved once from configuration.
#[derive(Clone, Debug)]
pub struct RateConfig {
    /// The share of each AWS bucket this controller allows itself (0 < f <= 1; default 0.5).
    pub fraction: f64,
    /// Multiplies every bucket after `fraction`, burst and refill alike (1 <= s <=
    /// [`MAX_SCALE`]; default 1). Above `1 / fraction` the controller asks for more than
    /// AWS's default buckets hold: for an account whose limits AWS raised, or a benchmark
    /// on the emulator, which has no buckets of its own.
    pub scale: f64,
    /// Most attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling for 5xx and transport errors (doubles each attempt, full jitter).
    pub base_backoff: Duration,
    /// First backoff ceiling after throttling.
    pub throttle_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Retry tokens per class (a retry costs [`RETRY_COST`], one after a transport error
    /// [`TRANSPORT_RETRY_COST`]; a success gives one back).
    pub retry_budget: u32,
}

pub const RETRY_COST: u32 = 5;
pub const TRANSPORT_RETRY_COST: u32 = 10;

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            fraction: 0.5,
            scale: 1.0,
            max_attempts: 5,
            base_backoff: Duration::from_millis(200),
            throttle_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            retry_budget: 500,
        }
    }
}

impl RateConfig {
    /// The client-side bucket of `class`: AWS's, times the fraction, times the scale, as
    /// (capacity, refill per second). Values out of range fall back to their defaults
    /// (fraction) or to the nearest bound (scale).
    pub fn bucket(&self, class: ActionClass) -> (f64, f64) {
        let fraction = if self.fraction > 0.0 && self.fraction <= 1.0 {
            self.fraction
        } else {
            RateConfig::default().fraction
        };
        // NaN (from a parsed flag) is no scale at all: 1.
        let scale = if self.scale.is_nan() {
            1.0
        } else {
            self.scale.clamp(1.0, MAX_SCALE)
        };
        let (capacity, refill) = class.aws_bucket();
        (capacity * fraction * scale, refill * fraction * scale)
    }
}

/// A token bucket on tokio's clock. Tokens are reserved in order (the count may go
/// negative), so waiters are served first come, first served.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_sec: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, refill_per_sec: f64) -> Self {
        let capacity = capacity.max(1.0);
        Self {
            capacity,
            refill_per_sec: refill_per_sec.max(0.001),
            state: Mutex::new(BucketState {
                tokens: capacity,
                last: Instant::now(),
            }),
        }
    }

    /// Reserves one token; returns how long to wait before using it.
    fn reserve(&self) -> Duration {
        let Ok(mut s) = self.state.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        s.last = now;
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.refill_per_sec)
        }
    }

    /// Waits for one token.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Retry tokens of one class, in the manner of the SDK's retry quota.
#[derive(Debug)]
struct RetryBudget {
    capacity: u32,
    tokens: Mutex<u32>,
}

impl RetryBudget {
    fn try_take(&self, cost: u32) -> bool {
        let Ok(mut t) = self.tokens.lock() else {
            return false;
        };
        if *t >= cost {
            *t -= cost;
            true
        } else {
            false
        }
    }

    fn give_back(&self, amount: u32) {
        if let Ok(mut t) = self.tokens.lock() {
            *t = (*t + amount).min(self.capacity);
        }
    }

    fn available(&self) -> u32 {
        self.tokens.lock().map(|t| *t).unwrap_or(0)
    }
}

/// The buckets and retry budgets of one account and Region.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    buckets: HashMap<ActionClass, TokenBucket>,
    budgets: HashMap<ActionClass, RetryBudget>,
    reservations: Reservations,
}

impl RateLimiter {
    pub fn new(config: RateConfig) -> Self {
        let buckets = ActionClass::ALL
            .into_iter()
            .map(|c| {
                let (cap, refill) = config.bucket(c);
                (c, TokenBucket::new(cap, refill))
            })
            .collect();
        let budgets = ActionClass::ALL
            .into_iter()
            .map(|c| {
                (
                    c,
                    RetryBudget {
                        capacity: config.retry_budget,
                        tokens: Mutex::new(config.retry_budget),
                    },
                )
            })
            .collect();
        Self {
            config,
            buckets,
            budgets,
            reservations: Reservations::default(),
        }
    }

    pub fn config(&self) -> &RateConfig {
        &self.config
    }

    /// Waits for a token of `class`.
    pub async fn acquire(&self, class: ActionClass) {
        if let Some(bucket) = self.buckets.get(&class) {
            bucket.acquire().await;
        }
    }

    /// The token of a call's first attempt. Inside an object's reconcile, a mutating call
    /// whose token is more than [`deferral::IN_PLACE`] away is deferred: the token is
    /// reserved for the object and [`AwsError::Deferred`] says when it is due.
    async fn first_token(&self, class: ActionClass) -> Result<(), AwsError> {
        if deferral::take_prepaid(class) {
            return Ok(());
        }
        let claim = match self.buckets.get(&class) {
            Some(bucket) if class.is_deferrable() => deferral::with_object(|object| {
                self.reservations.claim(object, class, || bucket.reserve())
            }),
            _ => None,
        };
        match claim {
            // Outside a reconcile, or a read: wait in place.
            None => {
                self.acquire(class).await;
                Ok(())
            }
            Some(Claim::Now(wait)) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Some(Claim::Later(wait)) => Err(AwsError::Deferred { wait }),
        }
    }

    /// Takes, inside an object's reconcile, the token of the mutating call the pass is about
    /// to send, before the action records its intent: either at once (after at most
    /// [`deferral::IN_PLACE`]) and prepaid for that call, or [`AwsError::Deferred`] with
    /// the token reserved for the object's next pass. Elsewhere, and for reads, nothing is
    /// taken: the call waits for its token itself.
    pub async fn admit(&self, class: ActionClass) -> Result<(), AwsError> {
        if !class.is_deferrable() || deferral::with_object(|_| ()).is_none() {
            return Ok(());
        }
        self.first_token(class).await?;
        deferral::prepay(class);
        Ok(())
    }

    /// Tokens reserved for deferred passes, all classes together.
    pub fn reserved(&self) -> usize {
        self.reservations.len()
    }

    /// Retry tokens left for `class`.
    pub fn retry_budget_left(&self, class: ActionClass) -> u32 {
        self.budgets.get(&class).map_or(0, RetryBudget::available)
    }

    /// Runs `op` (each attempt after a token of `class`), retrying retryable errors with
    /// jittered exponential backoff while attempts and the class's retry budget last. The
    /// first attempt of a mutating call inside a reconcile may be deferred instead (see
    /// [`deferral`]); retries, rare and already under way, wait in place.
    pub async fn with_retries<T, F, Fut>(
        &self,
        class: ActionClass,
        idempotency: Idempotency,
        mut op: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let budget = self.budgets.get(&class);
        let mut attempt: u32 = 0;
        let mut spent: u32 = 0;
        loop {
            attempt += 1;
            if attempt == 1 {
                self.first_token(class).await?;
            } else {
                self.acquire(class).await;
            }
            let err = match op().await {
                Ok(value) => {
                    if let Some(b) = budget {
                        b.give_back(if spent > 0 { spent } else { 1 });
                    }
                    return Ok(value);
                }
                Err(err) => err,
            };
            let may_retry = match idempotency {
                Idempotency::Safe => err.is_retryable(),
                Idempotency::Unsafe => err.is_throttled(),
            };
            if !may_retry || attempt >= self.config.max_attempts {
                return Err(err);
            }
            let cost = if matches!(err, AwsError::Transport { .. }) {
                TRANSPORT_RETRY_COST
            } else {
                RETRY_COST
            };
            if !budget.is_some_and(|b| b.try_take(cost)) {
                tracing::debug!(?class, "retry budget spent; not retrying");
                return Err(err);
            }
            spent += cost;
            let delay = self.backoff(&err, attempt);
            tracing::debug!(
                ?class,
                code = err.code(),
                attempt,
                ?delay,
                "retrying an AWS call"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
    fn backoff(&self, err: &AwsError, attempt: u32) -> Duration {
        let base = if err.is_throttled() {
            self.config.throttle_backoff
        } else {
            self.config.base_backoff
        };
        let ceiling = base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.config.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(RateConfig::default())
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn throttled() -> AwsError {
        AwsError::Throttled {
            code: "RequestLimitExceeded".to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_serves_its_burst_at_once_then_at_the_refill_rate() {
        let bucket = TokenBucket::new(10.0, 2.0);
        let start = Instant::now();
        for _ in 0..10 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_up_to_its_capacity_only() {
        let bucket = TokenBucket::new(4.0, 1.0);
        for _ in 0..4 {
            bucket.acquire().await;
        }
        tokio::time::advance(Duration::from_secs(100)).await;
        let start = Instant::now();
        for _ in 0..4 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_uses_the_configured_fraction_of_each_aws_bucket() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        // CopyImage: 100 * 0.5 = 50 burst, then 0.5/s.
        for _ in 0..50 {
            limiter.acquire(ActionClass::CopyImage).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire(ActionClass::CopyImage).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // Another class is untouched by CopyImage's exhaustion.
        let t = Instant::now();
        limiter.acquire(ActionClass::Describe).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scale_multiplies_burst_and_refill_after_the_fraction() {
        let limiter = RateLimiter::new(RateConfig {
            scale: 4.0,
            ..RateConfig::default()
        });
        let start = Instant::now();
        // CreateDelete: 100 * 0.5 * 4 = 200 burst, then 5 * 0.5 * 4 = 10/s.
        for _ in 0..200 {
            limiter.acquire(ActionClass::CreateDelete).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire(ActionClass::CreateDelete).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[test]
    fn a_scale_out_of_range_is_clamped_and_a_bad_fraction_falls_back() {
        let bucket = |fraction: f64, scale: f64| {
            RateConfig {
                fraction,
                scale,
                ..RateConfig::default()
            }
            .bucket(ActionClass::CreateDelete)
        };
        assert_eq!(bucket(0.5, 1.0), (50.0, 2.5));
        assert_eq!(bucket(0.5, 10.0), (500.0, 25.0));
        // Below 1 is the fraction's job; above MAX_SCALE is a typo; NaN is no scale.
        assert_eq!(bucket(0.5, 0.1), (50.0, 2.5));
        assert_eq!(bucket(0.5, 1e9), (5000.0, 250.0));
        assert_eq!(bucket(0.5, f64::NAN), (50.0, 2.5));
        assert_eq!(bucket(0.0, 2.0), (100.0, 5.0));
        assert_eq!(bucket(1.0, 1.0), ActionClass::CreateDelete.aws_bucket());
    }

    #[test]
    fn actions_fall_in_their_documented_classes() {
        assert_eq!(
            ActionClass::of(AwsAction::CreateVolume),
            ActionClass::CreateDelete
        );
        assert_eq!(
            ActionClass::of(AwsAction::DeleteSnapshot),
            ActionClass::CreateDelete
        );
        assert_eq!(
            ActionClass::of(AwsAction::ModifyVolume),
            ActionClass::Mutating
        );
        assert_eq!(
            ActionClass::of(AwsAction::AttachVolume),
            ActionClass::Mutating
        );
        assert_eq!(
            ActionClass::of(AwsAction::DescribeVolumes),
            ActionClass::Describe
        );
        assert_eq!(
            ActionClass::of(AwsAction::CopyImage),
            ActionClass::CopyImage
        );
        assert_eq!(ActionClass::of(AwsAction::CreateTags), ActionClass::Tags);
        for (action, class) in [
            (AwsAction::DescribeImages, ActionClass::Describe),
            (AwsAction::DescribeImageAttribute, ActionClass::Describe),
            (
                AwsAction::GetImageBlockPublicAccessState,
                ActionClass::Describe,
            ),
            (AwsAction::CreateImage, ActionClass::Mutating),
            (AwsAction::RegisterImage, ActionClass::Mutating),
            (AwsAction::EnableImageDeprecation, ActionClass::Mutating),
            (AwsAction::DisableImageDeprecation, ActionClass::Mutating),
            (AwsAction::DeregisterImage, ActionClass::CreateDelete),
            (AwsAction::ModifyImageAttribute, ActionClass::CreateDelete),
        ] {
            assert_eq!(ActionClass::of(action), class, "{action}");
        }
        assert_eq!(ActionClass::of(AwsAction::KmsDescribeKey), ActionClass::Kms);
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_until_success() {
        let limiter = RateLimiter::default();
        let calls = AtomicU32::new(0);
        let out = limiter
            .with_retries(ActionClass::CreateDelete, Idempotency::Safe, || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(throttled())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried() {
        let limiter = RateLimiter::default();
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = limiter
            .with_retries(ActionClass::CreateDelete, Idempotency::Safe, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AwsError::Client {
                    code: "InvalidParameterValue".to_owned(),
                    message: String::new(),
                })
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unsafe_calls_retry_throttling_but_not_server_or_transport_errors() {
        let limiter = RateLimiter::default();
        for (err, expected_calls) in [
            (throttled(), 5),
            (
                AwsError::ServerError {
                    code: "InternalError".to_owned(),
                    message: String::new(),
                },
                1,
            ),
            (
                AwsError::Transport {
                    message: String::new(),
                },
                1,
            ),
        ] {
            let calls = AtomicU32::new(0);
            let out: Result<(), _> = limiter
                .with_retries(ActionClass::CreateDelete, Idempotency::Unsafe, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let err = err.clone();
                    async move { Err(err) }
                })
                .await;
            assert!(out.is_err());
            assert_eq!(calls.load(Ordering::SeqCst), expected_calls, "{err:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_retry_budget_of_one_class_leaves_the_others_alone() {
        let limiter = RateLimiter::new(RateConfig {
            retry_budget: 10,
            ..RateConfig::default()
        });
        let calls = AtomicU32::new(0);
        let _: Result<(), _> = limiter
            .with_retries(ActionClass::CopyImage, Idempotency::Safe, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(throttled())
            })
            .await;
        // Two retries (cost 5 each) spend the budget of 10; the third is refused.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(limiter.retry_budget_left(ActionClass::CopyImage), 0);
        assert_eq!(limiter.retry_budget_left(ActionClass::Describe), 10);

        let calls = AtomicU32::new(0);
        let out = limiter
            .with_retries(ActionClass::Describe, Idempotency::Safe, || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(throttled())
                } else {
                    Ok(())
                }
            })
            .await;
        assert_eq!(out, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_but_stays_under_the_ceiling() {
        let limiter = RateLimiter::default();
        for attempt in 1..10 {
            let d = limiter.backoff(&throttled(), attempt);
            let ceiling = Duration::from_secs(1)
                .saturating_mul(1 << (attempt - 1))
                .min(Duration::from_secs(20));
            assert!(d <= ceiling, "{attempt}: {d:?}");
        }
    }

    /// A CreateVolume sent by `object`'s pass: the number sent so far, or the deferral.
    async fn create_in_pass(
        limiter: &RateLimiter,
        object: &str,
        sent: &AtomicU32,
    ) -> Result<u32, AwsError> {
        deferral::for_object(
            object.to_owned(),
            limiter.with_retries(ActionClass::CreateDelete, Idempotency::Safe, || async {
                Ok(sent.fetch_add(1, Ordering::SeqCst) + 1)
            }),
        )
        .await
    }

    /// Ten passes of ten objects asking for a CreateVolume at the same moment, after the
    /// burst is spent: each one's outcome.
    async fn ten_at_once(limiter: &RateLimiter, sent: &AtomicU32) -> Vec<Result<u32, AwsError>> {
        for i in 0..50 {
            let burst = create_in_pass(limiter, &format!("burst-{i}"), sent).await;
            assert!(burst.is_ok(), "{burst:?}");
        }
        let objects: Vec<String> = (0..10).map(|i| format!("q-{i}")).collect();
        futures::future::join_all(objects.iter().map(|o| create_in_pass(limiter, o, sent))).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_whose_token_is_far_off_is_deferred_and_nothing_is_sent() {
        // CreateDelete at the default fraction: 50 at once, then one every 0.4 s.
        let limiter = RateLimiter::default();
        let sent = AtomicU32::new(0);
        let start = Instant::now();
        let outcomes = ten_at_once(&limiter, &sent).await;
        // Tokens 0.4 s and 0.8 s away are waited for in place; the others are reserved.
        assert_eq!(start.elapsed(), Duration::from_millis(800));
        assert!(outcomes[..2].iter().all(Result::is_ok), "{outcomes:?}");
        let waits: Vec<Duration> = outcomes[2..]
            .iter()
            .map(|o| match o {
                Err(AwsError::Deferred { wait }) => *wait,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<Duration> = (3..=10).map(|k| Duration::from_millis(400 * k)).collect();
        assert_eq!(waits, expected, "in the order they asked");
        assert_eq!(limiter.reserved(), 8);
        assert_eq!(
            sent.load(Ordering::SeqCst),
            52,
            "nothing sent for the deferred"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deferred_passes_keep_their_turn_and_take_no_second_token() {
        let limiter = RateLimiter::default();
        let sent = AtomicU32::new(0);
        let start = Instant::now();
        let outcomes = ten_at_once(&limiter, &sent).await;
        // Each comes back when told, in its turn, and is sent at once with its reservation.
        for (i, outcome) in outcomes.iter().enumerate() {
            let Err(AwsError::Deferred { wait }) = outcome else {
                continue;
            };
            tokio::time::sleep_until(start + *wait).await;
            let t = Instant::now();
            let sent_now = create_in_pass(&limiter, &format!("q-{i}"), &sent).await;
            assert!(sent_now.is_ok(), "q-{i}: {sent_now:?}");
            assert_eq!(t.elapsed(), Duration::ZERO, "q-{i}");
        }
        assert_eq!(limiter.reserved(), 0);
        assert_eq!(sent.load(Ordering::SeqCst), 60);
        // Every token was taken once: the next call waits its 0.4 s after the last.
        let t = Instant::now();
        let after = create_in_pass(&limiter, "after", &sent).await;
        assert!(after.is_ok(), "{after:?}");
        assert_eq!(t.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn an_admitted_call_uses_the_token_taken_for_it() {
        let limiter = RateLimiter::default();
        let sent = AtomicU32::new(0);
        // Burst spent but one token: admit takes it, the call takes no second one.
        for i in 0..49 {
            let burst = create_in_pass(&limiter, &format!("burst-{i}"), &sent).await;
            assert!(burst.is_ok(), "{burst:?}");
        }
        let start = Instant::now();
        let admitted = deferral::for_object("a".to_owned(), async {
            limiter.admit(ActionClass::CreateDelete).await?;
            limiter
                .with_retries(ActionClass::CreateDelete, Idempotency::Safe, || async {
                    Ok(sent.fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await
        })
        .await;
        assert_eq!(admitted, Ok(50));
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "one token for admit and call"
        );
        // The next is 0.4 s away, and one far off is deferred at admission, nothing sent.
        let next = create_in_pass(&limiter, "b", &sent).await;
        assert!(next.is_ok(), "{next:?}");
        let far =
            deferral::for_object("c".to_owned(), async { join_admissions(&limiter, 3).await })
                .await;
        assert_eq!(
            far,
            vec![
                Ok(()),
                Ok(()),
                Err(AwsError::Deferred {
                    wait: Duration::from_millis(1200)
                })
            ]
        );
        assert_eq!(sent.load(Ordering::SeqCst), 51);
    }

    /// `n` admissions of CreateDelete asked at the same moment by passes of `n` objects.
    async fn join_admissions(limiter: &RateLimiter, n: usize) -> Vec<Result<(), AwsError>> {
        let objects: Vec<String> = (0..n).map(|i| format!("admit-{i}")).collect();
        futures::future::join_all(
            objects
                .iter()
                .map(|o| deferral::for_object(o.clone(), limiter.admit(ActionClass::CreateDelete))),
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn reads_and_calls_outside_a_pass_wait_in_place() {
        let limiter = RateLimiter::default();
        for _ in 0..100 {
            limiter.acquire(ActionClass::Describe).await;
        }
        // Reads inside a pass, with the bucket empty (refill 10/s at the default fraction):
        // twenty of them wait two seconds in place, none is deferred.
        let start = Instant::now();
        for i in 0..20 {
            deferral::for_object("EbsVolume/ns/a".to_owned(), async {
                limiter.first_token(ActionClass::Describe).await
            })
            .await
            .unwrap_or_else(|e| panic!("read {i}: {e}"));
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // A mutating call outside any pass (no object) waits in place too.
        let start = Instant::now();
        for _ in 0..60 {
            let token = limiter.first_token(ActionClass::CreateDelete).await;
            assert!(token.is_ok(), "{token:?}");
        }
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(limiter.reserved(), 0);
    }
}
