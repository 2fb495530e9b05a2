//! Two replicas with leader election: one acts, the other stands by (and reports ready),
//! and when the leader is killed the standby takes over without duplicating anything.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{ControllerProcess, Emulator, eventually, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt("ec2-reconciler")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

async fn create_and_wait_ready(api: &Api<EbsVolume>, ns: &str, name: &str) -> Result<()> {
    let volume: EbsVolume = serde_json::from_value(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
        "metadata": { "name": name, "namespace": ns },
        "spec": { "availabilityZone": "us-east-1a", "sizeGiB": 8 }
    }))?;
    api.create(&PostParams::default(), &volume).await?;
    e2e::objects::volume_ready(api, name, WAIT)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn only_the_leader_acts_and_a_standby_takes_over_when_it_dies() -> Result<()> {
    let cp = shared()?;
    let client = cp.client().await?;
    let ns = new_namespace(&client, "leader").await?;
    let emu = Emulator::start().await?;
    let args = [
        "--namespace",
        ns.as_str(),
        "--leader-elect",
        "--leader-election-namespace",
        ns.as_str(),
    ];
    let mut first = ControllerProcess::spawn(
        cp,
        &emu,
        &["--identity", "first"]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>(),
    )?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    eventually("the first replica to lead", WAIT, || async {
        Ok((holder(&leases).await?.as_deref() == Some("first")).then_some(()))
    })
    .await
    .with_context(|| first.log())?;
    let mut second = ControllerProcess::spawn(
        cp,
        &emu,
        &["--identity", "second"]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>(),
    )?;

    // The standby is healthy and ready (a rolling update can proceed) but does not act.
    eventually("the standby to report ready", WAIT, || async {
        let (code, body) = second.get("/readyz").await?;
        Ok((code == 200 && body.contains("standby")).then_some(()))
    })
    .await
    .with_context(|| second.log())?;

    let api: Api<EbsVolume> = Api::namespaced(client.clone(), &ns);
    create_and_wait_ready(&api, &ns, "before")
        .await
        .with_context(|| first.log())?;
    // The standby did not act: the Lease is still the first replica's, and by its own
    // /metrics the second has reconciled nothing and called AWS not once, while the first's
    // /metrics count the reconciles it made under the same names.
    let leading = holder(&leases).await?;
    ensure!(
        leading.as_deref() == Some("first"),
        "the Lease moved to {leading:?} while the first replica was alive"
    );
    let acted = |metrics: &str| -> Result<(f64, f64)> {
        let samples = parse_metrics(metrics)?;
        Ok((
            metric_sum(&samples, "ec2_reconciler_reconciles_total", &[]),
            metric_sum(&samples, "ec2_reconciler_aws_calls_total", &[]),
        ))
    };
    let (code, leader_metrics) = first.get("/metrics").await?;
    ensure!(code == 200, "GET /metrics of the leader: HTTP {code}");
    let (leader_reconciles, leader_calls) = acted(&leader_metrics)?;
    ensure!(
        leader_reconciles >= 1.0 && leader_calls >= 1.0,
        "the leader's /metrics show {leader_reconciles} reconciles and {leader_calls} AWS calls:\n{leader_metrics}"
    );
    let (code, standby_metrics) = second.get("/metrics").await?;
    ensure!(code == 200, "GET /metrics of the standby: HTTP {code}");
    let (standby_reconciles, standby_calls) = acted(&standby_metrics)?;
    ensure!(
        standby_reconciles == 0.0 && standby_calls == 0.0,
        "the standby acted: {standby_reconciles} reconciles, {standby_calls} AWS calls:\n{standby_metrics}\n{}",
        second.log()
    );

    first.kill_9()?;
    eventually("the second replica to take over", WAIT, || async {
        Ok((holder(&leases).await?.as_deref() == Some("second")).then_some(()))
    })
    .await
    .with_context(|| second.log())?;
    create_and_wait_ready(&api, &ns, "after")
        .await
        .with_context(|| second.log())?;
    let creates = emu.calls().await?.count("CreateVolume");
    ensure!(
        creates == 2,
        "expected exactly 2 CreateVolume calls, saw {creates}"
    );
    ensure!(
        second.exit_status().is_none(),
        "the new leader exited:\n{}",
        second.log()
    );
    Ok(())
}

/// One sample of an OpenMetrics text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the samples of an OpenMetrics (or Prometheus) text exposition, such as the
/// controller's `/metrics`: `name{label="value",...} value [timestamp]`, comments skipped.
fn parse_metrics(body: &str) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .with_context(|| format!("no value in {line:?}"))?;
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices();
            let mut key = String::new();
            let end = loop {
                let Some((i, c)) = chars.next() else {
                    bail!("unterminated labels in {line:?}");
                };
                match c {
                    '}' => break i,
                    ',' | ' ' => {}
                    '=' => {
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            bail!("unquoted label value in {line:?}");
                        }
                        let mut value = String::new();
                        loop {
                            match chars.next() {
                                Some((_, '"')) => break,
                                Some((_, '\\')) => match chars.next() {
                                    Some((_, 'n')) => value.push('\n'),
                                    Some((_, c)) => value.push(c),
                                    None => bail!("unterminated label value in {line:?}"),
                                },
                                Some((_, c)) => value.push(c),
                                None => bail!("unterminated label value in {line:?}"),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &inner[end + 1..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .with_context(|| format!("no value in {line:?}"))?;
        let value = value
            .parse::<f64>()
            .with_context(|| format!("the value of {line:?}"))?;
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The sum of the samples of metric `name` whose labels include every one of `labels`.
fn metric_sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[test]
fn metrics_are_parsed_into_names_labels_and_values() -> Result<()> {
    let body = "# HELP ec2_reconciler_reconciles Reconciles by kind and outcome\n\
                # TYPE ec2_reconciler_reconciles counter\n\
                ec2_reconciler_reconciles_total{kind=\"EbsVolume\",outcome=\"success\"} 3\n\
                ec2_reconciler_reconciles_total{kind=\"EbsVolume\",outcome=\"kubernetes\"} 0\n\
                ec2_reconciler_reconciles_total{kind=\"AmiImage\",outcome=\"success\"} 2 1700000000\n\
                odd{note=\"a \\\"quoted\\\" } and, comma\"} 1.5\n\
                bare 7\n\
                # EOF\n";
    let samples = parse_metrics(body)?;
    let total = "ec2_reconciler_reconciles_total";
    ensure!(metric_sum(&samples, total, &[]) == 5.0, "{samples:?}");
    ensure!(metric_sum(&samples, total, &[("outcome", "success")]) == 5.0);
    ensure!(
        metric_sum(
            &samples,
            total,
            &[("kind", "EbsVolume"), ("outcome", "success")]
        ) == 3.0
    );
    ensure!(metric_sum(&samples, total, &[("outcome", "terminal")]) == 0.0);
    ensure!(metric_sum(&samples, "bare", &[]) == 7.0);
    let odd = samples.iter().find(|s| s.name == "odd").context("odd")?;
    ensure!(odd.labels.get("note").map(String::as_str) == Some("a \"quoted\" } and, comma"));
    ensure!(parse_metrics("broken{a=\"1\" 2").is_err());
    Ok(())
}
