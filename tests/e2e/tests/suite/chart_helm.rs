//! The Helm chart, with the real `helm` (built by `hack/helm-binary.sh`): it lints, renders
//! with its defaults and with IRSA or EKS Pod Identity values, refuses a misspelt or
//! mistyped value by its schema, installs into a real apiserver (CRDs included), upgrades
//! them and keeps them on uninstall, and its Deployment passes the `restricted` Pod Security
//! admission of the apiserver.
//!
//! Every check reads a structured fact: helm's exit code, the parsed YAML it renders or the
//! JSON it reports, objects read back from the apiserver, the apiserver's status code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::helm::{kind, name};
use e2e::{ControlPlane, ControlPlaneOptions, Helm, Rendered, eventually, paths, shared};
use ec2_reconciler::api::{EbsVolume, crds};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const RELEASE: &str = "ec2r";
const NAMESPACE: &str = "ec2-reconciler";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ec2-reconciler";
/// The README's `--set` for IRSA, as helm receives it once the shell has removed the quotes.
const IRSA_ANNOTATION: &str = "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn";
const KEEP: &str = "helm.sh/resource-policy";

fn yaml_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `values.yaml` and `values.schema.json` of the chart.
fn values_and_schema() -> Result<(Value, Value)> {
    let dir = paths::chart_dir();
    let values = yaml_file(&dir.join("values.yaml"))?;
    let path = dir.join("values.schema.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok((values, serde_json::from_str(&text)?))
}

fn pod_spec(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

/// The controller container of a rendered Deployment.
fn container(deployment: &Value) -> Result<&Value> {
    pod_spec(deployment)["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "controller"))
        .context("the Deployment has no container named controller")
}

/// The controller container's plain `env` entries, by name.
fn env(deployment: &Value) -> Result<BTreeMap<String, Value>> {
    Ok(container(deployment)?["env"]
        .as_array()
        .context("the controller container has no env")?
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["value"].clone(),
            )
        })
        .collect())
}

/// The ServiceAccount the Deployment runs as.
fn runs_as(chart: &Rendered) -> Result<String> {
    pod_spec(chart.only("Deployment")?)["serviceAccountName"]
        .as_str()
        .map(str::to_owned)
        .context("the Deployment names no serviceAccountName")
}

/// Every ServiceAccount subject of the rendered bindings, as `namespace/name`.
fn bound_service_accounts(chart: &Rendered) -> Vec<String> {
    chart
        .docs
        .iter()
        .filter(|d| matches!(kind(d), "ClusterRoleBinding" | "RoleBinding"))
        .flat_map(|d| d["subjects"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["kind"] == "ServiceAccount")
        .map(|s| {
            format!(
                "{}/{}",
                s["namespace"].as_str().unwrap_or_default(),
                s["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The Deployment runs as `service_account`, which both controller bindings name.
fn everything_names_service_account(chart: &Rendered, service_account: &str) -> Result<()> {
    ensure!(
        runs_as(chart)? == service_account,
        "the Deployment runs as {}, not {service_account}",
        runs_as(chart)?
    );
    let expected = format!("{NAMESPACE}/{service_account}");
    let bound = bound_service_accounts(chart);
    ensure!(
        bound == [expected.clone(), expected.clone()],
        "the ClusterRoleBinding and the RoleBinding should name {expected}, they name {bound:?}"
    );
    Ok(())
}

#[test]
fn helm_lint_finds_nothing_wrong_with_the_chart() -> Result<()> {
    let helm = Helm::new()?;
    let chart = paths::chart_dir();
    let chart = chart.to_string_lossy();
    // --strict: a warning fails too. The values are checked against the schema as well.
    helm.ok(&["lint", "--strict", &chart])?;
    // Every optional part on: IRSA, the ServiceMonitor, the dashboard.
    helm.ok(&[
        "lint",
        "--strict",
        &chart,
        "--set",
        &format!("{IRSA_ANNOTATION}={ROLE_ARN}"),
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=prometheus",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
    ])?;
    Ok(())
}

#[test]
fn with_its_defaults_the_chart_renders_the_controller_its_permissions_and_the_crds() -> Result<()> {
    let chart = Helm::new()?.template(RELEASE, NAMESPACE, &[])?;
    let mut expected: Vec<(String, String)> = [
        ("ClusterRole", "ec2r"),
        ("ClusterRole", "ec2r-tenant"),
        ("ClusterRoleBinding", "ec2r"),
        ("Deployment", "ec2r"),
        ("Role", "ec2r-leader-election"),
        ("RoleBinding", "ec2r-leader-election"),
        ("Service", "ec2r-metrics"),
        ("ServiceAccount", "ec2r"),
    ]
    .iter()
    .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
    .collect();
    for (_, crd) in crds() {
        let crd_name = crd.metadata.name.clone().unwrap_or_default();
        expected.push(("CustomResourceDefinition".to_owned(), crd_name.clone()));
        // Exactly the CRD the Rust types define, kept when the release goes.
        let rendered = chart.get("CustomResourceDefinition", &crd_name)?;
        ensure!(
            rendered["spec"] == serde_json::to_value(&crd.spec)?,
            "the chart's {crd_name} differs from the Rust types' (run `make crds`)"
        );
        ensure!(
            rendered["metadata"]["annotations"][KEEP] == "keep",
            "{crd_name} lacks {KEEP}: keep"
        );
    }
    expected.sort();
    ensure!(
        chart.kinds_and_names() == expected,
        "rendered {:?}, expected {expected:?}",
        chart.kinds_and_names()
    );

    let (values, _) = values_and_schema()?;
    let meta = yaml_file(&paths::chart_dir().join("Chart.yaml"))?;
    let deployment = chart.get("Deployment", RELEASE)?;
    ensure!(deployment["spec"]["replicas"] == 2, "{deployment}");
    let controller = container(deployment)?;
    let image = format!(
        "{}:{}",
        values["image"]["repository"].as_str().unwrap_or_default(),
        meta["appVersion"].as_str().unwrap_or_default()
    );
    ensure!(controller["image"] == image.as_str(), "{controller}");
    ensure!(
        controller["args"] == json!(["run", "--leader-elect"]),
        "{controller}"
    );
    let env = env(deployment)?;
    for (var, value) in [
        ("AWS_REGION", "us-east-1"),
        ("EC2R_CLUSTER_NAME", "default"),
        ("EC2R_SINGLE_TENANT", "false"),
        ("EC2R_DENY_OBSERVE_UNOWNED", "false"),
    ] {
        ensure!(env.get(var) == Some(&json!(value)), "{var}: {env:?}");
    }
    ensure!(
        !env.contains_key("EC2R_NAMESPACE"),
        "watches every namespace: {env:?}"
    );
    everything_names_service_account(&chart, RELEASE)?;
    ensure!(
        chart.get("ServiceAccount", RELEASE)?["metadata"]
            .get("annotations")
            .is_none(),
        "the default ServiceAccount carries annotations"
    );

    // The restricted Pod Security Standard, field by field (the apiserver's own verdict is
    // in the_deployment_passes_the_restricted_pod_security_admission).
    ensure!(
        pod_spec(deployment)["securityContext"]
            == json!({
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": { "type": "RuntimeDefault" },
            }),
        "pod securityContext: {}",
        pod_spec(deployment)["securityContext"]
    );
    ensure!(
        controller["securityContext"]
            == json!({
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "runAsNonRoot": true, "capabilities": { "drop": ["ALL"] },
                "seccompProfile": { "type": "RuntimeDefault" },
            }),
        "container securityContext: {}",
        controller["securityContext"]
    );

    // What values.yaml tells a platform that assigns user ids itself to do.
    let assigned_ids = Helm::new()?.template(
        RELEASE,
        NAMESPACE,
        &[
            "--set",
            "podSecurityContext.runAsUser=null",
            "--set",
            "podSecurityContext.runAsGroup=null",
        ],
    )?;
    let pod_context = &pod_spec(assigned_ids.only("Deployment")?)["securityContext"];
    ensure!(
        *pod_context
            == json!({ "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } }),
        "pod securityContext with the ids unset: {pod_context}"
    );

    let without_crds =
        Helm::new()?.template(RELEASE, NAMESPACE, &["--set", "installCRDs=false"])?;
    ensure!(
        without_crds.of_kind("CustomResourceDefinition").count() == 0,
        "installCRDs=false still renders CRDs"
    );
    Ok(())
}

#[test]
fn irsa_values_annotate_the_service_account_the_controller_runs_as() -> Result<()> {
    // The README's install command.
    let chart = Helm::new()?.template(
        RELEASE,
        NAMESPACE,
        &[
            "--set",
            "region=eu-west-1",
            "--set",
            "clusterName=prod-1",
            "--set",
            &format!("{IRSA_ANNOTATION}={ROLE_ARN}"),
        ],
    )?;
    let account = chart.only("ServiceAccount")?;
    ensure!(
        account["metadata"]["annotations"] == json!({ "eks.amazonaws.com/role-arn": ROLE_ARN }),
        "{account}"
    );
    ensure!(account["metadata"]["namespace"] == NAMESPACE, "{account}");
    everything_names_service_account(&chart, name(account))?;
    let env = env(chart.only("Deployment")?)?;
    ensure!(
        env.get("AWS_REGION") == Some(&json!("eu-west-1")),
        "{env:?}"
    );
    ensure!(
        env.get("EC2R_CLUSTER_NAME") == Some(&json!("prod-1")),
        "{env:?}"
    );
    Ok(())
}

#[test]
fn eks_pod_identity_needs_no_annotation_and_gets_a_service_account_name_that_stays_put()
-> Result<()> {
    // A Pod Identity association names a namespace and a ServiceAccount: the chart needs no
    // annotation for it, and the name must not change with other values.
    let helm = Helm::new()?;
    for values in [
        &[][..],
        &["--set", "replicas=3", "--set", "region=eu-central-1"][..],
    ] {
        let chart = helm.template(RELEASE, NAMESPACE, values)?;
        let account = chart.only("ServiceAccount")?;
        ensure!(name(account) == RELEASE, "{account}");
        ensure!(
            account["metadata"].get("annotations").is_none(),
            "{account}"
        );
        everything_names_service_account(&chart, RELEASE)?;
    }

    // The name an association was made for, set explicitly (from a values file, as GitOps
    // tools pass values).
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("values.yaml");
    std::fs::write(
        &file,
        "serviceAccount:\n  name: ec2-reconciler-controller\n",
    )?;
    let chart = helm.template(RELEASE, NAMESPACE, &["-f", &file.to_string_lossy()])?;
    ensure!(
        name(chart.only("ServiceAccount")?) == "ec2-reconciler-controller",
        "{:?}",
        chart.kinds_and_names()
    );
    everything_names_service_account(&chart, "ec2-reconciler-controller")?;

    // A ServiceAccount made elsewhere (with its association): not rendered, still used.
    let chart = helm.template(
        RELEASE,
        NAMESPACE,
        &[
            "--set",
            "serviceAccount.create=false",
            "--set",
            "serviceAccount.name=made-by-terraform",
        ],
    )?;
    ensure!(
        chart.of_kind("ServiceAccount").count() == 0,
        "serviceAccount.create=false still renders a ServiceAccount"
    );
    everything_names_service_account(&chart, "made-by-terraform")
}

#[test]
fn a_misspelt_or_mistyped_value_fails_helm_template_and_is_named() -> Result<()> {
    let helm = Helm::new()?;
    let chart = paths::chart_dir();
    let chart = chart.to_string_lossy();
    let mut wrong = Vec::new();
    // (--set argument, the value the error must name)
    for (set, named) in [
        ("replica=2", "replica"),
        ("replicas=two", "replicas"),
        ("serviceAccount.anotations.a=b", "anotations"),
        ("tenancy.singleTenant=yes", "singleTenant"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("region=Ireland", "region"),
        ("resyncSeconds=0", "resyncSeconds"),
        ("metrics.serviceMonitor.enable=true", "enable"),
        ("metrics.serviceMonitor.interval=soon", "interval"),
    ] {
        let run = helm.run(&[
            "template",
            RELEASE,
            &chart,
            "--namespace",
            NAMESPACE,
            "--set",
            set,
        ])?;
        let rendered = Rendered::parse(&run.stdout).map(|r| r.docs.len()).ok();
        if run.code != Some(1) || !run.stderr_words().contains(&named) || rendered != Some(0) {
            wrong.push(format!(
                "--set {set}: exit {:?}, {rendered:?} documents rendered, stderr does not name \
                 {named}? stderr: {}",
                run.code,
                run.stderr.trim()
            ));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

#[test]
fn every_value_is_documented_by_the_schema() -> Result<()> {
    let (values, schema) = values_and_schema()?;
    let mut problems = Vec::new();
    documented(&values, &schema, "", &mut problems);
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    // The Region is checked by the same pattern as the CRDs' region fields.
    let region = &schema["properties"]["region"];
    ensure!(
        region["pattern"] == ec2_reconciler::api::common::REGION_PATTERN
            && region["maxLength"] == ec2_reconciler::api::common::REGION_MAX_LENGTH,
        "values.schema.json's region differs from api::common's REGION_PATTERN/REGION_MAX_LENGTH"
    );
    Ok(())
}

/// Every key of `values` is a property of `schema` with a type and a description, every
/// property of a closed object has a default in `values`, recursively.
fn documented(values: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    let (Some(values), Some(properties)) = (values.as_object(), schema["properties"].as_object())
    else {
        return;
    };
    if schema["additionalProperties"] != false {
        problems.push(format!("{path}: the schema accepts unknown keys"));
    }
    for (key, value) in values {
        let here = format!("{path}.{key}");
        match properties.get(key) {
            None => problems.push(format!("{here}: not in values.schema.json")),
            Some(property) => {
                if property["description"].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{here}: no description"));
                }
                if property.get("type").is_none() {
                    problems.push(format!("{here}: no type"));
                }
                documented(value, property, &here, problems);
            }
        }
    }
    for key in properties.keys() {
        if !values.contains_key(key) {
            problems.push(format!(
                "{path}.{key}: in the schema but not in values.yaml"
            ));
        }
    }
}

/// The one release this test installs, upgrades and uninstalls: on a control plane of its
/// own, since the shared one has the CRDs already (installed by the harness, not by Helm).
#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_keeping_the_crds() -> Result<()> {
    let cp = ControlPlane::start(ControlPlaneOptions::default()).await?;
    let admin = cp.client().await?;
    let helm = Helm::new()?.with_kubeconfig(cp.admin_kubeconfig_path());
    let chart_dir = paths::chart_dir();
    let chart = chart_dir.to_string_lossy();
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let crd_names: Vec<String> = crds()
        .iter()
        .map(|(_, crd)| crd.metadata.name.clone().unwrap_or_default())
        .collect();

    // A misspelt value: nothing is installed.
    let refused = helm.run(&[
        "install",
        RELEASE,
        &chart,
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "replica=3",
    ])?;
    ensure!(
        refused.code == Some(1),
        "install with a misspelt value: {refused:?}"
    );
    ensure!(
        ours(&crd_api).await?.is_empty() && releases(&helm)? == json!([]),
        "a refused install left CRDs or a release behind"
    );

    // The README's install command.
    let install = [
        "install",
        RELEASE,
        &chart,
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "region=eu-west-1",
        "--set",
        "clusterName=prod-1",
        "--set",
        &format!("{IRSA_ANNOTATION}={ROLE_ARN}"),
    ];
    helm.ok(&install)?;
    for crd in &crd_names {
        established(&crd_api, crd).await?;
    }
    let installed = crd_api.get("ebsvolumes.ec2.reconciler.dev").await?;
    let annotations = installed.metadata.annotations.clone().unwrap_or_default();
    ensure!(
        annotations.get(KEEP).map(String::as_str) == Some("keep")
            && annotations
                .get("meta.helm.sh/release-name")
                .map(String::as_str)
                == Some(RELEASE),
        "the installed CRD is not the release's, kept on uninstall: {annotations:?}"
    );
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    let deployment = serde_json::to_value(deployments.get(RELEASE).await?)?;
    ensure!(
        env(&deployment)?.get("EC2R_CLUSTER_NAME") == Some(&json!("prod-1")),
        "{deployment}"
    );
    let release = status(&helm)?;
    ensure!(
        release["version"] == 1 && release["info"]["status"] == "deployed",
        "{release}"
    );

    // A custom resource: what `keep` protects.
    let volumes: Api<EbsVolume> = Api::namespaced(admin.clone(), NAMESPACE);
    let volume: EbsVolume = serde_json::from_value(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
        "metadata": { "name": "data", "namespace": NAMESPACE },
        "spec": { "availabilityZone": "eu-west-1a", "sizeGiB": 8 },
    }))?;
    volumes.create(&PostParams::default(), &volume).await?;

    // The next chart version changes a CRD (a short name more) and a value changes: the
    // upgrade applies both. A chart's crds/ folder would not have been upgraded.
    let next = tempfile::tempdir()?;
    copy_dir(&chart_dir, next.path())?;
    edit(
        &next.path().join("Chart.yaml"),
        "\nversion: 0.1.0\n",
        "\nversion: 0.1.1\n",
    )?;
    edit(
        &next.path().join("templates/crds/ebsvolumes.yaml"),
        "    shortNames:\n    - ebs\n",
        "    shortNames:\n    - ebs\n    - ebsv\n",
    )?;
    let next_chart = next.path().to_string_lossy();
    helm.ok(&[
        "upgrade",
        RELEASE,
        &next_chart,
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "clusterName=prod-2",
    ])?;
    let upgraded = crd_api.get("ebsvolumes.ec2.reconciler.dev").await?;
    ensure!(
        upgraded.spec.names.short_names == Some(vec!["ebs".to_owned(), "ebsv".to_owned()]),
        "the upgrade did not change the CRD: {:?}",
        upgraded.spec.names
    );
    let deployment = serde_json::to_value(deployments.get(RELEASE).await?)?;
    let env_after = env(&deployment)?;
    ensure!(
        env_after.get("EC2R_CLUSTER_NAME") == Some(&json!("prod-2"))
            && env_after.get("AWS_REGION") == Some(&json!("eu-west-1")),
        "{env_after:?}"
    );
    let release = status(&helm)?;
    ensure!(
        release["version"] == 2 && release["info"]["status"] == "deployed",
        "{release}"
    );

    // Uninstall: the release's objects go, the CRDs and the custom resources stay.
    helm.ok(&["uninstall", RELEASE, "-n", NAMESPACE])?;
    ensure!(
        is_not_found(deployments.get(RELEASE).await),
        "the Deployment survived uninstall"
    );
    ensure!(
        is_not_found(Api::<ClusterRole>::all(admin.clone()).get(RELEASE).await),
        "the ClusterRole survived uninstall"
    );
    let left = releases(&helm)?;
    ensure!(left == json!([]), "releases after uninstall: {left}");
    let mut kept = ours(&crd_api).await?;
    kept.sort();
    let mut want = crd_names.clone();
    want.sort();
    ensure!(kept == want, "CRDs after uninstall: {kept:?}");
    ensure!(
        crd_api
            .get("ebsvolumes.ec2.reconciler.dev")
            .await?
            .spec
            .names
            .short_names
            == Some(vec!["ebs".to_owned(), "ebsv".to_owned()]),
        "the kept CRD is not the upgraded one"
    );
    volumes
        .get("data")
        .await
        .context("the EbsVolume did not survive uninstall")?;

    // Installing again adopts the kept CRDs (they still carry the release's ownership).
    helm.ok(&install)?;
    let release = status(&helm)?;
    ensure!(release["info"]["status"] == "deployed", "{release}");
    Ok(())
}

/// `helm status RELEASE -o json`.
fn status(helm: &Helm) -> Result<Value> {
    Ok(serde_json::from_str(&helm.ok(&[
        "status", RELEASE, "-n", NAMESPACE, "-o", "json",
    ])?)?)
}

/// `helm list -n NAMESPACE -o json`.
fn releases(helm: &Helm) -> Result<Value> {
    Ok(serde_json::from_str(
        &helm.ok(&["list", "-n", NAMESPACE, "-o", "json"])?,
    )?)
}

/// Names of the CRDs of the group `ec2.reconciler.dev` on the server.
async fn ours(api: &Api<CustomResourceDefinition>) -> Result<Vec<String>> {
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.spec.group == "ec2.reconciler.dev")
        .filter_map(|c| c.metadata.name)
        .collect())
}

async fn established(api: &Api<CustomResourceDefinition>, crd: &str) -> Result<()> {
    eventually(
        &format!("CRD {crd} Established"),
        Duration::from_secs(30),
        || async {
            let found = api.get(crd).await?;
            let conditions = found.status.and_then(|s| s.conditions).unwrap_or_default();
            Ok(conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(()))
        },
    )
    .await
}

fn is_not_found<T>(answer: kube::Result<T>) -> bool {
    matches!(answer, Err(kube::Error::Api(status)) if status.code == 404)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Replaces the one occurrence of `old` in `path` with `new`.
fn edit(path: &Path, old: &str, new: &str) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    ensure!(
        text.matches(old).count() == 1,
        "{} should contain {old:?} once",
        path.display()
    );
    std::fs::write(path, text.replacen(old, new, 1))?;
    Ok(())
}

/// The chart's Deployment, rendered for `namespace`, as the Pod its ReplicaSet would create.
fn pod_of_rendered_deployment(namespace: &str) -> Result<Value> {
    let chart = Helm::new()?.template(RELEASE, namespace, &["--set", "installCRDs=false"])?;
    let template = &chart.get("Deployment", RELEASE)?["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!("controller");
    metadata["namespace"] = json!(namespace);
    Ok(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"],
    }))
}

/// Creates `pod` with a server-side dry run (admission runs, nothing is stored): `Ok(None)`
/// when admitted, `Ok(Some((code, reason)))` when the apiserver refuses it.
async fn dry_run_create(client: &Client, pod: &Value) -> Result<Option<(u16, String)>> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let pod: Pod = serde_json::from_value(pod.clone())?;
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&params, &pod)
        .await
    {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(status)) => Ok(Some((status.code, status.reason.clone()))),
        Err(other) => bail!("creating the pod: {other}"),
    }
}

#[tokio::test]
async fn the_deployment_passes_the_restricted_pod_security_admission() -> Result<()> {
    let admin = shared()?.client().await?;
    let enforced = e2e::control_plane::new_labelled_namespace(
        &admin,
        "restricted",
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await?;
    let pod = pod_of_rendered_deployment(&enforced)?;
    if let Some(refused) = dry_run_create(&admin, &pod).await? {
        bail!("the chart's pod was refused in a restricted namespace: {refused:?}\n{pod}");
    }

    // Negative controls: the same pod, each time with one restriction lifted, is refused
    // there (so the admission above was a verdict, not an absent check), and admitted in a
    // namespace without the label.
    let open = e2e::new_namespace(&admin, "unrestricted").await?;
    let weakened: [(&str, Weaken); 3] = [
        ("allowPrivilegeEscalation removed", |pod| {
            remove(
                &mut pod["spec"]["containers"][0]["securityContext"],
                "allowPrivilegeEscalation",
            );
        }),
        ("no capability dropped", |pod| {
            remove(
                &mut pod["spec"]["containers"][0]["securityContext"],
                "capabilities",
            );
        }),
        (
            "runAsNonRoot removed from the pod and the container",
            |pod| {
                remove(&mut pod["spec"]["securityContext"], "runAsNonRoot");
                remove(
                    &mut pod["spec"]["containers"][0]["securityContext"],
                    "runAsNonRoot",
                );
            },
        ),
    ];
    for (what, weaken) in weakened {
        let mut pod = pod.clone();
        weaken(&mut pod);
        let refused = dry_run_create(&admin, &pod).await?;
        ensure!(
            refused == Some((403, "Forbidden".to_owned())),
            "{what}: expected 403 Forbidden in {enforced}, got {refused:?}"
        );
        pod["metadata"]["namespace"] = json!(open);
        let elsewhere = dry_run_create(&admin, &pod).await?;
        ensure!(
            elsewhere.is_none(),
            "{what}: refused in {open}, which enforces nothing: {elsewhere:?}"
        );
    }
    Ok(())
}

/// Lifts one restriction of a pod.
type Weaken = fn(&mut Value);

fn remove(object: &mut Value, key: &str) {
    if let Some(map) = object.as_object_mut() {
        map.remove(key);
    }
}
