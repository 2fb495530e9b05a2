"""Encryption-migration fixes outside instances: CreateVolume from a snapshot whose KMS key is
disabled and without Size (volumes.py), CopySnapshot's VolumeId and key (snapshot_copies.py).
Each test fails on the layer as it stood before these corrections."""

import botocore.exceptions
import pytest

from conftest import error_code

AZ = "us-east-1a"


@pytest.fixture(autouse=True)
def snapshots_at_once(emu):
    emu.control("POST", "transitions", {"snapshot": 0, "copy-snapshot": 0, "image": 0, "copy-image": 0})


def fails(code, fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert error_code(e) == code, e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def new_key(emu):
    return emu.client("kms").create_key(Description="migration")["KeyMetadata"]


def completed_snapshot(ec2, size=12, **volume_args):
    vid = ec2.create_volume(AvailabilityZone=AZ, Size=size, **volume_args)["VolumeId"]
    return ec2.create_snapshot(VolumeId=vid)["SnapshotId"], vid


# --- CreateVolume ------------------------------------------------------------------------------
def test_volume_from_a_snapshot_whose_key_is_disabled_fails(emu, ec2):
    key = new_key(emu)
    snap, _ = completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"])
    emu.client("kms").disable_key(KeyId=key["KeyId"])
    emu.transitions(volume_create=60)
    vid = ec2.create_volume(AvailabilityZone=AZ, SnapshotId=snap)["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"] == "creating"
    emu.advance(61)
    fails("InvalidVolume.NotFound", ec2.describe_volumes, VolumeIds=[vid])


# --- CopySnapshot and sizes ----------------------------------------------------------------------
def test_copy_snapshot_has_its_own_id_an_arbitrary_volume_id_and_keeps_a_customer_key(emu, ec2):
    key = new_key(emu)
    snap, vid = completed_snapshot(ec2, size=10, Encrypted=True, KmsKeyId=key["Arn"])
    copy_id = ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1")["SnapshotId"]
    assert copy_id != snap
    copy = ec2.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]
    assert (copy["VolumeId"], copy["VolumeSize"], copy["Encrypted"], copy["KmsKeyId"]) == \
        ("vol-ffffffff", 10, True, key["Arn"])
    by_volume = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vid]}])["Snapshots"]
    assert [s["SnapshotId"] for s in by_volume] == [snap]
    west = emu.client("ec2", "us-west-2")
    far = west.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1")["SnapshotId"]
    default = west.get_ebs_default_kms_key_id()["KmsKeyId"]
    assert west.describe_snapshots(SnapshotIds=[far])["Snapshots"][0]["KmsKeyId"] == default


def test_copy_of_a_snapshot_whose_key_is_disabled_fails(emu, ec2):
    key = new_key(emu)
    snap, _ = completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"])
    emu.client("kms").disable_key(KeyId=key["KeyId"])
    copy_id = ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1")["SnapshotId"]
    assert ec2.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]["State"] == "error"


def test_create_volume_from_snapshot_without_size_takes_the_snapshot_size(emu, ec2):
    emu.transitions(volume_modify=0, volume_optimize=0)
    snap, vid = completed_snapshot(ec2, size=10)
    ec2.modify_volume(VolumeId=vid, Size=30)
    new = ec2.create_volume(AvailabilityZone=AZ, SnapshotId=snap)
    assert new["Size"] == 10
    copy_id = ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1")["SnapshotId"]
    assert ec2.create_volume(AvailabilityZone=AZ, SnapshotId=copy_id)["Size"] == 10


