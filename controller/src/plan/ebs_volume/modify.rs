//! Modify in place: one ModifyVolume carrying every changed field, within AWS's rules.
//!
//! AWS-FACTS: a new modification only after the previous one is `completed`; at most 4 in
//! a rolling 24 hours; a call that changes nothing still counts (so never send one); size
//! only grows; a type change without iops (and gp3 throughput) resets them to defaults.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Builder, Change, ModifyVolume, VolumeAction, VolumeInput, Wait, reason};
use crate::api::VolumeType;
use crate::api::limits::{
    GP3_DEFAULT_IOPS, GP3_DEFAULT_THROUGHPUT_MIBPS, MAX_MODIFICATIONS_PER_DAY, VolumeShape,
    check_volume, volume_limits,
};
use crate::plan::observed::{ModificationState, ObservedModification, ObservedVolume};

/// The rolling window AWS counts modifications in.
pub const MODIFICATION_WINDOW: TimeDelta = TimeDelta::hours(24);

/// How far apart a start time recorded in status (just before the call) and the one AWS
/// reports may be and still name the same modification.
const SAME_MODIFICATION: TimeDelta = TimeDelta::minutes(10);

/// How long a modification recorded in status may stay invisible to
/// DescribeVolumesModifications before the planner stops waiting for it.
const MODIFICATION_VISIBILITY_GRACE: TimeDelta = TimeDelta::minutes(5);

/// Start times of the modifications inside the window ending at `now`, oldest first: the
/// ones recorded in status, plus the observed one when status does not know it (started
/// outside the controller, or before status was written).
pub fn modifications_in_window(
    recorded: &[DateTime<Utc>],
    observed: Option<&ObservedModification>,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let start = now - MODIFICATION_WINDOW;
    let mut times: Vec<DateTime<Utc>> = recorded.iter().copied().filter(|t| *t > start).collect();
    if let Some(t) = observed.and_then(|m| m.start_time)
        && t > start
        && !times.iter().any(|r| (*r - t).abs() <= SAME_MODIFICATION)
    {
        times.push(t);
    }
    times.sort();
    times.dedup();
    times
}

/// When the next modification may start, or `None` when one may start now.
pub fn next_modification_slot(window: &[DateTime<Utc>]) -> Option<DateTime<Utc>> {
    // Room opens when the oldest of the last MAX leaves the window.
    let over = window.len().checked_sub(MAX_MODIFICATIONS_PER_DAY)?;
    window.get(over).map(|t| *t + MODIFICATION_WINDOW)
}

/// The values the spec manages. An adopted volume's omitted fields are not managed; a
/// created volume's omitted gp3 iops and throughput mean the type's defaults.
struct Desired {
    volume_type: VolumeType,
    size_gib: Option<i64>,
    iops: Option<i64>,
    throughput_mibps: Option<i64>,
}

fn desired(input: &VolumeInput<'_>, v: &ObservedVolume) -> Desired {
    let spec = input.spec;
    let adopting = spec.volume_id.is_some();
    // An adopting spec without a type keeps the volume's own; a created volume is gp3.
    let volume_type = match (spec.volume_type, adopting) {
        (Some(t), _) => t,
        (None, true) => v.volume_type.unwrap_or_default(),
        (None, false) => VolumeType::default(),
    };
    let defaults = !adopting && volume_type == VolumeType::Gp3;
    Desired {
        volume_type,
        size_gib: spec.size_gib,
        iops: spec.iops.or(defaults.then_some(GP3_DEFAULT_IOPS)),
        throughput_mibps: spec
            .throughput_mibps
            .or(defaults.then_some(GP3_DEFAULT_THROUGHPUT_MIBPS)),
    }
}

pub(super) fn plan(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    let d = desired(input, v);
    let latest = input.modification.filter(|m| m.volume_id == v.volume_id);

    // AWS is still working on the previous one: report progress, start nothing.
    if let Some(m) = latest
        && matches!(
            m.state,
            ModificationState::Modifying | ModificationState::Optimizing
        )
    {
        b.wait(Wait::Modification {
            volume_id: v.volume_id.clone(),
            state: m.state,
            progress: m.progress,
            since: m.start_time,
            more_to_do: differs_from_targets(&d, m),
        });
        return;
    }

    let Some(observed_type) = v.volume_type else {
        b.problem(
            reason::UNSUPPORTED_VOLUME_TYPE,
            format!(
                "{} has a volume type this controller does not know; it is not modified",
                v.volume_id
            ),
        );
        return;
    };

    if let Some(size) = d.size_gib
        && size < v.size_gib
    {
        b.problem(
            reason::SHRINK_NOT_ALLOWED,
            format!(
                "sizeGiB {size} is smaller than the volume's {} GiB: EBS volumes cannot shrink",
                v.size_gib
            ),
        );
        return;
    }

    let multi_attach = match multi_attach_change(input, v, d.volume_type) {
        Ok(change) => change,
        Err(why) => {
            b.problem(reason::MULTI_ATTACH_MISMATCH, why);
            None
        }
    };
    let modify = match (changes(&d, v, observed_type), multi_attach) {
        (None, None) => return,
        (Some(modify), change) => ModifyVolume {
            multi_attach_enabled: change,
            ..modify
        },
        (None, change) => ModifyVolume {
            volume_id: v.volume_id.clone(),
            size_gib: None,
            volume_type: None,
            iops: None,
            throughput_mibps: None,
            multi_attach_enabled: change,
        },
    };

    // Values the schema could not check (a size from a snapshot, an adopted volume's
    // current settings) meet the limits table here, before AWS rejects them.
    let shape = VolumeShape {
        volume_type: d.volume_type,
        size_gib: Some(modify.size_gib.map_or(v.size_gib, |c| c.to)),
        iops: modify.iops.map(|c| c.to).or(modify
            .volume_type
            .is_none()
            .then_some(provisioned_iops(v))
            .flatten()),
        throughput_mibps: modify.throughput_mibps.map(|c| c.to).or(modify
            .volume_type
            .is_none()
            .then_some(gp3_throughput(v))
            .flatten()),
        multi_attach: input.spec.multi_attach_enabled || v.multi_attach_enabled,
    };
    if let Err(violation) = check_volume(&shape) {
        b.problem(
            reason::OUTSIDE_VOLUME_LIMITS,
            format!("cannot modify {}: {violation}", v.volume_id),
        );
        return;
    }

    // The same change already failed: retrying would fail again and burn the daily quota.
    if let Some(m) = latest
        && m.state == ModificationState::Failed
        && same_targets(&modify, m)
    {
        b.problem(
            reason::MODIFICATION_FAILED,
            format!(
                "modifying {} failed: {}",
                v.volume_id,
                m.status_message.as_deref().unwrap_or("AWS gave no reason")
            ),
        );
        return;
    }

    // A modification we just started may not be visible yet: starting another would be
    // rejected at best and waste one of the day's four at worst.
    if let Some(last) = input.status.recent_modifications.iter().max().copied()
        && input.now - last < MODIFICATION_VISIBILITY_GRACE
        && latest
            .and_then(|m| m.start_time)
            .is_none_or(|t| (t - last).abs() > SAME_MODIFICATION)
    {
        b.wait(Wait::ModificationNotVisibleYet { since: last });
        return;
    }

    if let Some(until) = next_modification_slot(&b.recent_modifications) {
        let count = b.recent_modifications.len();
        b.wait(Wait::ModificationQuota { until, count });
        return;
    }

    b.act(VolumeAction::Modify(modify));
}

/// The provisioned IOPS of the observed volume (AWS also reports gp2's burst baseline,
/// which is not a setting).
fn provisioned_iops(v: &ObservedVolume) -> Option<i64> {
    let takes_iops = v
        .volume_type
        .is_some_and(|t| volume_limits(t).iops.is_some());
    if takes_iops { v.iops } else { None }
}

fn gp3_throughput(v: &ObservedVolume) -> Option<i64> {
    if v.volume_type == Some(VolumeType::Gp3) {
        v.throughput_mibps
    } else {
        None
    }
}

/// The one ModifyVolume that brings the volume to `d`, or `None` when nothing differs.
fn changes(d: &Desired, v: &ObservedVolume, observed_type: VolumeType) -> Option<ModifyVolume> {
    let type_change = d.volume_type != observed_type;
    let limits = volume_limits(d.volume_type);
    let observed_iops = provisioned_iops(v);
    let observed_throughput = gp3_throughput(v);

    let size_gib = d.size_gib.filter(|s| *s > v.size_gib).map(|to| Change {
        from: Some(v.size_gib),
        to,
    });

    // With a type change, iops always travel: the spec's, else gp3's default, else (io1/io2,
    // which have no default) the volume's current provisioned IOPS.
    let iops = if limits.iops.is_none() {
        None
    } else if type_change {
        let fallback = if d.volume_type == VolumeType::Gp3 {
            Some(GP3_DEFAULT_IOPS)
        } else {
            observed_iops
        };
        d.iops.or(fallback)
    } else {
        d.iops.filter(|i| observed_iops != Some(*i))
    }
    .map(|to| Change {
        from: observed_iops,
        to,
    });

    let throughput_mibps = if limits.throughput_mibps.is_none() {
        None
    } else if type_change {
        d.throughput_mibps.or(Some(GP3_DEFAULT_THROUGHPUT_MIBPS))
    } else {
        d.throughput_mibps
            .filter(|t| observed_throughput != Some(*t))
    }
    .map(|to| Change {
        from: observed_throughput,
        to,
    });

    let volume_type = type_change.then_some(Change {
        from: Some(observed_type),
        to: d.volume_type,
    });

    let nothing =
        size_gib.is_none() && volume_type.is_none() && iops.is_none() && throughput_mibps.is_none();
    (!nothing).then(|| ModifyVolume {
        volume_id: v.volume_id.clone(),
        size_gib,
        volume_type,
        iops,
        throughput_mibps,
        multi_attach_enabled: None,
    })
}

/// Multi-Attach turned on or off in place, under the conditions of the EBS user guide
/// ("Enable Multi-Attach", "Disable Multi-Attach"): only io2 volumes can change it after
/// creation (io1 keeps what it was created with); it is enabled only while the volume is
/// attached to no instance, and disabled only while attached to at most one. `Err` says
/// which condition is not met. An adopting spec does not manage it unless it asks for it.
pub(super) fn multi_attach_change(
    input: &VolumeInput<'_>,
    v: &ObservedVolume,
    volume_type: VolumeType,
) -> Result<Option<Change<bool>>, String> {
    let want = input.spec.multi_attach_enabled;
    let adopting = input.spec.volume_id.is_some();
    if want == v.multi_attach_enabled || (adopting && !want) {
        return Ok(None);
    }
    let verb = if want { "enabled" } else { "disabled" };
    if volume_type != VolumeType::Io2 {
        return Err(format!(
            "Multi-Attach cannot be {verb} on {} in place: AWS changes it after creation only on io2 volumes, and this one is {volume_type}",
            v.volume_id
        ));
    }
    let attached = v
        .attachments
        .iter()
        .filter(|a| a.state != crate::plan::observed::AttachmentState::Detached)
        .count();
    if want && attached > 0 {
        return Err(format!(
            "Multi-Attach can be enabled on {} only while it is attached to no instance; it is attached to {attached}: detach it (remove spec.attachments), then attach again",
            v.volume_id
        ));
    }
    if !want && attached > 1 {
        return Err(format!(
            "Multi-Attach can be disabled on {} only while it is attached to at most one instance; it is attached to {attached}",
            v.volume_id
        ));
    }
    Ok(Some(Change {
        from: Some(v.multi_attach_enabled),
        to: want,
    }))
}

/// Whether the spec asks for something the running modification does not bring.
fn differs_from_targets(d: &Desired, m: &ObservedModification) -> bool {
    fn differs<T: PartialEq>(want: Option<T>, target: Option<T>) -> bool {
        matches!((want, target), (Some(w), Some(t)) if w != t)
    }
    differs(Some(d.volume_type), m.target_volume_type)
        || d.size_gib
            .zip(m.target_size_gib)
            .is_some_and(|(want, target)| want > target)
        || differs(d.iops, m.target_iops)
        || differs(d.throughput_mibps, m.target_throughput_mibps)
}

/// Whether a (failed) modification aimed at exactly what `modify` would send.
fn same_targets(modify: &ModifyVolume, m: &ObservedModification) -> bool {
    fn same<T: PartialEq + Copy>(change: Option<Change<T>>, target: Option<T>) -> bool {
        change.is_none_or(|c| target == Some(c.to))
    }
    same(modify.size_gib, m.target_size_gib)
        && same(modify.volume_type, m.target_volume_type)
        && same(modify.iops, m.target_iops)
        && same(modify.throughput_mibps, m.target_throughput_mibps)
}
