//! The AWS SDK implementation of [`Ec2`]: one [`Ec2Client`] per Region, its one call wrapper
//! ([`Ec2Client::call`]), and the per-Region cache ([`AwsClients`]). What each call sends and
//! reads lives in the resource's file; this file only wires them to the trait.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ec2::config::Region;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_sts::config::SharedCredentialsProvider;
use futures::future::BoxFuture;
use tokio::time::Instant;
use tracing::Instrument;

use super::{
    AttachVolumeRequest, CopyImageRequest, CopySnapshotRequest, CreateImageRequest,
    CreateSnapshotRequest, CreateVolumeRequest, DetachVolumeRequest, Ec2, Filter,
    InstanceTypeStorage, KmsKey, ModifyVolumeRequest, ObservedInstance, Page, RegisterImageRequest,
    images, instances, kms, snapshots, tagging, volumes,
};
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::identity::{AssumedRole, Scope};
use crate::aws::metrics::AwsCallMetrics;
use crate::aws::rate::{ActionClass, Idempotency, RateConfig, RateLimiter};
use crate::plan::observed::{
    AttachmentState, LaunchPermissionSet, ModificationState, ObservedImage, ObservedModification,
    ObservedSnapshot, ObservedVolume,
};

/// Timeouts for one request.
#[derive(Clone, Debug)]
pub struct ClientTimeouts {
    pub connect: Duration,
    /// One attempt (our retries come after).
    pub attempt: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(30),
        }
    }
}

/// The SDK clients of one Region, with its rate limiter.
pub struct Ec2Client {
    pub(super) region: String,
    pub(super) ec2: aws_sdk_ec2::Client,
    pub(super) kms: aws_sdk_kms::Client,
    limiter: Arc<RateLimiter>,
    metrics: AwsCallMetrics,
}

impl std::fmt::Debug for Ec2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Client")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Ec2Client {
    /// Clients for `region` from a shared config, with the SDK's retries off (ours are per
    /// action class) and our timeouts.
    pub fn new(
        sdk_config: &SdkConfig,
        region: &str,
        rate: RateConfig,
        timeouts: &ClientTimeouts,
        metrics: AwsCallMetrics,
    ) -> Self {
        let limiter = Arc::new(RateLimiter::new(rate));
        Self::sharing(sdk_config, region, limiter, timeouts, metrics)
    }

    /// Like [`Ec2Client::new`], drawing on a rate limiter shared with other clients of the
    /// account's Region (other identities of the same controller).
    pub fn sharing(
        sdk_config: &SdkConfig,
        region: &str,
        limiter: Arc<RateLimiter>,
        timeouts: &ClientTimeouts,
        metrics: AwsCallMetrics,
    ) -> Self {
        let timeout_config = TimeoutConfig::builder()
            .connect_timeout(timeouts.connect)
            .operation_attempt_timeout(timeouts.attempt)
            .build();
        let ec2_config = aws_sdk_ec2::config::Builder::from(sdk_config)
            .region(Region::new(region.to_owned()))
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeout_config.clone())
            .build();
        let kms_config = aws_sdk_kms::config::Builder::from(sdk_config)
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeout_config)
            .build();
        Self {
            region: region.to_owned(),
            ec2: aws_sdk_ec2::Client::from_conf(ec2_config),
            kms: aws_sdk_kms::Client::from_conf(kms_config),
            limiter,
            metrics,
        }
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Sends one AWS action: `send` builds and sends the request (it is called again for each
    /// retry, so it must not consume what it borrows). Every call site goes through here so
    /// rate limiting, retries, classification, counting, timing and tracing cannot be left
    /// out of one of them.
    pub(super) async fn call<T, E, F, Fut>(
        &self,
        action: AwsAction,
        idempotency: Idempotency,
        send: F,
    ) -> Result<T, AwsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        AwsError: From<E>,
    {
        let span = tracing::info_span!(
            "aws",
            action = action.as_str(),
            region = self.region.as_str(),
            outcome = tracing::field::Empty,
            code = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let mut attempts: u32 = 0;
        let result = self
            .limiter
            .with_retries(ActionClass::of(action), idempotency, || {
                attempts += 1;
                let request = send();
                async move {
                    // Timed after the limiter's token: the histogram is AWS's latency, not
                    // our own pacing.
                    let started = Instant::now();
                    let result = request.await.map_err(AwsError::from);
                    if result.is_ok() {
                        super::note_answered(started);
                    }
                    self.metrics.record(
                        action,
                        outcome(result.as_ref().err()),
                        started.elapsed().as_secs_f64(),
                    );
                    result
                }
            })
            .instrument(span.clone())
            .await;
        if matches!(result, Err(AwsError::Deferred { .. })) {
            self.metrics.record_deferred(action);
        }
        span.record("outcome", outcome(result.as_ref().err()));
        span.record("attempts", attempts);
        if let Err(err) = &result {
            span.record("code", err.code());
        }
        result
    }
}

fn outcome(error: Option<&AwsError>) -> &'static str {
    error.map_or("success", AwsError::metric_outcome)
}

/// `value` as the SDK's `i32`. Out of range is refused before anything is sent: clamping
/// would ask AWS for another size than the spec's and report success.
pub(super) fn i32_param(field: &str, value: Option<i64>) -> Result<Option<i32>, AwsError> {
    value
        .map(|v| {
            i32::try_from(v).map_err(|_| AwsError::Client {
                code: "InvalidParameterValue".to_owned(),
                message: format!(
                    "{field} = {v} is out of range: the EC2 API takes at most {}",
                    i32::MAX
                ),
            })
        })
        .transpose()
}

impl Ec2 for Ec2Client {
    fn region(&self) -> &str {
        &self.region
    }

    fn admit(&self, action: AwsAction) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(async move {
            let admitted = self.limiter.admit(ActionClass::of(action)).await;
            if admitted.is_err() {
                self.metrics.record_deferred(action);
            }
            admitted
        })
    }

    fn describe_volumes_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedVolume>, AwsError>> {
        Box::pin(volumes::describe_page(
            self,
            filters,
            max_results,
            next_token,
        ))
    }

    fn describe_volumes_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedVolume>, AwsError>> {
        Box::pin(volumes::describe_by_ids(self, ids))
    }

    fn describe_volumes_modifications(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>> {
        Box::pin(volumes::describe_modifications(self, ids))
    }

    fn describe_volumes_modifications_in_states(
        &self,
        states: Vec<ModificationState>,
    ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>> {
        Box::pin(volumes::describe_modifications_in_states(self, states))
    }

    fn describe_snapshots_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedSnapshot>, AwsError>> {
        Box::pin(snapshots::describe_page(
            self,
            filters,
            max_results,
            next_token,
        ))
    }

    fn create_volume(
        &self,
        request: CreateVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedVolume, AwsError>> {
        Box::pin(volumes::create(self, request))
    }

    fn modify_volume(
        &self,
        request: ModifyVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedModification, AwsError>> {
        Box::pin(volumes::modify(self, request))
    }

    fn attach_volume(
        &self,
        request: AttachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<AttachmentState>, AwsError>> {
        Box::pin(volumes::attach(self, request))
    }

    fn detach_volume(
        &self,
        request: DetachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<AttachmentState>, AwsError>> {
        Box::pin(volumes::detach(self, request))
    }

    fn delete_volume(&self, volume_id: String) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(volumes::delete(self, volume_id))
    }

    fn create_snapshot(
        &self,
        request: CreateSnapshotRequest,
    ) -> BoxFuture<'_, Result<ObservedSnapshot, AwsError>> {
        Box::pin(snapshots::create(self, request))
    }

    fn copy_snapshot(
        &self,
        request: CopySnapshotRequest,
    ) -> BoxFuture<'_, Result<String, AwsError>> {
        Box::pin(snapshots::copy(self, request))
    }

    fn delete_snapshot(&self, snapshot_id: String) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(snapshots::delete(self, snapshot_id))
    }

    fn stop_instance(&self, instance_id: String) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(instances::stop(self, instance_id))
    }

    fn start_instance(&self, instance_id: String) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(instances::start(self, instance_id))
    }

    fn set_delete_on_termination(
        &self,
        instance_id: String,
        device: String,
        delete_on_termination: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(instances::set_delete_on_termination(
            self,
            instance_id,
            device,
            delete_on_termination,
        ))
    }

    fn describe_instance_types(
        &self,
        types: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<InstanceTypeStorage>, AwsError>> {
        Box::pin(instances::describe_types(self, types))
    }

    fn create_tags(
        &self,
        resource_ids: Vec<String>,
        tags: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(tagging::create_tags(self, resource_ids, tags))
    }

    fn delete_tags(
        &self,
        resource_ids: Vec<String>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(tagging::delete_tags(self, resource_ids, keys))
    }

    fn describe_instances_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedInstance>, AwsError>> {
        Box::pin(instances::describe_by_ids(self, ids))
    }

    fn images_launchable_by(
        &self,
        account: String,
        filters: Vec<Filter>,
    ) -> BoxFuture<'_, Result<Vec<String>, AwsError>> {
        Box::pin(images::launchable_by(self, account, filters))
    }

    fn describe_images_page(
        &self,
        owners: Vec<String>,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedImage>, AwsError>> {
        Box::pin(images::describe_page(
            self,
            owners,
            filters,
            max_results,
            next_token,
        ))
    }

    fn create_image(&self, request: CreateImageRequest) -> BoxFuture<'_, Result<String, AwsError>> {
        Box::pin(images::create(self, request))
    }

    fn register_image(
        &self,
        request: RegisterImageRequest,
    ) -> BoxFuture<'_, Result<String, AwsError>> {
        Box::pin(images::register(self, request))
    }

    fn copy_image(&self, request: CopyImageRequest) -> BoxFuture<'_, Result<String, AwsError>> {
        Box::pin(images::copy(self, request))
    }

    fn deregister_image(
        &self,
        image_id: String,
        delete_associated_snapshots: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::deregister(
            self,
            image_id,
            delete_associated_snapshots,
        ))
    }

    fn describe_launch_permissions(
        &self,
        image_id: String,
    ) -> BoxFuture<'_, Result<LaunchPermissionSet, AwsError>> {
        Box::pin(images::describe_launch_permissions(self, image_id))
    }

    fn modify_launch_permissions(
        &self,
        image_id: String,
        add: LaunchPermissionSet,
        remove: LaunchPermissionSet,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::modify_launch_permissions(
            self, image_id, add, remove,
        ))
    }

    fn describe_snapshot_volume_permissions(
        &self,
        snapshot_id: String,
    ) -> BoxFuture<'_, Result<BTreeSet<String>, AwsError>> {
        Box::pin(snapshots::describe_volume_permissions(self, snapshot_id))
    }

    fn modify_snapshot_volume_permissions(
        &self,
        snapshot_id: String,
        add: BTreeSet<String>,
        remove: BTreeSet<String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(snapshots::modify_volume_permissions(
            self,
            snapshot_id,
            add,
            remove,
        ))
    }

    fn modify_image_description(
        &self,
        image_id: String,
        description: String,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::modify_description(self, image_id, description))
    }

    fn enable_image_deprecation(
        &self,
        image_id: String,
        at: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::enable_deprecation(self, image_id, at))
    }

    fn disable_image_deprecation(&self, image_id: String) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::disable_deprecation(self, image_id))
    }

    fn image_block_public_access_blocked(&self) -> BoxFuture<'_, Result<bool, AwsError>> {
        Box::pin(images::block_public_access_blocked(self))
    }

    fn enable_image_deregistration_protection(
        &self,
        image_id: String,
        with_cooldown: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::enable_protection(self, image_id, with_cooldown))
    }

    fn disable_image_deregistration_protection(
        &self,
        image_id: String,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(images::disable_protection(self, image_id))
    }

    fn describe_key(&self, key: String) -> BoxFuture<'_, Result<KmsKey, AwsError>> {
        Box::pin(kms::describe_key(self, key))
    }

    fn get_ebs_default_kms_key_id(&self) -> BoxFuture<'_, Result<Option<String>, AwsError>> {
        Box::pin(kms::ebs_default_key_id(self))
    }
}

/// One [`Ec2Client`] per [`Scope`] (Region and identity), built on first use from one shared
/// `SdkConfig` (the standard credential chain; `AWS_ENDPOINT_URL` is honoured by aws-config).
/// The clients of one Region share its rate limiter: the account's buckets do not grow
/// with the number of roles the controller assumes.
pub struct AwsClients {
    sdk_config: SdkConfig,
    rate: RateConfig,
    timeouts: ClientTimeouts,
    metrics: AwsCallMetrics,
    clients: Mutex<HashMap<Scope, Arc<Ec2Client>>>,
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

impl AwsClients {
    pub fn new(
        sdk_config: SdkConfig,
        rate: RateConfig,
        timeouts: ClientTimeouts,
        metrics: AwsCallMetrics,
    ) -> Self {
        Self {
            sdk_config,
            rate,
            timeouts,
            metrics,
            clients: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the standard configuration (environment, profile, IMDS, ...), once at start.
    pub async fn from_env(
        rate: RateConfig,
        timeouts: ClientTimeouts,
        metrics: AwsCallMetrics,
    ) -> Self {
        let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(sdk_config, rate, timeouts, metrics)
    }

    /// The client of `region` as the controller itself (the same one every time).
    pub fn region(&self, region: &str) -> Arc<Ec2Client> {
        self.scoped(&Scope::own(region), "")
    }

    /// The client of `scope` (the same one every time): as the controller itself, or as
    /// the namespace's role, its sessions tagged with `cluster`.
    pub fn scoped(&self, scope: &Scope, cluster: &str) -> Arc<Ec2Client> {
        let build = || {
            let limiter = self.limiter(&scope.region);
            let config = match &scope.role {
                None => self.sdk_config.clone(),
                Some(role) => {
                    let assumed =
                        AssumedRole::new(&self.sdk_config, &scope.region, role.clone(), cluster);
                    self.sdk_config
                        .to_builder()
                        .credentials_provider(SharedCredentialsProvider::new(assumed))
                        .build()
                }
            };
            Arc::new(Ec2Client::sharing(
                &config,
                &scope.region,
                limiter,
                &self.timeouts,
                self.metrics.clone(),
            ))
        };
        match self.clients.lock() {
            Ok(mut clients) => clients.entry(scope.clone()).or_insert_with(build).clone(),
            Err(_) => build(),
        }
    }

    /// The rate limiter of `region`, shared by every identity.
    fn limiter(&self, region: &str) -> Arc<RateLimiter> {
        let build = || Arc::new(RateLimiter::new(self.rate.clone()));
        match self.limiters.lock() {
            Ok(mut limiters) => limiters
                .entry(region.to_owned())
                .or_insert_with(build)
                .clone(),
            Err(_) => build(),
        }
    }

    /// The calls of `region` as a trait object.
    pub fn ec2(&self, region: &str) -> Arc<dyn Ec2> {
        self.region(region)
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::aws::metrics::AwsCallLabels;

    /// A client that never reaches AWS: the tests hand `call` requests of their own.
    fn offline_client(metrics: AwsCallMetrics) -> Ec2Client {
        let sdk_config = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let rate = RateConfig {
            throttle_backoff: Duration::from_millis(10),
            ..RateConfig::default()
        };
        Ec2Client::new(
            &sdk_config,
            "us-east-1",
            rate,
            &ClientTimeouts::default(),
            metrics,
        )
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_request_is_counted_and_timed_and_the_call_has_one_span_with_its_outcome() {
        let logs = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let logs = logs.clone();
                move || logs.clone()
            })
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let metrics = AwsCallMetrics::default();
        let client = offline_client(metrics.clone());
        let sent = AtomicU32::new(0);
        let out = client
            .call(AwsAction::DescribeVolumes, Idempotency::Safe, || async {
                if sent.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(AwsError::Throttled {
                        code: "RequestLimitExceeded".to_owned(),
                    })
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out, Ok(7));

        let count = |outcome| {
            metrics
                .get_or_create(&AwsCallLabels {
                    action: "DescribeVolumes",
                    outcome,
                })
                .get()
        };
        assert_eq!((count("throttled"), count("success")), (2, 1));
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("latency", "", metrics.duration.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains(r#"latency_count{action="DescribeVolumes"} 3"#),
            "one latency sample per request sent: {text}"
        );

        let logs = String::from_utf8(logs.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let closes: Vec<&str> = logs.lines().filter(|l| l.contains("close")).collect();
        assert_eq!(closes.len(), 1, "{logs}");
        for field in [
            "aws{",
            "DescribeVolumes",
            "us-east-1",
            "success",
            "attempts=3",
        ] {
            assert!(closes[0].contains(field), "{field} in {logs}");
        }
    }

    #[test]
    fn values_that_fit_pass_and_the_others_name_field_and_value() {
        assert_eq!(i32_param("iops", None), Ok(None));
        assert_eq!(i32_param("iops", Some(3000)), Ok(Some(3000)));
        let err = i32_param("size_gib", Some(3_000_000_000))
            .err()
            .unwrap_or_else(|| panic!("3e9 does not fit an i32"));
        assert_eq!(err.code(), "InvalidParameterValue");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("size_gib = 3000000000"), "{err}");
    }
}
