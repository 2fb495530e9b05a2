//! One test's world, for every end-to-end test of the controller's kinds: a namespace on the
//! shared control plane, its own AWS emulator and its own controller process watching that
//! namespace, plus what the tests ask of them: objects of any kind created, edited, waited
//! for; AWS call counts; events; the controller's metrics; a dump for failure messages.
//!
//! [`Bed::aws_only`] starts the emulator alone, for tests of the AWS layer in-process.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use aws_sdk_ec2::operation::create_volume::builders::CreateVolumeFluentBuilder;
use aws_sdk_ec2::types::{
    Filter, Placement, ResourceType, Snapshot, Tag, TagSpecification, Volume, VolumeModification,
    VolumeType,
};
use ec2_reconciler::api::conditions::{Condition, ConditionStatus, READY, find};
use ec2_reconciler::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};
use ec2_reconciler::plan::tenancy::TRUSTED_LABEL;
use ec2_reconciler::reconcile::ManagedKind;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::control_plane::{ControlPlane, new_annotated_namespace, shared};
use crate::controller::{ControllerProcess, REGION};
use crate::emulator::{Calls, Emulator, IamUser};
use crate::wait::{eventually, retry};

/// How long a `wait_*` waits.
pub const WAIT: Duration = Duration::from_secs(90);
/// The zone the bed's own AWS helpers make volumes and instances in.
pub const ZONE: &str = "us-east-1a";
/// moto runs any image id; no AMI needs registering.
pub const IMAGE: &str = "ami-12345678";
/// The owner tag the controller puts on what it makes (`<namespace>/<name>`).
const OWNER_TAG: &str = "ec2.reconciler.dev/owner";
/// At most this many objects of a kind are shown in a dump.
const DUMP_OBJECTS: usize = 10;

/// A namespace, an emulator and a controller watching that namespace (see the module
/// documentation). Dropping it kills the controller and the emulator; the namespace stays.
pub struct Bed {
    emu: Emulator,
    ec2: aws_sdk_ec2::Client,
    kms: aws_sdk_kms::Client,
    kube: Option<Kube>,
    /// The IAM user the controller signs as ([`BedBuilder::iam_policy`]).
    iam_user: Option<IamUser>,
}

/// The Kubernetes side of a bed.
struct Kube {
    cp: &'static ControlPlane,
    client: Client,
    ns: String,
    /// A second namespace the controller watches, for tenancy tests.
    other_ns: Option<String>,
    /// The controller's kubeconfig (the admin's, or a ServiceAccount's).
    kubeconfig: PathBuf,
    /// The controller's arguments after `--namespace <ns>`.
    args: Vec<String>,
    controller: ControllerProcess,
    /// Logs of the controllers this bed killed, oldest first.
    killed_logs: Vec<String>,
    /// Environment overriding the emulator's for the controller (an IAM user's keys).
    env: Vec<(String, String)>,
    /// The controller binary; `None`: the debug build.
    binary: Option<PathBuf>,
}

impl Kube {
    fn watched(&self) -> String {
        watched_namespaces(&self.ns, self.other_ns.as_deref())
    }
}

/// The controller's `--namespace` value: every namespace of the bed.
fn watched_namespaces(ns: &str, other: Option<&str>) -> String {
    match other {
        Some(other) => format!("{ns},{other}"),
        None => ns.to_owned(),
    }
}

/// How to start a [`Bed`]: [`Bed::builder`], [`Bed::aws_only`].
#[derive(Debug, Clone)]
pub struct BedBuilder {
    prefix: String,
    args: Vec<String>,
    transitions: Option<Value>,
    kube: bool,
    trusted: bool,
    other_namespace: bool,
    /// Run with `--leader-elect` under this identity, the Lease in the bed's namespace.
    leader_identity: Option<String>,
    /// Run the controller as this ServiceAccount of the bed's namespace (its RBAC is the
    /// test's to grant) instead of the control plane's admin.
    service_account: Option<String>,
    /// Annotations of the bed's namespace and of the other one.
    annotations: Vec<(String, String)>,
    other_annotations: Vec<(String, String)>,
    /// The controller signs as an IAM user with only this policy.
    iam_policy: Option<Value>,
    /// Run this controller binary instead of the debug build.
    controller_binary: Option<PathBuf>,
    /// Environment for the controller, over the bed's own (`RUST_LOG`, say).
    controller_env: Vec<(String, String)>,
}

impl BedBuilder {
    /// Extra arguments for `ec2-reconciler run`, after `--namespace <ns>`.
    #[must_use]
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Pending-state durations set on the emulator before the controller starts
    /// (see [`Emulator::set_transitions`]).
    #[must_use]
    pub fn transitions(mut self, settings: Value) -> Self {
        self.transitions = Some(settings);
        self
    }

    /// The bed's namespaces get no grant: their objects may act only on what they own (by
    /// default a bed's namespace is trusted, as an administrator would trust a team's).
    #[must_use]
    pub fn untrusted(mut self) -> Self {
        self.trusted = false;
        self
    }

    /// A second namespace, watched by the same controller ([`Bed::other_namespace`]), with
    /// the same grants as the first.
    #[must_use]
    pub fn other_namespace(mut self) -> Self {
        self.other_namespace = true;
        self
    }

    /// The controller elects a leader (`--leader-elect`, the Lease in the bed's namespace)
    /// and calls itself `identity`; [`Bed::spawn_replica`] starts more replicas.
    #[must_use]
    pub fn leader_elect(mut self, identity: &str) -> Self {
        self.leader_identity = Some(identity.to_owned());
        self
    }

    /// An annotation on the bed's namespace, set before the controller starts (as an
    /// administrator would, e.g. the namespace's IAM role).
    #[must_use]
    pub fn namespace_annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_owned(), value.to_owned()));
        self
    }

    /// An annotation on the other namespace ([`BedBuilder::other_namespace`]).
    #[must_use]
    pub fn other_namespace_annotation(mut self, key: &str, value: &str) -> Self {
        self.other_annotations
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// The controller authenticates as ServiceAccount `name` of the bed's namespace, with
    /// nothing but the RBAC the test grants it (it retries until it has it).
    #[must_use]
    pub fn service_account(mut self, name: &str) -> Self {
        self.service_account = Some(name.to_owned());
        self
    }

    /// The controller's AWS credentials are an IAM user's whose only permissions are
    /// `policy`, and the emulator enforces it ([`Bed::iam_user`]); the bed's own SDK clients
    /// keep the unrestricted test credentials.
    #[must_use]
    pub fn iam_policy(mut self, policy: Value) -> Self {
        self.iam_policy = Some(policy);
        self
    }

    /// Runs this `ec2-reconciler` binary (the release build, for the benchmark) instead of
    /// `target/debug/ec2-reconciler`.
    #[must_use]
    pub fn controller_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.controller_binary = Some(path.into());
        self
    }

    /// Sets an environment variable of the controller, over the bed's (its `RUST_LOG` is
    /// `info,ec2_reconciler=debug`).
    #[must_use]
    pub fn controller_env(mut self, key: &str, value: &str) -> Self {
        self.controller_env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub async fn start(mut self) -> Result<Bed> {
        crate::install_crypto_provider();
        let emu = Emulator::start().await?;
        if let Some(settings) = self.transitions {
            emu.set_transitions(settings).await?;
        }
        let iam_user = match &self.iam_policy {
            Some(policy) => Some(emu.create_iam_user("ec2-reconciler", policy).await?),
            None => None,
        };
        let mut env = iam_user.as_ref().map(IamUser::env_vars).unwrap_or_default();
        env.extend(self.controller_env);
        let sdk_config = emu.sdk_config(REGION).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk_config);
        let kms = aws_sdk_kms::Client::new(&sdk_config);
        let kube = if self.kube {
            let cp = shared()?;
            let client = cp.client().await?;
            let labels: &[(&str, &str)] = if self.trusted {
                &[(TRUSTED_LABEL, "true")]
            } else {
                &[]
            };
            let ns =
                new_annotated_namespace(&client, &self.prefix, labels, &self.annotations).await?;
            let other_ns = match self.other_namespace {
                true => Some(
                    new_annotated_namespace(&client, "other", labels, &self.other_annotations)
                        .await?,
                ),
                false => None,
            };
            if let Some(identity) = self.leader_identity.take() {
                let election = ["--leader-elect", "--leader-election-namespace", &ns];
                self.args.extend(election.iter().map(|a| (*a).to_owned()));
                self.args.extend(["--identity".to_owned(), identity]);
            }
            let kubeconfig = match &self.service_account {
                Some(name) => {
                    let path = cp.state_dir().join(format!("kubeconfig-{ns}-{name}"));
                    let user = format!("system:serviceaccount:{ns}:{name}");
                    cp.write_kubeconfig(&path, &user, &["system:serviceaccounts"])?;
                    path
                }
                None => cp.admin_kubeconfig_path().to_owned(),
            };
            let watched = watched_namespaces(&ns, other_ns.as_deref());
            let binary = self.controller_binary;
            let controller = spawn_controller(
                binary.as_deref(),
                cp,
                &emu,
                &kubeconfig,
                &watched,
                &self.args,
                &env,
            )?;
            Some(Kube {
                cp,
                client,
                ns,
                other_ns,
                kubeconfig,
                args: self.args,
                controller,
                killed_logs: Vec::new(),
                env,
                binary,
            })
        } else {
            None
        };
        Ok(Bed {
            emu,
            ec2,
            kms,
            kube,
            iam_user,
        })
    }
}

fn spawn_controller(
    binary: Option<&Path>,
    cp: &ControlPlane,
    emu: &Emulator,
    kubeconfig: &Path,
    ns: &str,
    extra: &[String],
    env: &[(String, String)],
) -> Result<ControllerProcess> {
    let mut args = vec!["--namespace", ns];
    args.extend(extra.iter().map(String::as_str));
    match binary {
        Some(binary) => ControllerProcess::spawn_binary(binary, cp, emu, kubeconfig, &args, env),
        None => ControllerProcess::spawn_with_env(cp, emu, kubeconfig, &args, env),
    }
}

impl Bed {
    /// A full bed: a namespace named after `prefix`, an emulator with its default pending
    /// states, and `ec2-reconciler run --namespace <ns> EXTRA_ARGS...`. Does not wait for the
    /// controller to be ready (objects created meanwhile are picked up when it is).
    pub async fn start(prefix: &str, extra_args: &[&str]) -> Result<Self> {
        Self::builder(prefix).args(extra_args).start().await
    }

    /// A full bed, configured before it starts.
    pub fn builder(prefix: &str) -> BedBuilder {
        BedBuilder {
            prefix: prefix.to_owned(),
            args: Vec::new(),
            transitions: None,
            kube: true,
            trusted: true,
            other_namespace: false,
            leader_identity: None,
            service_account: None,
            annotations: Vec::new(),
            other_annotations: Vec::new(),
            iam_policy: None,
            controller_binary: None,
            controller_env: Vec::new(),
        }
    }

    /// Only the emulator (and the bed's SDK clients on it): no control plane, namespace or
    /// controller. Whatever needs those fails.
    pub fn aws_only() -> BedBuilder {
        BedBuilder {
            kube: false,
            ..Self::builder("aws")
        }
    }

    fn kube(&self) -> Result<&Kube> {
        self.kube
            .as_ref()
            .ok_or_else(|| anyhow!("this bed was started with Bed::aws_only: no Kubernetes"))
    }

    fn kube_mut(&mut self) -> Result<&mut Kube> {
        self.kube
            .as_mut()
            .ok_or_else(|| anyhow!("this bed was started with Bed::aws_only: no Kubernetes"))
    }

    // ---- Kubernetes objects ----------------------------------------------------------------

    /// The bed's namespace.
    pub fn namespace(&self) -> Result<&str> {
        Ok(&self.kube()?.ns)
    }

    /// A client as the test bed's admin.
    pub fn client(&self) -> Result<Client> {
        Ok(self.kube()?.client.clone())
    }

    /// The bed's second namespace ([`BedBuilder::other_namespace`]).
    pub fn other_namespace(&self) -> Result<&str> {
        self.kube()?
            .other_ns
            .as_deref()
            .ok_or_else(|| anyhow!("this bed was started without BedBuilder::other_namespace"))
    }

    /// The kind's API in the bed's namespace.
    pub fn api<K: ManagedKind>(&self) -> Result<Api<K>> {
        self.api_in(self.namespace()?)
    }

    /// The kind's API in namespace `ns`.
    pub fn api_in<K: ManagedKind>(&self, ns: &str) -> Result<Api<K>> {
        Ok(Api::namespaced(self.kube()?.client.clone(), ns))
    }

    /// The object `name` of kind `K` in the bed's namespace with this spec, as JSON.
    pub fn manifest<K: ManagedKind>(&self, name: &str, spec: Value) -> Result<Value> {
        Ok(manifest_in::<K>(self.namespace()?, name, spec))
    }

    /// Creates the object `name` with this spec: `bed.create::<EbsVolume>("data", spec)`.
    /// The error is the apiserver's own (an existing object's says `already exists`).
    pub async fn create<K: ManagedKind>(&self, name: &str, spec: Value) -> Result<K> {
        self.create_in(self.namespace()?, name, spec).await
    }

    /// [`Self::create`] in namespace `ns`.
    pub async fn create_in<K: ManagedKind>(&self, ns: &str, name: &str, spec: Value) -> Result<K> {
        let obj: K = serde_json::from_value(manifest_in::<K>(ns, name, spec))
            .with_context(|| format!("{} {name}: not a valid object", K::KIND))?;
        Ok(self
            .api_in::<K>(ns)?
            .create(&PostParams::default(), &obj)
            .await?)
    }

    /// Sets (or with `None` removes) a label on a namespace, as a cluster administrator.
    pub async fn label_namespace(&self, ns: &str, key: &str, value: Option<&str>) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client()?);
        api.patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { key: value } } })),
        )
        .await
        .with_context(|| format!("labelling namespace {ns}"))?;
        Ok(())
    }

    /// Server-side applies the object `name` with this spec (field manager `e2e`, forced):
    /// creates it or sets the fields the test manages.
    pub async fn apply<K: ManagedKind>(&self, name: &str, spec: Value) -> Result<K> {
        let manifest = self.manifest::<K>(name, spec)?;
        self.api::<K>()?
            .patch(
                name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&manifest),
            )
            .await
            .with_context(|| format!("applying {} {name}", K::KIND))
    }

    /// Merges `spec` into the object's spec (JSON merge patch: lists are replaced whole,
    /// `null` removes a field); returns the new generation.
    pub async fn edit<K: ManagedKind>(&self, name: &str, spec: Value) -> Result<i64> {
        let patched = self
            .api::<K>()?
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .with_context(|| format!("editing the spec of {} {name}", K::KIND))?;
        patched.meta().generation.context("no generation")
    }

    pub async fn get<K: ManagedKind>(&self, name: &str) -> Result<K> {
        Ok(self.api::<K>()?.get(name).await?)
    }

    /// Asks for the object's deletion (the controller's finalizer holds it until it is done).
    pub async fn delete<K: ManagedKind>(&self, name: &str) -> Result<()> {
        self.delete_in::<K>(self.namespace()?, name).await
    }

    /// [`Self::delete`] in namespace `ns`.
    pub async fn delete_in<K: ManagedKind>(&self, ns: &str, name: &str) -> Result<()> {
        self.api_in::<K>(ns)?
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting {} {name}", K::KIND))?;
        Ok(())
    }

    /// Occurrences of events with `reason` about the object `name` of kind `K` (a repeated
    /// event is one object with a series count).
    pub async fn events<K: ManagedKind>(&self, name: &str, reason: &str) -> Result<u64> {
        let kube = self.kube()?;
        let api: Api<Event> = Api::namespaced(kube.client.clone(), &kube.ns);
        let events = api.list(&ListParams::default()).await?;
        Ok(events
            .items
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some(K::KIND) && r.name.as_deref() == Some(name)
                    })
            })
            .map(|e| {
                e.series
                    .as_ref()
                    .map_or(1, |s| u64::try_from(s.count).unwrap_or(1))
            })
            .sum())
    }

    /// Every event about the object `name` of kind `K`, oldest first, as
    /// `(reason, note, occurrences)` (a repeated event is one object with a series count).
    pub async fn events_of<K: ManagedKind>(
        &self,
        name: &str,
    ) -> Result<Vec<(String, String, u64)>> {
        let kube = self.kube()?;
        let api: Api<Event> = Api::namespaced(kube.client.clone(), &kube.ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(K::KIND) && r.name.as_deref() == Some(name)
                })
            })
            .collect();
        events.sort_by_key(|e| {
            (
                e.event_time.as_ref().map(|t| t.0),
                e.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        Ok(events
            .into_iter()
            .map(|e| {
                let occurrences = e
                    .series
                    .as_ref()
                    .map_or(1, |s| u64::try_from(s.count).unwrap_or(1));
                (
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                    occurrences,
                )
            })
            .collect())
    }

    // ---- Waiting ---------------------------------------------------------------------------

    /// Polls `check` (see [`eventually`]) for up to [`WAIT`]; on timeout the error carries
    /// [`Self::dump`].
    pub async fn wait_until<T, F, Fut>(&self, what: &str, check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        self.wait_until_within(what, WAIT, check).await
    }

    /// [`Self::wait_until`] with another timeout.
    pub async fn wait_until_within<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        match eventually(what, timeout, check).await {
            Ok(v) => Ok(v),
            Err(e) => Err(e.context(self.dump().await)),
        }
    }

    /// Waits until `check` holds for the object `name`, and returns it.
    pub async fn wait_for<K: ManagedKind>(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&K) -> bool,
    ) -> Result<K> {
        self.wait_for_in(self.namespace()?, name, what, check).await
    }

    /// [`Self::wait_for`] in namespace `ns`.
    pub async fn wait_for_in<K: ManagedKind>(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        check: impl Fn(&K) -> bool,
    ) -> Result<K> {
        let api = &self.api_in::<K>(ns)?;
        let check = &check;
        self.wait_until(what, || async move {
            let obj = api.get(name).await?;
            Ok(check(&obj).then_some(obj))
        })
        .await
    }

    /// Waits until the object has condition `type_` = `status` with `reason`.
    pub async fn wait_condition<K: ManagedKind>(
        &self,
        name: &str,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
    ) -> Result<K> {
        let what = format!("{name} to have {type_}={status:?} with reason {reason}");
        self.wait_for(name, &what, |obj: &K| {
            has_condition(obj, type_, status, reason)
        })
        .await
    }

    /// Waits until the object is `Ready=True`.
    pub async fn wait_ready<K: ManagedKind>(&self, name: &str) -> Result<K> {
        self.wait_for(name, &format!("{name} to be Ready"), is_ready::<K>)
            .await
    }

    /// Waits until the object is gone (its finalizer removed).
    pub async fn wait_gone<K: ManagedKind>(&self, name: &str) -> Result<()> {
        self.wait_gone_in::<K>(self.namespace()?, name).await
    }

    /// [`Self::wait_gone`] in namespace `ns`.
    pub async fn wait_gone_in<K: ManagedKind>(&self, ns: &str, name: &str) -> Result<()> {
        let api = &self.api_in::<K>(ns)?;
        self.wait_until(&format!("{name} to be gone"), || async move {
            Ok(api.get_opt(name).await?.is_none().then_some(()))
        })
        .await
    }

    // ---- The controller --------------------------------------------------------------------

    /// The running controller's log so far (empty without one).
    pub fn controller_log(&self) -> String {
        self.kube
            .as_ref()
            .map(|k| k.controller.log())
            .unwrap_or_default()
    }

    /// Waits until the controller answers `/readyz` with 200.
    pub async fn wait_controller_ready(&mut self) -> Result<()> {
        self.kube_mut()?.controller.wait_ready(WAIT).await
    }

    /// SIGKILL: a crash, no shutdown path runs. The controller stays dead until
    /// [`Self::restart_controller`].
    pub fn kill_controller(&mut self) -> Result<()> {
        self.kube_mut()?.controller.kill_9()
    }

    /// SIGKILLs the controller (if it still runs), then starts a new one with the same
    /// arguments. Does not wait for it to be ready. The killed one's log stays in the dump.
    pub fn restart_controller(&mut self) -> Result<()> {
        let emu = &self.emu;
        let kube = self
            .kube
            .as_mut()
            .ok_or_else(|| anyhow!("this bed was started with Bed::aws_only: no Kubernetes"))?;
        kube.controller.kill_9()?;
        kube.killed_logs.push(kube.controller.log());
        let watched = kube.watched();
        kube.controller = spawn_controller(
            kube.binary.as_deref(),
            kube.cp,
            emu,
            &kube.kubeconfig,
            &watched,
            &kube.args,
            &kube.env,
        )?;
        Ok(())
    }

    /// Another replica of the controller, with the same arguments but for its identity
    /// (`--identity`). The bed does not track it: the caller holds (and drops) it.
    pub fn spawn_replica(&self, identity: &str) -> Result<ControllerProcess> {
        let kube = self.kube()?;
        let mut args: Vec<String> = Vec::new();
        let mut rest = kube.args.iter();
        while let Some(arg) = rest.next() {
            if arg == "--identity" {
                rest.next();
            } else {
                args.push(arg.clone());
            }
        }
        args.extend(["--identity".to_owned(), identity.to_owned()]);
        spawn_controller(
            kube.binary.as_deref(),
            kube.cp,
            &self.emu,
            &kube.kubeconfig,
            &kube.watched(),
            &args,
            &kube.env,
        )
    }

    /// The running controller's process id.
    pub fn controller_pid(&self) -> Result<u32> {
        Ok(self.kube()?.controller.pid())
    }

    /// The control plane the bed's namespace lives on.
    pub fn control_plane(&self) -> Result<&'static ControlPlane> {
        Ok(self.kube()?.cp)
    }

    /// Another controller on the bed's namespaces with its own arguments instead of the
    /// bed's (e.g. another shard). The bed does not track it: the caller holds (and drops) it.
    pub fn spawn_controller_with(&self, args: &[&str]) -> Result<ControllerProcess> {
        let kube = self.kube()?;
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        spawn_controller(
            kube.binary.as_deref(),
            kube.cp,
            &self.emu,
            &kube.kubeconfig,
            &kube.watched(),
            &args,
            &kube.env,
        )
    }

    /// The IAM user the controller signs as, if the bed was given a policy.
    pub fn iam_user(&self) -> Option<&IamUser> {
        self.iam_user.as_ref()
    }

    /// The controller's `/metrics` (Prometheus text).
    pub async fn metrics(&self) -> Result<String> {
        let (code, body) = self.kube()?.controller.get("/metrics").await?;
        ensure!(code == 200, "GET /metrics: HTTP {code}: {body}");
        Ok(body)
    }

    /// Reconciles of kind `K` so far, whatever their outcome.
    pub async fn reconciles<K: ManagedKind>(&self) -> Result<u64> {
        metric_sum(
            &self.metrics().await?,
            "ec2_reconciler_reconciles_total",
            &[("kind", K::KIND)],
        )
    }

    /// Reconciles of kind `K` that succeeded.
    pub async fn successful_reconciles<K: ManagedKind>(&self) -> Result<u64> {
        metric_sum(
            &self.metrics().await?,
            "ec2_reconciler_reconciles_total",
            &[("kind", K::KIND), ("outcome", "success")],
        )
    }

    /// Status writes for kind `K` so far.
    pub async fn status_writes<K: ManagedKind>(&self) -> Result<u64> {
        metric_sum(
            &self.metrics().await?,
            "ec2_reconciler_status_writes_total",
            &[("kind", K::KIND)],
        )
    }

    /// Waits until kind `K` has been reconciled `n` more times than `since`; returns the count.
    pub async fn wait_reconciles<K: ManagedKind>(&self, since: u64, n: u64) -> Result<u64> {
        self.wait_until(
            &format!("{n} more {} reconciles than {since}", K::KIND),
            || async move {
                let now = self.reconciles::<K>().await?;
                Ok((now >= since + n).then_some(now))
            },
        )
        .await
    }

    // ---- AWS -------------------------------------------------------------------------------

    pub fn emu(&self) -> &Emulator {
        &self.emu
    }

    /// The test's own EC2 client on the emulator (Region [`REGION`]).
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.ec2
    }

    /// The test's own KMS client on the emulator.
    pub fn kms(&self) -> &aws_sdk_kms::Client {
        &self.kms
    }

    /// An EC2 client on the emulator in another Region.
    pub async fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.emu.sdk_config(region).await)
    }

    /// The emulator's request counters (the test's own requests included).
    pub async fn calls(&self) -> Result<Calls> {
        self.emu.calls().await
    }

    /// Zeroes the emulator's request counters.
    pub async fn clear_calls(&self) -> Result<()> {
        self.emu.clear_calls().await
    }

    /// Waits until the emulator has counted `n` requests for `action` (the last may still be
    /// in flight).
    pub async fn wait_for_calls(&self, action: &str, n: u64) -> Result<()> {
        self.wait_until(&format!("{n} {action} call(s)"), || async {
            Ok((self.emu.calls().await?.count(action) >= n).then_some(()))
        })
        .await
    }

    /// A snapshot of `volume_id` made outside the controller, once it is `completed`.
    pub async fn completed_snapshot(&self, volume_id: &str) -> Result<String> {
        let snapshot = self
            .ec2
            .create_snapshot()
            .volume_id(volume_id)
            .send()
            .await
            .context("CreateSnapshot")?
            .snapshot_id()
            .context("no snapshot id")?
            .to_owned();
        self.wait_until("the snapshot to complete", || async {
            let out = self
                .ec2
                .describe_snapshots()
                .snapshot_ids(&snapshot)
                .send()
                .await?;
            let completed = out
                .snapshots()
                .iter()
                .any(|s| s.state() == Some(&aws_sdk_ec2::types::SnapshotState::Completed));
            Ok(completed.then_some(()))
        })
        .await?;
        Ok(snapshot)
    }

    /// One instance in `zone`.
    pub async fn run_instance(&self, zone: &str) -> Result<String> {
        self.run_instances(zone, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("RunInstances returned no instance"))
    }

    /// `count` instances in `zone`, by one RunInstances.
    pub async fn run_instances(&self, zone: &str, count: i32) -> Result<Vec<String>> {
        let out = self
            .ec2
            .run_instances()
            .image_id(IMAGE)
            .min_count(count)
            .max_count(count)
            .placement(Placement::builder().availability_zone(zone).build())
            .send()
            .await
            .context("RunInstances")?;
        let ids: Vec<String> = out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        ensure!(ids.len() == usize::try_from(count)?, "{out:?}");
        Ok(ids)
    }

    /// A CreateVolume request for a gp3 volume of `size` GiB in [`ZONE`] with `tags`, to
    /// change further or to pass to [`Self::outside_volume_from`].
    pub fn volume_request(&self, size: i32, tags: &[(&str, &str)]) -> CreateVolumeFluentBuilder {
        let req = self
            .ec2
            .create_volume()
            .availability_zone(ZONE)
            .size(size)
            .volume_type(VolumeType::Gp3);
        if tags.is_empty() {
            return req;
        }
        req.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .build(),
        )
    }

    /// A gp3 volume of `size` GiB made directly in AWS (outside the controller) in [`ZONE`],
    /// once it is `available`.
    pub async fn outside_volume(&self, size: i32, tags: &[(&str, &str)]) -> Result<String> {
        self.outside_volume_from(self.volume_request(size, tags))
            .await
    }

    /// Sends `req` (see [`Self::volume_request`]) and waits until the volume is `available`.
    pub async fn outside_volume_from(&self, req: CreateVolumeFluentBuilder) -> Result<String> {
        let id = req
            .send()
            .await
            .context("CreateVolume")?
            .volume_id()
            .context("CreateVolume returned no id")?
            .to_owned();
        self.wait_until(&format!("{id} to be available"), || async {
            let state = self
                .describe_volume(&id)
                .await?
                .state()
                .map(|s| s.as_str().to_owned());
            Ok((state.as_deref() == Some("available")).then_some(()))
        })
        .await?;
        Ok(id)
    }

    /// `n` gp3 volumes of 1 GiB in [`ZONE`] with `tags`, made directly in AWS, 16 at a time
    /// (each request tried up to 5 times); does not wait for them to be `available`.
    pub async fn outside_volumes(&self, n: usize, tags: &[(&str, &str)]) -> Result<Vec<String>> {
        futures::stream::iter(0..n)
            .map(|_| {
                let req = self.volume_request(1, tags);
                async move {
                    retry("CreateVolume", || async {
                        let out = req.clone().send().await.context("CreateVolume")?;
                        out.volume_id().map(str::to_owned).context("no volume id")
                    })
                    .await
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<Result<String>>>()
            .await
            .into_iter()
            .collect()
    }

    /// The volume as AWS reports it to the test.
    pub async fn describe_volume(&self, id: &str) -> Result<Volume> {
        self.ec2
            .describe_volumes()
            .volume_ids(id)
            .send()
            .await
            .with_context(|| format!("DescribeVolumes {id}"))?
            .volumes()
            .first()
            .cloned()
            .with_context(|| format!("{id} not found"))
    }

    /// The volume's tags in AWS.
    pub async fn volume_tags(&self, id: &str) -> Result<BTreeMap<String, String>> {
        Ok(tags_of(self.describe_volume(id).await?.tags()))
    }

    /// The modifications AWS reports for the volume, oldest first by start time: at most one,
    /// since DescribeVolumesModifications answers each volume's most recent modification
    /// (the emulator follows AWS here).
    pub async fn modifications(&self, id: &str) -> Result<Vec<VolumeModification>> {
        let mut all = self
            .ec2
            .describe_volumes_modifications()
            .filters(Filter::builder().name("volume-id").values(id).build())
            .send()
            .await
            .context("DescribeVolumesModifications")?
            .volumes_modifications()
            .to_vec();
        all.sort_by_key(|m| m.start_time().map(|t| t.secs()));
        Ok(all)
    }

    /// Volumes carrying the owner tag of the object `name` of this bed.
    pub async fn volumes_of(&self, name: &str) -> Result<Vec<Volume>> {
        let out = self
            .ec2
            .describe_volumes()
            .filters(self.owner_filter(name)?)
            .send()
            .await
            .context("DescribeVolumes")?;
        Ok(out.volumes.unwrap_or_default())
    }

    /// Snapshots carrying the owner tag of the object `name` of this bed.
    pub async fn snapshots_of(&self, name: &str) -> Result<Vec<Snapshot>> {
        let out = self
            .ec2
            .describe_snapshots()
            .filters(self.owner_filter(name)?)
            .send()
            .await
            .context("DescribeSnapshots")?;
        Ok(out.snapshots.unwrap_or_default())
    }

    fn owner_filter(&self, name: &str) -> Result<Filter> {
        Ok(Filter::builder()
            .name(format!("tag:{OWNER_TAG}"))
            .values(format!("{}/{name}", self.namespace()?))
            .build())
    }

    // ---- Failure messages ------------------------------------------------------------------

    /// What a failure message wants: the status of the bed's objects (up to ten a kind), the
    /// AWS calls so far, and the logs of the controllers (killed ones first).
    pub async fn dump(&self) -> String {
        let mut out = String::new();
        if let Some(kube) = &self.kube {
            self.dump_kind::<EbsVolume>(&mut out).await;
            self.dump_kind::<AmiImage>(&mut out).await;
            self.dump_kind::<EncryptedVolumeMigration>(&mut out).await;
            match self.emu.calls().await {
                Ok(calls) => out.push_str(&format!("AWS calls: {calls:?}\n")),
                Err(e) => out.push_str(&format!("AWS calls: (could not read them: {e:#})\n")),
            }
            for (i, log) in kube.killed_logs.iter().enumerate() {
                out.push_str(&format!("log of killed controller {}:\n{log}\n", i + 1));
            }
            out.push_str(&format!("controller log:\n{}", kube.controller.log()));
        } else {
            match self.emu.calls().await {
                Ok(calls) => out.push_str(&format!("AWS calls: {calls:?}")),
                Err(e) => out.push_str(&format!("AWS calls: (could not read them: {e:#})")),
            }
        }
        out
    }

    async fn dump_kind<K: ManagedKind>(&self, out: &mut String) {
        let Ok(api) = self.api::<K>() else { return };
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                out.push_str(&format!("{}: (could not list them: {e})\n", K::KIND));
                return;
            }
        };
        for obj in list.iter().take(DUMP_OBJECTS) {
            let status = serde_json::to_value(obj)
                .ok()
                .and_then(|v| v.get("status").cloned())
                .and_then(|s| serde_json::to_string_pretty(&s).ok())
                .unwrap_or_default();
            out.push_str(&format!(
                "{} {} status: {status}\n",
                K::KIND,
                obj.name_any()
            ));
        }
        if list.len() > DUMP_OBJECTS {
            out.push_str(&format!(
                "({} more {} objects)\n",
                list.len() - DUMP_OBJECTS,
                K::KIND
            ));
        }
    }
}

impl std::fmt::Debug for Bed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bed")
            .field("emu", &self.emu)
            .field("namespace", &self.kube.as_ref().map(|k| &k.ns))
            .finish_non_exhaustive()
    }
}

// ---- Conditions, for any kind ----------------------------------------------------------------

/// The object's condition `type_`.
pub fn condition<'a, K: ManagedKind>(obj: &'a K, type_: &str) -> Option<&'a Condition> {
    find(obj.conditions(), type_)
}

/// Whether condition `type_` has `status` (any reason).
pub fn is<K: ManagedKind>(obj: &K, type_: &str, status: ConditionStatus) -> bool {
    condition(obj, type_).is_some_and(|c| c.status == status)
}

/// `Ready=True`.
pub fn is_ready<K: ManagedKind>(obj: &K) -> bool {
    is(obj, READY, ConditionStatus::True)
}

/// Whether condition `type_` has `status` and `reason`.
pub fn has_condition<K: ManagedKind>(
    obj: &K,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
) -> bool {
    condition(obj, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

/// [`has_condition`], written for the object's current generation.
pub fn has_current_condition<K: ManagedKind>(
    obj: &K,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
) -> bool {
    condition(obj, type_).is_some_and(|c| {
        c.status == status && c.reason == reason && c.observed_generation == obj.meta().generation
    })
}

/// The message of condition `type_` (empty without one).
pub fn condition_message<K: ManagedKind>(obj: &K, type_: &str) -> String {
    condition(obj, type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

// ---- EbsVolume ---------------------------------------------------------------------------

/// `status.volumeId`.
pub fn volume_id(v: &EbsVolume) -> Result<String> {
    v.status
        .as_ref()
        .and_then(|s| s.volume_id.clone())
        .with_context(|| format!("{} has no status.volumeId", v.name_any()))
}

// ---- Small things ----------------------------------------------------------------------------

/// AWS tags as a map.
pub fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

/// The sum of the samples of metric `name` (Prometheus text) whose labels include every
/// `(label, value)` of `labels`.
pub fn metric_sum(body: &str, name: &str, labels: &[(&str, &str)]) -> Result<u64> {
    let mut sum = 0;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_set, value) = match rest.strip_prefix('{') {
            Some(rest) => rest
                .split_once('}')
                .with_context(|| format!("unclosed labels in {line}"))?,
            None if rest.starts_with(' ') => ("", rest),
            None => continue, // another metric whose name starts with `name`
        };
        let matches = labels.iter().all(|(label, want)| {
            label_set
                .split(',')
                .any(|pair| pair == format!("{label}=\"{want}\""))
        });
        if matches {
            let value = value
                .split_whitespace()
                .next()
                .with_context(|| format!("no value in {line}"))?;
            sum += value
                .parse::<f64>()
                .with_context(|| format!("value of {line}"))? as u64;
        }
    }
    Ok(sum)
}

/// The object `name` of kind `K` in namespace `ns` with this spec, as JSON.
pub fn manifest_in<K: ManagedKind>(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": { "name": name, "namespace": ns },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn metric_sum_adds_the_samples_whose_labels_match() -> anyhow::Result<()> {
        let body = "# HELP ec2_reconciler_reconciles Reconciles\n\
                    ec2_reconciler_reconciles_total{kind=\"EbsVolume\",outcome=\"success\"} 5\n\
                    ec2_reconciler_reconciles_total{kind=\"EbsVolume\",outcome=\"terminal\"} 2\n\
                    ec2_reconciler_reconciles_total{kind=\"AmiImage\",outcome=\"success\"} 7\n\
                    ec2_reconciler_reconciles_total_other{kind=\"EbsVolume\"} 100\n\
                    ec2_reconciler_status_writes_total{kind=\"EbsVolume\"} 3\n";
        let reconciles = "ec2_reconciler_reconciles_total";
        assert_eq!(metric_sum(body, reconciles, &[("kind", "EbsVolume")])?, 7);
        assert_eq!(
            metric_sum(
                body,
                reconciles,
                &[("kind", "EbsVolume"), ("outcome", "success")]
            )?,
            5
        );
        assert_eq!(metric_sum(body, reconciles, &[])?, 14);
        assert_eq!(
            metric_sum(body, reconciles, &[("kind", "EncryptedVolumeMigration")])?,
            0
        );
        assert_eq!(
            metric_sum(body, "ec2_reconciler_status_writes_total", &[])?,
            3
        );
        Ok(())
    }
}
