//! Handing the new volume to the EbsVolume that tracked the old one (`source.volumeRef`).
//!
//! The EbsVolume held still while its volume carried the migrating tag. Now the old volume
//! is marked as replaced (and becomes this migration's, so the EbsVolume no longer claims
//! it); the EbsVolume follows the mark to the new volume, which carries its ownership tags
//! from its create; once its status shows the new volume, the migrating tags go and it acts
//! again. Each step is decided from the tags and the EbsVolume's status, so an interrupted
//! hand-over resumes where it was.

use std::collections::BTreeMap;

use super::{MigrationAction, MigrationWait, Planner, Step};
use crate::plan::tags::{MIGRATING_TAG, REPLACED_BY_TAG, UID_TAG, ownership_tags};

pub(super) fn step(p: &mut Planner<'_>) -> Step {
    let Some((name, uid)) = p.record.ebs_volume.clone() else {
        return Step::Done;
    };
    let (Some(source_id), Some(target_id)) = (
        p.record.source_volume_id.clone(),
        p.record.target_volume_id.clone(),
    ) else {
        return Step::Fail("no volumes were recorded".to_owned());
    };
    if let Some(source) = p.input.source_volume
        && source.tags.get(UID_TAG) == Some(&uid)
    {
        let mut tags: BTreeMap<String, String> = ownership_tags(p.input.owner, None);
        tags.insert(REPLACED_BY_TAG.to_owned(), target_id);
        return p.act(MigrationAction::TagVolumes {
            volume_ids: vec![source_id],
            tags,
        });
    }
    if p.input.ebs_volume_tracks != Some(target_id.as_str()) {
        return p.wait(MigrationWait::HandOver {
            ebs_volume: name,
            volume_id: target_id,
        });
    }
    let marked: Vec<String> = [p.input.source_volume, p.input.target_volume]
        .into_iter()
        .flatten()
        .filter(|v| v.tags.contains_key(MIGRATING_TAG))
        .map(|v| v.volume_id.clone())
        .collect();
    if !marked.is_empty() {
        return p.act(MigrationAction::UntagVolumes {
            volume_ids: marked,
            keys: vec![MIGRATING_TAG.to_owned()],
        });
    }
    Step::Done
}

/// Before anything changes: the EbsVolume's volume is marked, so the EbsVolume holds still.
pub(super) fn mark(p: &mut Planner<'_>) -> Option<Step> {
    p.record.ebs_volume.as_ref()?;
    let source = p.input.source_volume?;
    if source.tags.contains_key(MIGRATING_TAG) {
        return None;
    }
    Some(p.act(MigrationAction::TagVolumes {
        volume_ids: vec![source.volume_id.clone()],
        tags: BTreeMap::from([(MIGRATING_TAG.to_owned(), p.input.owner.owner_ref())]),
    }))
}

/// After a rollback: the mark goes, and the EbsVolume acts on its volume again.
pub(super) fn unmark(p: &mut Planner<'_>) -> Option<Step> {
    p.record.ebs_volume.as_ref()?;
    let source = p.input.source_volume?;
    if !source.tags.contains_key(MIGRATING_TAG) {
        return None;
    }
    Some(p.act(MigrationAction::UntagVolumes {
        volume_ids: vec![source.volume_id.clone()],
        keys: vec![MIGRATING_TAG.to_owned()],
    }))
}
