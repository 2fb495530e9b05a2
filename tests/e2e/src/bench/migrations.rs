//! The EncryptedVolumeMigration stage: K running instances, each with an unencrypted data
//! volume attached, and K migrations encrypting those volumes in place with one KMS key
//! (stop, snapshot, copy encrypted, new volume, swap, start). A migration is done when it is
//! Ready=True (phase Completed). At rest a completed migration reads nothing, so its idle
//! resyncs are counted in passes, not in sweeps.

use std::time::Instant;

use anyhow::Result;
use ec2_reconciler::api::EncryptedVolumeMigration;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use super::Options;
use super::report::KindReport;
use super::stage::{self, Resyncs, Setup};
use crate::bed::Bed;
use crate::migration_setup::{instance_with_volume, key};

/// The alias of the key every volume is encrypted with.
const KEY_ALIAS: &str = "alias/bench";

/// Instances (with their volumes) made at once: each waits for its attachment.
const SETUP_CONCURRENCY: usize = 8;

/// Runs the stage on `bed`.
pub async fn run(bed: &Bed, opts: &Options) -> Result<KindReport> {
    let k = opts.migrations;
    let started = Instant::now();
    let volumes = source_volumes(bed, k).await?;
    let setup = Setup {
        what: format!(
            "each encrypting in place the unencrypted 8 GiB volume attached to a running \
             t3.micro, with one KMS key; the bench first made the key and {k} {}, each \
             with its volume attached",
            if k == 1 { "instance" } else { "instances" }
        ),
        seconds: started.elapsed().as_secs_f64(),
    };
    let plan = opts.kind_plan(k, Resyncs::Passes);
    let run = stage::run::<EncryptedVolumeMigration>(
        bed,
        &plan,
        opts.concurrency,
        |i| json!({ "source": { "volumeId": volumes[i] }, "kmsKeyId": KEY_ALIAS }),
    )
    .await?;
    Ok(run.kind_report(setup, Vec::new(), &plan))
}

/// The key, and `k` instances each with a data volume attached: the volumes' ids.
async fn source_volumes(bed: &Bed, k: usize) -> Result<Vec<String>> {
    if k == 0 {
        return Ok(Vec::new());
    }
    key(bed, KEY_ALIAS).await?;
    futures::stream::iter(0..k)
        .map(|_| async move {
            let (_, volume) = instance_with_volume(bed, &[]).await?;
            Ok::<_, anyhow::Error>(volume)
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}
