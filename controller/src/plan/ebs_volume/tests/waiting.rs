//! Waiting and conditions.

use super::*;

#[test]
fn the_requeue_delay_grows_while_aws_keeps_working() {
    assert_eq!(waiting_delay(TimeDelta::zero()), Duration::from_secs(5));
    assert_eq!(
        waiting_delay(TimeDelta::minutes(3)),
        Duration::from_secs(30)
    );
    assert_eq!(waiting_delay(TimeDelta::hours(6)), Duration::from_secs(300));
    let delay_after = |started| {
        Case {
            modification: Some(modification(ModificationState::Optimizing, started)),
            ..Case::existing(spec(), volume())
        }
        .plan()
        .requeue_after
    };
    assert!(delay_after(minutes_ago(1)) < delay_after(minutes_ago(20)));
}

#[test]
fn without_a_start_time_from_aws_waiting_is_measured_from_when_progressing_began() {
    // A create AWS does not show yet: no start time of its own.
    let plan = Case {
        status: EbsVolumeStatus {
            intents: vec![intent(CREATE_STEP, minutes_ago(1))],
            conditions: vec![progressing_since(minutes_ago(10))],
            ..created()
        },
        ..Case::new(spec())
    }
    .plan();
    assert_eq!(plan.progressing.reason, "WaitingForVolume");
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(100)));
    assert!(!plan.look_soon);
}

#[test]
fn a_creating_volume_is_looked_at_again_at_the_next_merged_read_however_long_it_waited() {
    for waited in [minutes_ago(0), minutes_ago(10), hours_ago(3)] {
        let plan = Case {
            status: EbsVolumeStatus {
                conditions: vec![progressing_since(waited)],
                ..created()
            },
            ..Case::existing(
                spec(),
                ObservedVolume {
                    state: VolumeState::Creating,
                    ..volume()
                },
            )
        }
        .plan();
        assert_eq!(plan.progressing.reason, "Creating");
        assert!(plan.look_soon, "creating since {waited}");
        assert_eq!(
            plan.requeue_after, None,
            "no delay grown from the time waited ({waited})"
        );
    }
}

#[test]
fn an_optimizing_modification_keeps_its_growing_delay() {
    let plan = Case {
        modification: Some(modification(ModificationState::Optimizing, hours_ago(2))),
        ..Case::existing(spec(), volume())
    }
    .plan();
    assert_eq!(plan.progressing.reason, "Optimizing");
    assert!(!plan.look_soon);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(300)));
}

#[test]
fn problems_become_synced_false_with_their_reason_and_every_message() {
    let plan = Case {
        instance_zones: Some(BTreeMap::new()),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(50),
                attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    let conditions = plan.conditions();
    let synced = conditions.iter().find(|c| c.type_ == SYNCED);
    assert_eq!(
        synced.map(|c| (c.status, c.reason.as_str())),
        Some((ConditionStatus::False, reason::INSTANCE_NOT_FOUND))
    );
    assert!(synced.is_some_and(|c| c.message.contains("cannot shrink")));
    assert_eq!(conditions.len(), 3);
}
