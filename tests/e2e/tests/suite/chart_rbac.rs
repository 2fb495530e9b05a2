//! The chart's RBAC is enough, and no more than needed: the apiserver allows the chart's
//! ServiceAccount every request the controller makes and denies others, and the controller,
//! running as that ServiceAccount (a client certificate with that identity), takes a volume
//! through create and delete without a Kubernetes API failure.
//!
//! The ServiceAccount, Roles and bindings are what `helm template` renders from the chart,
//! and the controller runs as the ServiceAccount the rendered Deployment names.
//!
//! Every check reads a structured answer (SubjectAccessReview `allowed`, conditions,
//! finalizers, events, the Lease), never the controller's log. Not the controller's
//! `reconciles_total{outcome="kubernetes"}` either: it also counts optimistic-concurrency
//! conflicts (409), which happen with every permission granted.

use anyhow::{Context, Result, ensure};
use e2e::bed::ZONE;
use e2e::helm::{kind, name};
use e2e::{Bed, Helm, Rendered, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::reconcile::FINALIZER;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const RELEASE: &str = "ec2r";

/// The kinds of the chart's identity and permissions.
const RBAC_KINDS: [&str; 5] = [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// The chart as `helm template` renders it for a release named `RELEASE` in `namespace`.
fn rendered(helm: &Helm, namespace: &str) -> Result<Rendered> {
    helm.template(RELEASE, namespace, &[])
}

/// The ServiceAccount the rendered Deployment runs as.
fn deployment_service_account(chart: &Rendered) -> Result<String> {
    let deployment = chart.only("Deployment")?;
    deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .map(str::to_owned)
        .context("the rendered Deployment names no serviceAccountName")
}

/// Applies the rendered ServiceAccount and RBAC of a release in `ns`, as the admin.
/// Cluster-scoped names get the namespace in them so parallel runs do not collide (`ec2r` ->
/// `ec2r-<ns>`, `ec2r-tenant` -> `ec2r-<ns>-tenant`).
async fn apply_rendered_rbac(admin: &Client, chart: &Rendered, ns: &str) -> Result<()> {
    let docs: Vec<serde_json::Value> = chart
        .docs
        .iter()
        .filter(|d| RBAC_KINDS.contains(&kind(d)))
        .cloned()
        .collect();
    let found: Vec<(&str, &str)> = docs.iter().map(|d| (kind(d), name(d))).collect();
    ensure!(
        docs.len() == 6,
        "expected the controller's ServiceAccount, ClusterRole, ClusterRoleBinding, Role and RoleBinding and the tenants' ClusterRole, got {found:?}"
    );
    for mut doc in docs {
        let kind = kind(&doc).to_owned();
        if kind.starts_with("Cluster") {
            let per_test = |name: &serde_json::Value| {
                let name = name.as_str().unwrap_or_default();
                json!(format!(
                    "{RELEASE}-{ns}{}",
                    name.strip_prefix(RELEASE).unwrap_or(name)
                ))
            };
            doc["metadata"]["name"] = per_test(&doc["metadata"]["name"]);
            if kind == "ClusterRoleBinding" {
                doc["roleRef"]["name"] = per_test(&doc["roleRef"]["name"]);
            }
        }
        let gvk = kube::core::GroupVersionKind::try_from(&kube::core::TypeMeta {
            api_version: doc["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: kind.clone(),
        })?;
        let resource = kube::core::ApiResource::from_gvk(&gvk);
        let name = name(&doc).to_owned();
        let api: Api<kube::core::DynamicObject> = if kind.starts_with("Cluster") {
            Api::all_with(admin.clone(), &resource)
        } else {
            Api::namespaced_with(admin.clone(), ns, &resource)
        };
        api.patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .with_context(|| format!("{kind} {name}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn the_controller_works_with_exactly_the_charts_permissions() -> Result<()> {
    // The ServiceAccount's name does not depend on the namespace, which the bed creates: a
    // first rendering names it, the controller starts as it and retries until the RBAC
    // rendered for the bed's namespace lets it in.
    let helm = Helm::new()?;
    let service_account = deployment_service_account(&rendered(&helm, "not-yet-known")?)?;
    let bed = Bed::builder("rbac")
        .service_account(&service_account)
        .leader_elect("rbac")
        .start()
        .await?;
    let admin = bed.client()?;
    let ns = bed.namespace()?.to_owned();
    let chart = rendered(&helm, &ns)?;
    ensure!(
        deployment_service_account(&chart)? == service_account,
        "the Deployment's ServiceAccount depends on the namespace"
    );
    ensure!(
        chart
            .get("ServiceAccount", &service_account)?
            .pointer("/metadata/namespace")
            .and_then(serde_json::Value::as_str)
            == Some(ns.as_str()),
        "the rendered ServiceAccount {service_account} is not in the release namespace {ns}"
    );
    apply_rendered_rbac(&admin, &chart, &ns).await?;
    let user = format!("system:serviceaccount:{ns}:{service_account}");
    access_is_exactly_what_the_controller_needs(&admin, &ns, &user, &["system:serviceaccounts"])
        .await?;

    bed.create::<EbsVolume>("data", json!({ "availabilityZone": ZONE, "sizeGiB": 8 }))
        .await?;
    let ready = bed.wait_ready::<EbsVolume>("data").await?;
    ensure!(
        ready.finalizers().iter().any(|f| f == FINALIZER),
        "Ready=True with the finalizer {FINALIZER} expected: {:?}",
        ready.metadata.finalizers
    );
    // The Lease (get, create, update in the release's namespace) is held by the controller.
    let lease = Api::<Lease>::namespaced(admin.clone(), &ns)
        .get("ec2-reconciler")
        .await?;
    ensure!(
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty()),
        "the controller holds no Lease"
    );

    // Gone means the controller removed its finalizer (a patch of the object).
    bed.delete::<EbsVolume>("data").await?;
    bed.wait_gone::<EbsVolume>("data").await?;

    // Events (create, patch) reached the apiserver: publishing one is best effort, so a
    // denied event would fail nothing else.
    ensure!(
        bed.events::<EbsVolume>("data", "CreatedVolume").await? >= 1,
        "no CreatedVolume event about data"
    );
    Ok(())
}

/// One request the controller makes (or must not be able to make).
struct Access {
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verb: &'static str,
    /// `None`: the release's namespace.
    namespace: Option<&'static str>,
}

const fn access(
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verb: &'static str,
) -> Access {
    Access {
        group,
        resource,
        subresource,
        verb,
        namespace: None,
    }
}

const EC2: &str = "ec2.reconciler.dev";
const KINDS: [&str; 3] = ["ebsvolumes", "amiimages", "encryptedvolumemigrations"];

/// Every request the controller makes: watch and patch its kinds, write their status and
/// finalizers, publish events, hold its Lease.
fn needed() -> Vec<Access> {
    let mut needed = Vec::new();
    for kind in KINDS {
        for verb in ["get", "list", "watch", "patch", "update"] {
            needed.push(access(EC2, kind, "", verb));
        }
        for verb in ["get", "patch", "update"] {
            needed.push(access(EC2, kind, "status", verb));
        }
        needed.push(access(EC2, kind, "finalizers", "update"));
    }
    for verb in ["create", "patch"] {
        needed.push(access("events.k8s.io", "events", "", verb));
    }
    for verb in ["get", "create", "update"] {
        needed.push(access("coordination.k8s.io", "leases", "", verb));
    }
    // Namespace labels carry the administrator's grants.
    for verb in ["get", "list", "watch"] {
        needed.push(Access {
            namespace: Some(""),
            ..access("", "namespaces", "", verb)
        });
    }
    needed
}

/// Requests the controller never makes, which the chart must not allow.
fn not_needed() -> Vec<Access> {
    let mut denied = Vec::new();
    for kind in KINDS {
        for verb in ["create", "delete"] {
            denied.push(access(EC2, kind, "", verb));
        }
    }
    denied.push(access("", "secrets", "", "get"));
    denied.push(access("", "pods", "", "list"));
    denied.push(access(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "",
        "update",
    ));
    denied.push(Access {
        namespace: Some("kube-system"),
        ..access("coordination.k8s.io", "leases", "", "update")
    });
    // Reading grants is not granting: the controller never changes a Namespace.
    for verb in ["patch", "update"] {
        denied.push(Access {
            namespace: Some(""),
            ..access("", "namespaces", "", verb)
        });
    }
    denied
}

/// Asks the apiserver, as the admin, whether `user` may make each request: allowed for
/// every one the controller needs, denied for the others.
async fn access_is_exactly_what_the_controller_needs(
    admin: &Client,
    ns: &str,
    user: &str,
    groups: &[&str],
) -> Result<()> {
    access_is(admin, ns, user, groups, needed(), not_needed()).await
}

/// Asks the apiserver, as the admin, whether `user` may make each request: every one of
/// `allowed` must be allowed, every one of `denied` denied.
async fn access_is(
    admin: &Client,
    ns: &str,
    user: &str,
    groups: &[&str],
    allowed: Vec<Access>,
    denied: Vec<Access>,
) -> Result<()> {
    let reviews: Api<SubjectAccessReview> = Api::all(admin.clone());
    let mut wrong = Vec::new();
    for (want, requests) in [(true, allowed), (false, denied)] {
        for a in requests {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(user.to_owned()),
                    groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(a.group.to_owned()),
                        resource: Some(a.resource.to_owned()),
                        subresource: Some(a.subresource.to_owned()),
                        verb: Some(a.verb.to_owned()),
                        namespace: Some(a.namespace.unwrap_or(ns).to_owned()),
                        ..ResourceAttributes::default()
                    }),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let answer = reviews.create(&PostParams::default(), &review).await?;
            let allowed = answer.status.as_ref().is_some_and(|s| s.allowed);
            if allowed != want {
                let sub = if a.subresource.is_empty() {
                    String::new()
                } else {
                    format!("/{}", a.subresource)
                };
                let group = if a.group.is_empty() { "core" } else { a.group };
                wrong.push(format!(
                    "{} {group}/{}{sub} in {}: allowed={allowed}, expected {want}",
                    a.verb,
                    a.resource,
                    a.namespace.unwrap_or(ns)
                ));
            }
        }
    }
    ensure!(
        wrong.is_empty(),
        "the chart's RBAC is wrong:\n{}",
        wrong.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn a_tenant_with_the_charts_tenant_role_cannot_grant_itself_anything() -> Result<()> {
    let cp = shared()?;
    let admin = cp.client().await?;
    let ns = new_namespace(&admin, "tenant").await?;
    let chart = rendered(&Helm::new()?, &ns)?;
    apply_rendered_rbac(&admin, &chart, &ns).await?;
    // What a cluster administrator does for a team: the tenant role, bound in its namespace.
    let user = format!("tenant-of-{ns}");
    let binding: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "team", "namespace": ns },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": format!("{RELEASE}-{ns}-tenant"),
        },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
    }))?;
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await?;

    let mut allowed = Vec::new();
    for kind in KINDS {
        for verb in ["get", "list", "create", "patch", "delete"] {
            allowed.push(access(EC2, kind, "", verb));
        }
    }
    let mut denied = Vec::new();
    for kind in KINDS {
        // Another team's namespace, and the status the controller alone writes.
        denied.push(Access {
            namespace: Some("default"),
            ..access(EC2, kind, "", "create")
        });
        denied.push(access(EC2, kind, "status", "patch"));
    }
    // The grants: Namespace labels, and the RBAC that would hand out more.
    for verb in ["patch", "update"] {
        denied.push(Access {
            namespace: Some(""),
            ..access("", "namespaces", "", verb)
        });
    }
    denied.push(access(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "",
        "create",
    ));
    denied.push(Access {
        namespace: Some(""),
        ..access(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "create",
        )
    });
    access_is(&admin, &ns, &user, &[], allowed, denied).await
}
