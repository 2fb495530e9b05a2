"""Corrections 2, 3 and 7: ClientToken, ranges and combinations, ModifyVolume rules, encryption."""

import botocore.exceptions
import pytest

from conftest import error_code


def fails(code, fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert error_code(e) == code, e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def vol(**kw):
    return {"AvailabilityZone": "us-east-1a", **kw}


def test_client_token_replays_and_rejects_other_parameters(emu, ec2):
    first = ec2.create_volume(**vol(Size=10, ClientToken="tok-1"))["VolumeId"]
    assert ec2.create_volume(**vol(Size=10, ClientToken="tok-1"))["VolumeId"] == first
    assert len(ec2.describe_volumes()["Volumes"]) == 1
    fails("IdempotentParameterMismatch", ec2.create_volume, **vol(Size=11, ClientToken="tok-1"))
    other_region = emu.client(region="us-west-2")
    assert other_region.create_volume(AvailabilityZone="us-west-2a", Size=10, ClientToken="tok-1")["VolumeId"] != first


def test_run_instances_client_token(ec2):
    kw = dict(ImageId="ami-12345678", MinCount=1, MaxCount=1, ClientToken="run-1")
    a = ec2.run_instances(**kw)["Instances"][0]["InstanceId"]
    assert ec2.run_instances(**kw)["Instances"][0]["InstanceId"] == a
    fails("IdempotentParameterMismatch", ec2.run_instances, **{**kw, "InstanceType": "m5.large"})


@pytest.mark.parametrize("params, code", [
    (vol(Size=10, VolumeType="gp9"), "InvalidParameterValue"),
    (vol(Size=0), "InvalidParameterValue"),
    (vol(Size=16385, VolumeType="gp2"), "InvalidParameterValue"),
    (vol(Size=65537, VolumeType="gp3"), "InvalidParameterValue"),
    (vol(Size=100, VolumeType="st1"), "InvalidParameterValue"),
    (vol(Size=10, VolumeType="gp2", Iops=300), "InvalidParameterCombination"),
    (vol(Size=200, VolumeType="st1", Iops=300), "InvalidParameterCombination"),
    (vol(Size=10, VolumeType="io1"), "InvalidParameterCombination"),
    (vol(Size=100, VolumeType="io1", Iops=100000), "InvalidParameterValue"),
    (vol(Size=10, VolumeType="io1", Iops=1000), "InvalidParameterValue"),  # 50 IOPS per GiB
    (vol(Size=10, VolumeType="gp3", Iops=6000), "InvalidParameterValue"),  # 500 IOPS per GiB
    (vol(Size=1000, VolumeType="gp3", Iops=80001), "InvalidParameterValue"),
    (vol(Size=100, VolumeType="gp3", Throughput=1000), "InvalidParameterValue"),  # 0.25 MiB/s per IOPS
    (vol(Size=100, VolumeType="gp3", Iops=10000, Throughput=2001), "InvalidParameterValue"),
    (vol(Size=100, VolumeType="gp2", Throughput=200), "InvalidParameterCombination"),
    (vol(Size=100, VolumeType="gp3", MultiAttachEnabled=True), "InvalidParameterCombination"),
    ({"AvailabilityZone": "us-east-1z", "Size": 10}, "InvalidZone.NotFound"),
    (vol(SnapshotId="snap-0123456789abcdef0"), "InvalidSnapshot.NotFound"),
])
def test_create_volume_rejects(ec2, params, code):
    fails(code, ec2.create_volume, **params)
    assert ec2.describe_volumes()["Volumes"] == []


@pytest.mark.parametrize("params", [
    vol(Size=1, VolumeType="gp3", Iops=3000, Throughput=125),
    vol(Size=65536, VolumeType="gp3", Iops=80000, Throughput=2000),
    vol(Size=4, VolumeType="io1", Iops=200),
    vol(Size=100, VolumeType="io2", Iops=100000, MultiAttachEnabled=True),
    vol(Size=125, VolumeType="sc1"),
    vol(Size=1024, VolumeType="standard"),
])
def test_create_volume_accepts_limits(ec2, params):
    ec2.create_volume(**params)


def test_unknown_kms_key_fails_asynchronously(emu, ec2):
    emu.transitions(volume_create=100000)
    v = ec2.create_volume(**vol(Size=10, Encrypted=True, KmsKeyId="alias/does-not-exist", ClientToken="k"))
    assert v["State"] == "creating"
    assert ec2.describe_volumes(VolumeIds=[v["VolumeId"]])["Volumes"][0]["State"] == "creating"
    emu.transitions(volume_create=0)
    fails("InvalidVolume.NotFound", ec2.describe_volumes, VolumeIds=[v["VolumeId"]])
    fails("IdempotentParameterMismatch", ec2.create_volume,
          **vol(Size=10, Encrypted=True, KmsKeyId="alias/does-not-exist", ClientToken="k"))


def test_existing_kms_key_is_used(emu, ec2):
    key = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
    v = ec2.create_volume(**vol(Size=10, Encrypted=True, KmsKeyId=key))
    assert ec2.describe_volumes(VolumeIds=[v["VolumeId"]])["Volumes"][0]["KmsKeyId"] == key


def test_modify_rules(emu, ec2):
    vid = ec2.create_volume(**vol(Size=100, VolumeType="gp3"))["VolumeId"]
    fails("InvalidParameterValue", ec2.modify_volume, VolumeId=vid, Size=50)
    fails("InvalidParameterCombination", ec2.modify_volume, VolumeId=vid, VolumeType="gp2", Iops=4000)
    fails("InvalidParameterValue", ec2.modify_volume, VolumeId=vid, Iops=100000)
    emu.transitions(volume_modify=1000)
    ec2.modify_volume(VolumeId=vid, Size=200)
    fails("IncorrectModificationState", ec2.modify_volume, VolumeId=vid, Size=300)
    emu.transitions(volume_modify=0)
    for size in (300, 400, 500):  # 4 modifications in 24 h
        ec2.modify_volume(VolumeId=vid, Size=size)
    fails("VolumeModificationRateExceeded", ec2.modify_volume, VolumeId=vid, Size=600)
    emu.advance(24 * 3600 + 1)
    ec2.modify_volume(VolumeId=vid, Size=600)


def test_type_change_without_iops_resets_to_type_default(ec2):
    vid = ec2.create_volume(**vol(Size=500, VolumeType="io2", Iops=20000))["VolumeId"]
    mod = ec2.modify_volume(VolumeId=vid, VolumeType="gp3")["VolumeModification"]
    assert (mod["OriginalIops"], mod["TargetIops"], mod["TargetThroughput"]) == (20000, 3000, 125)
    v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
    assert (v["VolumeType"], v["Iops"], v["Throughput"]) == ("gp3", 3000, 125)


def test_encryption_by_default(emu, ec2):
    ec2.enable_ebs_encryption_by_default()
    v = ec2.create_volume(**vol(Size=10))
    assert v["Encrypted"] is True
    kms = emu.client("kms")
    ebs_key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert v["KmsKeyId"] == ebs_key
    ec2.disable_ebs_encryption_by_default()
    assert ec2.create_volume(**vol(Size=10))["Encrypted"] is False
