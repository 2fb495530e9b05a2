//! Proves the test bed itself: a real apiserver with RBAC and client-certificate users, and
//! the AWS emulator with call counting and fault injection.

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::error::ProvideErrorMetadata as _;
use e2e::{Emulator, Fault, new_namespace, shared};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, PostParams};

#[tokio::test]
async fn apiserver_answers_and_enforces_rbac() -> Result<()> {
    let cp = shared()?;
    let admin = cp.client().await?;
    let version = admin.apiserver_version().await.context("GET /version")?;
    ensure!(version.major == "1", "unexpected version {version:?}");

    let ns = new_namespace(&admin, "testbed").await?;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .context("admin lists namespaces")?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    ensure!(names.contains(&ns), "{ns} not in {names:?}");

    let alice = cp.client_as("alice", &[]).await?;
    let denied = Api::<Namespace>::all(alice)
        .list(&ListParams::default())
        .await;
    match denied {
        Err(kube::Error::Api(status)) => {
            ensure!(status.code == 403, "expected 403, got {status:?}")
        }
        other => anyhow::bail!("expected a 403 for alice, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn client_certificates_carry_user_and_groups() -> Result<()> {
    let cp = shared()?;
    let client = cp
        .client_as("system:serviceaccount:ns1:sa1", &["team-a", "team-b"])
        .await?;
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .context("creating a SelfSubjectReview")?;
    let info = review
        .status
        .and_then(|s| s.user_info)
        .context("SelfSubjectReview has no userInfo")?;
    ensure!(
        info.username.as_deref() == Some("system:serviceaccount:ns1:sa1"),
        "{info:?}"
    );
    let groups = info.groups.unwrap_or_default();
    for g in ["team-a", "team-b", "system:authenticated"] {
        ensure!(groups.iter().any(|x| x == g), "{g} missing from {groups:?}");
    }
    Ok(())
}

#[tokio::test]
async fn kubectl_uses_the_admin_kubeconfig() -> Result<()> {
    let cp = shared()?;
    let out = cp
        .kubectl(&["get", "namespace", "default", "-o", "name"])
        .output()
        .context("running kubectl")?;
    ensure!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(String::from_utf8_lossy(&out.stdout).trim() == "namespace/default");
    Ok(())
}

#[tokio::test]
async fn emulator_counts_calls_and_injects_faults() -> Result<()> {
    let emu = Emulator::start().await?;
    let config = emu.sdk_config("us-east-1").await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let volumes = ec2
        .describe_volumes()
        .send()
        .await
        .context("DescribeVolumes")?;
    ensure!(volumes.volumes().is_empty());
    let calls = emu.calls().await?;
    ensure!(calls.count("DescribeVolumes") == 1, "{calls:?}");

    let no_retries = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    emu.inject(Fault::throttle("DescribeVolumes")).await?;
    let err = no_retries
        .describe_volumes()
        .send()
        .await
        .err()
        .context("the throttled DescribeVolumes succeeded")?;
    ensure!(
        err.code() == Some("RequestLimitExceeded"),
        "unexpected error {err:?}"
    );
    let calls = emu.calls().await?;
    ensure!(calls.count("DescribeVolumes") == 2, "{calls:?}");
    ensure!(calls.faulted_count("DescribeVolumes") == 1, "{calls:?}");

    // The rule was used up: the next call goes through.
    no_retries
        .describe_volumes()
        .send()
        .await
        .context("DescribeVolumes after the fault")?;
    emu.clear_calls().await?;
    ensure!(emu.calls().await?.total() == 0);
    emu.reset().await?;
    Ok(())
}
