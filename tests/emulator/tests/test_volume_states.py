"""Correction 1: pending states, evaluated lazily against the transition durations in force."""

import botocore.exceptions
import pytest

from conftest import error_code

HOLD = 100000  # seconds: holds a resource in its pending state until released


def state(ec2, volume_id):
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def test_create_is_creating_until_released(emu, ec2):
    emu.transitions(volume_create=HOLD)
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    assert state(ec2, vid)["State"] == "creating"
    emu.transitions(volume_create=0)
    assert state(ec2, vid)["State"] == "available"
    emu.transitions(volume_create=HOLD)  # finished transitions never go backwards
    assert state(ec2, vid)["State"] == "available"


def test_create_completes_when_the_clock_advances(emu, ec2):
    emu.transitions(volume_create=600)
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    assert state(ec2, vid)["State"] == "creating"
    emu.advance(601)
    assert state(ec2, vid)["State"] == "available"


def test_attach_and_detach_pass_through_pending_states(emu, ec2, instance):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    emu.transitions(volume_attach=HOLD, volume_detach=HOLD)
    assert ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdf")["State"] == "attaching"
    v = state(ec2, vid)
    assert v["State"] == "in-use" and v["Attachments"][0]["State"] == "attaching"
    emu.transitions(volume_attach=0)
    assert state(ec2, vid)["Attachments"][0]["State"] == "attached"
    assert ec2.detach_volume(VolumeId=vid)["State"] == "detaching"
    assert state(ec2, vid)["Attachments"][0]["State"] == "detaching"
    emu.transitions(volume_detach=0)
    v = state(ec2, vid)
    assert v["State"] == "available" and v["Attachments"] == []


def test_forced_detach_is_immediate(emu, ec2, instance):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdf")
    emu.transitions(volume_detach=HOLD)
    ec2.detach_volume(VolumeId=vid, Force=True)
    assert state(ec2, vid)["Attachments"] == []


def test_delete_is_deleting_then_gone(emu, ec2):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    emu.transitions(volume_delete=HOLD)
    ec2.delete_volume(VolumeId=vid)
    assert state(ec2, vid)["State"] == "deleting"
    emu.transitions(volume_delete=0)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        state(ec2, vid)
    assert error_code(e) == "InvalidVolume.NotFound"


def test_modification_goes_modifying_optimizing_completed(emu, ec2):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="gp3")["VolumeId"]
    emu.transitions(volume_modify=100, volume_optimize=100)
    mod = ec2.modify_volume(VolumeId=vid, Size=20, Iops=4000)["VolumeModification"]
    assert mod["ModificationState"] == "modifying" and mod["OriginalSize"] == 10 and mod["TargetSize"] == 20

    def current():
        return ec2.describe_volumes_modifications(VolumeIds=[vid])["VolumesModifications"][0]

    assert current()["ModificationState"] == "modifying"
    assert state(ec2, vid)["Size"] == 10  # old values while modifying
    emu.advance(150)
    m = current()
    assert m["ModificationState"] == "optimizing" and 0 < m["Progress"] < 100 and "EndTime" not in m
    v = state(ec2, vid)
    assert (v["Size"], v["Iops"]) == (20, 4000)  # new values from optimizing on
    emu.advance(100)
    m = current()
    assert m["ModificationState"] == "completed" and m["Progress"] == 100
    assert (m["EndTime"] - m["StartTime"]).total_seconds() == pytest.approx(200, abs=1)
    found = ec2.describe_volumes_modifications(Filters=[{"Name": "modification-state", "Values": ["completed"]},
                                                        {"Name": "volume-id", "Values": [vid]}])
    assert len(found["VolumesModifications"]) == 1
    none = ec2.describe_volumes_modifications(Filters=[{"Name": "modification-state", "Values": ["modifying"]}])
    assert none["VolumesModifications"] == []
