//! Plans in words: what `status.plan`, events and the `plan` command show.

use std::fmt::Write as _;

use super::{Change, VolumeAction};

/// Each action in words, for `status.plan`, events and the `plan` command. Stable for a
/// given action (no times or progress), so an unchanged plan costs no status write.
pub fn describe(action: &VolumeAction) -> String {
    match action {
        VolumeAction::Create(c) => {
            let size = match c.size_gib {
                Some(s) => format!("{s} GiB"),
                None => "snapshot-sized".to_owned(),
            };
            let mut m = format!(
                "create a {size} {} volume in {}",
                c.volume_type, c.availability_zone
            );
            let mut details = Vec::new();
            if let Some(i) = c.iops {
                details.push(format!("iops {i}"));
            }
            if let Some(t) = c.throughput_mibps {
                details.push(format!("throughput {t} MiB/s"));
            }
            if c.encrypted {
                details.push(match &c.kms_key_id {
                    Some(k) => format!("encrypted with {k}"),
                    None => "encrypted with the default key".to_owned(),
                });
            }
            if c.multi_attach_enabled {
                details.push("Multi-Attach".to_owned());
            }
            if let Some(s) = &c.snapshot_id {
                details.push(format!("from {s}"));
            }
            if !details.is_empty() {
                let _ = write!(m, " ({})", details.join(", "));
            }
            m
        }
        VolumeAction::Modify(m) => {
            let mut parts = Vec::new();
            if let Some(c) = &m.size_gib {
                parts.push(change_words("size", c, " GiB"));
            }
            if let Some(c) = &m.volume_type {
                parts.push(change_words("type", c, ""));
            }
            if let Some(c) = &m.iops {
                parts.push(change_words("iops", c, ""));
            }
            if let Some(c) = &m.throughput_mibps {
                parts.push(change_words("throughput", c, " MiB/s"));
            }
            if let Some(c) = &m.multi_attach_enabled {
                parts.push(
                    if c.to {
                        "enable Multi-Attach"
                    } else {
                        "disable Multi-Attach"
                    }
                    .to_owned(),
                );
            }
            format!("modify {}: {}", m.volume_id, parts.join(", "))
        }
        VolumeAction::Attach {
            volume_id,
            instance_id,
            device,
        } => format!("attach {volume_id} to {instance_id} as {device}"),
        VolumeAction::Detach {
            volume_id,
            instance_id,
            device,
            force,
        } => {
            let verb = if *force { "force-detach" } else { "detach" };
            format!("{verb} {volume_id} from {instance_id} ({device})")
        }
        VolumeAction::SetTags { volume_id, tags } => {
            let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("tag {volume_id}: {}", pairs.join(", "))
        }
        VolumeAction::RemoveTags { volume_id, keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            format!("untag {volume_id}: {}", keys.join(", "))
        }
        VolumeAction::CreateFinalSnapshot { volume_id, .. } => {
            format!("snapshot {volume_id} before deleting it")
        }
        VolumeAction::Delete { volume_id } => format!("delete {volume_id}"),
    }
}

fn change_words<T: std::fmt::Display + PartialEq>(name: &str, c: &Change<T>, unit: &str) -> String {
    match &c.from {
        Some(from) if *from == c.to => format!("{name} {} (kept){unit}", c.to),
        Some(from) => format!("{name} {from} -> {}{unit}", c.to),
        None => format!("{name} -> {}{unit}", c.to),
    }
}
