//! The chart's RBAC is enough, and no more than needed: the controller, running as the
//! chart's ServiceAccount (a client certificate with that identity), takes a volume through
//! create and delete with no permission error.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{ControllerProcess, Emulator, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const RELEASE: &str = "ec2r";

/// The chart's RBAC template for a release named `RELEASE` in `namespace`. The template
/// uses only these two values, so plain substitution renders it exactly as Helm would.
fn rendered_rbac(namespace: &str) -> Result<Vec<serde_json::Value>> {
    let path = e2e::paths::repo_root().join("charts/ec2-reconciler/templates/rbac.yaml");
    let template = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let rendered = template
        .replace("{{ .Release.Name }}", RELEASE)
        .replace("{{ .Release.Namespace }}", namespace);
    ensure!(
        !rendered.contains("{{"),
        "rbac.yaml uses template values this test does not render"
    );
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&rendered) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

#[tokio::test]
async fn the_controller_works_with_exactly_the_charts_permissions() -> Result<()> {
    let cp = shared()?;
    let admin = cp.client().await?;
    let ns = new_namespace(&admin, "rbac").await?;
    // Cluster-scoped names are per test namespace so parallel runs do not collide.
    let docs = rendered_rbac(&ns)?;
    ensure!(
        docs.len() == 4,
        "expected ClusterRole, ClusterRoleBinding, Role and RoleBinding, got {}",
        docs.len()
    );
    for mut doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        if kind.starts_with("Cluster") {
            doc["metadata"]["name"] = json!(format!("{RELEASE}-{ns}"));
            if kind == "ClusterRoleBinding" {
                doc["roleRef"]["name"] = json!(format!("{RELEASE}-{ns}"));
            }
        }
        let gvk = kube::core::GroupVersionKind::try_from(&kube::core::TypeMeta {
            api_version: doc["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: kind.clone(),
        })?;
        let resource = kube::core::ApiResource::from_gvk(&gvk);
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let api: Api<kube::core::DynamicObject> = if kind.starts_with("Cluster") {
            Api::all_with(admin.clone(), &resource)
        } else {
            Api::namespaced_with(admin.clone(), &ns, &resource)
        };
        api.patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .with_context(|| format!("{kind} {name}"))?;
    }

    let user = format!("system:serviceaccount:{ns}:{RELEASE}");
    let kubeconfig = cp.state_dir().join(format!("kubeconfig-{ns}"));
    cp.write_kubeconfig(&kubeconfig, &user, &["system:serviceaccounts"])?;
    let emu = Emulator::start().await?;
    let args = [
        "--namespace",
        ns.as_str(),
        "--leader-elect",
        "--leader-election-namespace",
        ns.as_str(),
    ];
    let controller = ControllerProcess::spawn_with_kubeconfig(cp, &emu, &kubeconfig, &args)?;

    let api: Api<EbsVolume> = Api::namespaced(admin.clone(), &ns);
    let volume: EbsVolume = serde_json::from_value(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
        "metadata": { "name": "data", "namespace": ns },
        "spec": { "availabilityZone": "us-east-1a", "sizeGiB": 8 }
    }))?;
    api.create(&PostParams::default(), &volume).await?;
    e2e::objects::volume_ready(&api, "data", WAIT)
        .await
        .map(|_| ())
        .with_context(|| controller.log())?;
    api.delete("data", &DeleteParams::default()).await?;
    e2e::objects::volume_gone(&api, "data", WAIT)
        .await
        .with_context(|| controller.log())?;
    let log = controller.log();
    ensure!(
        !log.contains("403") && !log.contains("Forbidden") && !log.contains("forbidden"),
        "permission errors:\n{log}"
    );
    Ok(())
}
