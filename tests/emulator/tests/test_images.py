"""Snapshot, AMI and EBS default-key corrections (ec2emu/fixes/images*.py), checked with boto3
against the running emulator. Each test starts from a reset emulator."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

REGION = "us-east-1"
OTHER_REGION = "us-west-2"
AZ = "us-east-1a"


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"]


def tags_of(resource: dict) -> dict:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


# `emu` (a reset emulator) and `ec2` (a us-east-1 client) come from conftest.py.


@pytest.fixture
def ec2_west(emu):
    return emu.client("ec2", OTHER_REGION)


@pytest.fixture
def kms(emu):
    return emu.client("kms", REGION)


@pytest.fixture
def transitions(emu):
    return lambda values: emu.control("POST", "transitions", values)


@pytest.fixture
def advance(emu):
    return emu.advance


VOLUMES_AT_ONCE = {
    "volume-create": 0, "volume-attach": 0, "volume-detach": 0, "volume-delete": 0,
    "volume-modify": 0, "volume-optimize": 0,
}
IMAGES_AT_ONCE = {"snapshot": 0, "copy-snapshot": 0, "image": 0, "copy-image": 0, "deregister": 0}


@pytest.fixture
def durations(transitions):
    """Sets pending-state durations: volumes are ready at once (these tests are about snapshots
    and images), image/snapshot keys as given, the others at once."""

    def set_durations(values: dict | None = None):
        transitions({**VOLUMES_AT_ONCE, **IMAGES_AT_ONCE, **(values or {})})

    return set_durations


@pytest.fixture
def instant(durations):
    """Every volume, image and snapshot transition completes at once."""
    durations()


def snapshot_of(ec2, snapshot_id: str) -> dict:
    return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]


def image_of(ec2, image_id: str) -> dict:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def completed_snapshot(ec2, size=8, **volume_args) -> str:
    volume = ec2.create_volume(Size=size, AvailabilityZone=AZ, **volume_args)
    return ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]


def new_key(kms, alias: str | None = None) -> dict:
    meta = kms.create_key(Description="test key")["KeyMetadata"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return meta


def registered_image(ec2, name: str, snapshot_id: str, **kwargs) -> str:
    return ec2.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        Architecture="x86_64",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
        **kwargs,
    )["ImageId"]


# --- 1. snapshots ----------------------------------------------------------------------------


def test_create_snapshot_is_pending_then_completed(ec2, durations, advance):
    durations({"snapshot": 60})
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    created = ec2.create_snapshot(VolumeId=volume["VolumeId"])
    assert created["State"] == "pending"
    assert created["Progress"].endswith("%") and created["Progress"] != "100%"
    assert snapshot_of(ec2, created["SnapshotId"])["State"] == "pending"
    advance(61)
    described = snapshot_of(ec2, created["SnapshotId"])
    assert (described["State"], described["Progress"]) == ("completed", "100%")


def test_snapshot_of_encrypted_volume_carries_the_volume_key(ec2, kms, instant):
    key = new_key(kms)
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ, Encrypted=True, KmsKeyId=key["Arn"])
    snapshot = snapshot_of(ec2, ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"])
    assert snapshot["Encrypted"] is True
    assert snapshot["KmsKeyId"] == key["Arn"]
    plain = snapshot_of(ec2, completed_snapshot(ec2))
    assert plain["Encrypted"] is False and "KmsKeyId" not in plain


def test_snapshot_tag_specifications(ec2, instant):
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    created = ec2.create_snapshot(
        VolumeId=volume["VolumeId"],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "owner", "Value": "ec2r"}]}],
    )
    assert tags_of(created) == {"owner": "ec2r"}
    found = ec2.describe_snapshots(Filters=[{"Name": "tag:owner", "Values": ["ec2r"]}])["Snapshots"]
    assert [s["SnapshotId"] for s in found] == [created["SnapshotId"]]


def test_snapshot_size_is_fixed_when_taken(ec2, instant):
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ, VolumeType="gp3")
    snapshot_id = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    ec2.modify_volume(VolumeId=volume["VolumeId"], Size=20)
    assert snapshot_of(ec2, snapshot_id)["VolumeSize"] == 8


def test_concurrent_snapshots_per_volume_limit(ec2, durations):
    durations({"snapshot": 3600})
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    for _ in range(5):
        ec2.create_snapshot(VolumeId=volume["VolumeId"])
    assert code_of(ec2.create_snapshot, VolumeId=volume["VolumeId"]) == "ConcurrentSnapshotLimitExceeded"


def test_snapshot_of_a_creating_volume_is_incorrect_state(ec2, durations):
    durations({"volume-create": 3600})
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    assert code_of(ec2.create_snapshot, VolumeId=volume["VolumeId"]) == "IncorrectState"

def test_describe_snapshots_owner_ids(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    account = snapshot_of(ec2, snapshot_id)["OwnerId"]
    for owners in (["self"], [account]):
        ids = [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=owners)["Snapshots"]]
        assert ids == [snapshot_id]
    assert ec2.describe_snapshots(OwnerIds=["999999999999"])["Snapshots"] == []
    assert ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"] == []


def test_describe_snapshots_pagination(ec2, instant):
    created = {completed_snapshot(ec2) for _ in range(12)}
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"OwnerIds": ["self"], "MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        page = ec2.describe_snapshots(**kwargs)
        assert len(page["Snapshots"]) <= 5
        seen += [s["SnapshotId"] for s in page["Snapshots"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 12 and set(seen) == created
    paginator_ids = [
        s["SnapshotId"]
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 5})
        for s in page["Snapshots"]
    ]
    assert set(paginator_ids) == created


def test_describe_snapshots_max_results_rules(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    assert code_of(ec2.describe_snapshots, SnapshotIds=[snapshot_id], MaxResults=5) == "InvalidParameterCombination"
    assert code_of(ec2.describe_snapshots, MaxResults=4) == "InvalidParameterValue"
    assert code_of(ec2.describe_snapshots, MaxResults=1001) == "InvalidParameterValue"


# --- 2. CopySnapshot -------------------------------------------------------------------------


def test_copy_snapshot_encrypted_without_key_uses_default_key(ec2, kms, instant):
    source = completed_snapshot(ec2)
    copy_id = ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True)["SnapshotId"]
    copy = snapshot_of(ec2, copy_id)
    default_arn = ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
    assert copy["Encrypted"] is True and copy["KmsKeyId"] == default_arn
    assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"] == default_arn


@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias_arn"])
def test_copy_snapshot_with_key_in_any_form(ec2, kms, instant, form):
    key = new_key(kms, alias="alias/ec2r-test")
    ref = {
        "id": key["KeyId"],
        "arn": key["Arn"],
        "alias": "alias/ec2r-test",
        "alias_arn": key["Arn"].split(":key/")[0] + ":alias/ec2r-test",
    }[form]
    source = completed_snapshot(ec2)
    copy_id = ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=ref)["SnapshotId"]
    copy = snapshot_of(ec2, copy_id)
    assert (copy["Encrypted"], copy["KmsKeyId"], copy["State"]) == (True, key["Arn"], "completed")


def test_copy_snapshot_unknown_key_fails_asynchronously(ec2, durations, advance):
    durations({"snapshot": 0, "copy-snapshot": 30})
    source = completed_snapshot(ec2)
    copy_id = ec2.copy_snapshot(
        SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId="alias/does-not-exist"
    )["SnapshotId"]
    assert snapshot_of(ec2, copy_id)["State"] == "pending"
    advance(31)
    copy = snapshot_of(ec2, copy_id)
    assert copy["State"] == "error" and "alias/does-not-exist" in copy["StateMessage"]


def test_copy_snapshot_key_requires_encrypted(ec2, kms, instant):
    key = new_key(kms)
    source = completed_snapshot(ec2)
    assert code_of(ec2.copy_snapshot, SourceSnapshotId=source, SourceRegion=REGION, KmsKeyId=key["Arn"]) == "InvalidParameterDependency"


def test_copy_of_encrypted_snapshot_stays_encrypted(ec2, kms, instant):
    key = new_key(kms)
    source = completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"])
    copy = snapshot_of(ec2, ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"])
    assert copy["Encrypted"] is True and copy["KmsKeyId"]


def test_copy_snapshot_pending_then_completed_with_tags(ec2, durations, advance):
    durations({"snapshot": 0, "copy-snapshot": 60})
    source = completed_snapshot(ec2)
    copied = ec2.copy_snapshot(
        SourceSnapshotId=source,
        SourceRegion=REGION,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    assert tags_of(copied) == {"k": "v"}
    assert snapshot_of(ec2, copied["SnapshotId"])["State"] == "pending"
    advance(61)
    copy = snapshot_of(ec2, copied["SnapshotId"])
    assert copy["State"] == "completed" and tags_of(copy) == {"k": "v"}


def test_copy_snapshot_of_pending_snapshot_is_incorrect_state(ec2, durations):
    durations({"snapshot": 3600})
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    source = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    assert code_of(ec2.copy_snapshot, SourceSnapshotId=source, SourceRegion=REGION) == "IncorrectState"


def test_copy_snapshot_cross_region(ec2, ec2_west, instant):
    source = completed_snapshot(ec2)
    copy_id = ec2_west.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True)["SnapshotId"]
    copy = snapshot_of(ec2_west, copy_id)
    assert copy["Encrypted"] is True
    assert copy["KmsKeyId"] == ec2_west.get_ebs_default_kms_key_id()["KmsKeyId"]
    assert ":us-west-2:" in copy["KmsKeyId"]
    assert code_of(ec2.describe_snapshots, SnapshotIds=[copy_id]) == "InvalidSnapshot.NotFound"


def test_concurrent_snapshot_copy_limit(ec2, durations, advance):
    durations({"snapshot": 0, "copy-snapshot": 3600})
    source = completed_snapshot(ec2)
    for _ in range(20):
        ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)
    assert code_of(ec2.copy_snapshot, SourceSnapshotId=source, SourceRegion=REGION) == "ResourceLimitExceeded"
    durations({"copy-snapshot": 0})
    ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)


# --- 3. EBS default KMS key ------------------------------------------------------------------


def test_ebs_default_kms_key_get_modify_reset(ec2, kms):
    default = ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
    managed = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert default == managed["Arn"] and managed["KeyManager"] == "AWS"
    key = new_key(kms, alias="alias/ebs-default")
    assert ec2.modify_ebs_default_kms_key_id(KmsKeyId="alias/ebs-default")["KmsKeyId"] == key["Arn"]
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key["Arn"]
    assert ec2.reset_ebs_default_kms_key_id()["KmsKeyId"] == default
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == default


def test_modified_default_key_is_used_by_copies(ec2, kms, instant):
    key = new_key(kms)
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=key["KeyId"])
    copy_id = ec2.copy_snapshot(SourceSnapshotId=completed_snapshot(ec2), SourceRegion=REGION, Encrypted=True)["SnapshotId"]
    assert snapshot_of(ec2, copy_id)["KmsKeyId"] == key["Arn"]


def test_encryption_by_default_encrypts_copies(ec2, instant):
    ec2.enable_ebs_encryption_by_default()
    copy_id = ec2.copy_snapshot(SourceSnapshotId=completed_snapshot(ec2), SourceRegion=REGION)["SnapshotId"]
    assert snapshot_of(ec2, copy_id)["Encrypted"] is True


# --- 4. CreateImage --------------------------------------------------------------------------


@pytest.fixture
def instance_with_volumes(ec2, kms, durations):
    """A running instance with its root volume and an encrypted gp3 data volume at /dev/sdf."""
    durations()
    inst = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    key = new_key(kms)
    data = ec2.create_volume(
        Size=20, AvailabilityZone=inst["Placement"]["AvailabilityZone"], VolumeType="gp3",
        Iops=4000, Throughput=250, Encrypted=True, KmsKeyId=key["Arn"],
    )
    ec2.attach_volume(VolumeId=data["VolumeId"], InstanceId=inst["InstanceId"], Device="/dev/sdf")
    return {"id": inst["InstanceId"], "root": inst["RootDeviceName"], "key": key["Arn"], "data": data["VolumeId"]}


def test_create_image_maps_the_instance_volumes(ec2, instance_with_volumes, durations, advance):
    durations({"image": 60})
    image_id = ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-image-1", NoReboot=True)["ImageId"]
    image = image_of(ec2, image_id)
    assert image["State"] == "pending"
    assert image["RootDeviceName"] == instance_with_volumes["root"] and image["RootDeviceType"] == "ebs"
    by_device = {m["DeviceName"]: m["Ebs"] for m in image["BlockDeviceMappings"]}
    assert set(by_device) == {instance_with_volumes["root"], "/dev/sdf"}
    data = by_device["/dev/sdf"]
    assert (data["VolumeSize"], data["VolumeType"], data["Iops"], data["Throughput"], data["Encrypted"]) == (20, "gp3", 4000, 250, True)
    assert "KmsKeyId" not in data  # DescribeImages does not show it; the snapshot does
    snapshot = snapshot_of(ec2, data["SnapshotId"])
    assert snapshot["State"] == "pending" and snapshot["KmsKeyId"] == instance_with_volumes["key"]
    assert snapshot["VolumeId"] == instance_with_volumes["data"]
    advance(61)
    assert image_of(ec2, image_id)["State"] == "available"
    assert snapshot_of(ec2, data["SnapshotId"])["State"] == "completed"
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 2  # no fake snapshot


def test_create_image_duplicate_name(ec2, instance_with_volumes, instant):
    first = ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-dup", NoReboot=True)["ImageId"]
    with pytest.raises(ClientError) as info:
        ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-dup", NoReboot=True)
    assert info.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"
    assert first in info.value.response["Error"]["Message"]


def test_create_image_tags_image_and_snapshots(ec2, instance_with_volumes, instant):
    image_id = ec2.create_image(
        InstanceId=instance_with_volumes["id"],
        Name="ec2r-tagged",
        NoReboot=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "kind", "Value": "image"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "kind", "Value": "snap"}]},
        ],
    )["ImageId"]
    image = image_of(ec2, image_id)
    assert tags_of(image) == {"kind": "image"}
    for mapping in image["BlockDeviceMappings"]:
        assert tags_of(snapshot_of(ec2, mapping["Ebs"]["SnapshotId"])) == {"kind": "snap"}
    assert code_of(
        ec2.create_image, InstanceId=instance_with_volumes["id"], Name="ec2r-bad-tag",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}],
    ) == "InvalidParameterValue"


def test_create_image_without_no_reboot(ec2, instance_with_volumes, instant):
    # AWS reboots the instance; it is `running` again when CreateImage returns its id, and
    # moto cannot show the reboot: the emulator counts it (images.reboots(instance_id)).
    image_id = ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-reboot")["ImageId"]
    assert image_of(ec2, image_id)["State"] == "available"
    state = ec2.describe_instances(InstanceIds=[instance_with_volumes["id"]])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "running"


def test_deleting_snapshot_of_an_image_is_in_use(ec2, instance_with_volumes, instant):
    image = image_of(ec2, ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-inuse", NoReboot=True)["ImageId"])
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert code_of(ec2.delete_snapshot, SnapshotId=snapshot_id) == "InvalidSnapshot.InUse"


# --- 5. RegisterImage ------------------------------------------------------------------------


def test_register_image_honours_its_parameters(ec2, instant):
    snapshot_id = completed_snapshot(ec2, size=10)
    image_id = ec2.register_image(
        Name="ec2r-registered",
        RootDeviceName="/dev/xvda",
        Architecture="arm64",
        VirtualizationType="hvm",
        BootMode="uefi",
        EnaSupport=True,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id, "VolumeType": "gp3", "VolumeSize": 12}},
        ],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "a", "Value": "b"}]}],
    )["ImageId"]
    image = image_of(ec2, image_id)
    assert image["State"] == "available"
    assert (image["Architecture"], image["VirtualizationType"], image["BootMode"], image["EnaSupport"]) == ("arm64", "hvm", "uefi", True)
    assert (image["RootDeviceName"], image["RootDeviceType"]) == ("/dev/xvda", "ebs")
    assert image["BlockDeviceMappings"] == [{
        "DeviceName": "/dev/xvda",
        "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": 12, "VolumeType": "gp3", "DeleteOnTermination": True, "Encrypted": False},
    }]
    assert tags_of(image) == {"a": "b"}


def test_register_image_errors(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    registered_image(ec2, "ec2r-taken", snapshot_id)
    assert code_of(registered_image, ec2, "ec2r-taken", snapshot_id) == "InvalidAMIName.Duplicate"
    assert code_of(registered_image, ec2, "ec2r-missing", "snap-0123456789abcdef0") == "InvalidSnapshot.NotFound"


def test_register_image_from_manifest_is_instance_store(ec2, instant):
    image_id = ec2.register_image(Name="ec2r-s3", ImageLocation="my-bucket/image.manifest.xml")["ImageId"]
    image = image_of(ec2, image_id)
    assert image["RootDeviceType"] == "instance-store" and image["ImageLocation"] == "my-bucket/image.manifest.xml"


# --- 6. CopyImage ----------------------------------------------------------------------------


def test_copy_image_encrypted_with_key(ec2, kms, instant):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2, size=9))
    key = new_key(kms, alias="alias/ami-copies")
    copy_id = ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-copy", Encrypted=True, KmsKeyId="alias/ami-copies")["ImageId"]
    copy = image_of(ec2, copy_id)
    (mapping,) = copy["BlockDeviceMappings"]
    assert mapping["Ebs"]["Encrypted"] is True and mapping["Ebs"]["VolumeSize"] == 9
    snapshot = snapshot_of(ec2, mapping["Ebs"]["SnapshotId"])
    assert (snapshot["Encrypted"], snapshot["KmsKeyId"]) == (True, key["Arn"])
    assert mapping["Ebs"]["SnapshotId"] != image_of(ec2, source)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def test_copy_image_encrypted_default_key(ec2, instant):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    copy = image_of(ec2, ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-copy", Encrypted=True)["ImageId"])
    snapshot = snapshot_of(ec2, copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
    assert snapshot["KmsKeyId"] == ec2.get_ebs_default_kms_key_id()["KmsKeyId"]


def test_copy_image_client_token(ec2, instant):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    args = {"SourceImageId": source, "SourceRegion": REGION, "Name": "ec2r-copy", "ClientToken": "token-1"}
    first = ec2.copy_image(**args)["ImageId"]
    assert ec2.copy_image(**args)["ImageId"] == first
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 2
    assert code_of(ec2.copy_image, **{**args, "Name": "ec2r-other"}) == "IdempotentParameterMismatch"


def test_copy_image_tags_and_copy_image_tags(ec2, instant):
    source = registered_image(
        ec2, "ec2r-src", completed_snapshot(ec2),
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "from", "Value": "source"}]}],
    )
    specs = [
        {"ResourceType": "image", "Tags": [{"Key": "new", "Value": "1"}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "snap", "Value": "1"}]},
    ]
    with_tags = image_of(ec2, ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-c1", CopyImageTags=True, TagSpecifications=specs)["ImageId"])
    assert tags_of(with_tags) == {"from": "source", "new": "1"}
    assert tags_of(snapshot_of(ec2, with_tags["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])) == {"snap": "1"}
    without = image_of(ec2, ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-c2")["ImageId"])
    assert tags_of(without) == {}


def test_copy_image_cross_region_pending_then_available(ec2, ec2_west, durations, advance):
    durations({"snapshot": 0, "copy-image": 120})
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    copy_id = ec2_west.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-west")["ImageId"]
    copy = image_of(ec2_west, copy_id)
    assert copy["State"] == "pending"
    assert snapshot_of(ec2_west, copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])["State"] == "pending"
    assert code_of(ec2.describe_images, ImageIds=[copy_id]) == "InvalidAMIID.NotFound"
    advance(121)
    assert image_of(ec2_west, copy_id)["State"] == "available"
    assert snapshot_of(ec2_west, copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])["State"] == "completed"


def test_copy_image_unknown_key_fails_asynchronously(ec2, durations, advance):
    durations({"copy-image": 30})
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    copy_id = ec2.copy_image(
        SourceImageId=source, SourceRegion=REGION, Name="ec2r-bad-key", Encrypted=True, KmsKeyId="alias/missing"
    )["ImageId"]
    assert image_of(ec2, copy_id)["State"] == "pending"
    advance(31)
    copy = image_of(ec2, copy_id)
    assert copy["State"] == "failed" and "alias/missing" in copy["StateReason"]["Message"]
    assert snapshot_of(ec2, copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])["State"] == "error"

def test_copy_image_duplicate_name_in_destination(ec2, instant):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    assert code_of(ec2.copy_image, SourceImageId=source, SourceRegion=REGION, Name="ec2r-src") == "InvalidAMIName.Duplicate"


# --- 7. DescribeImages -----------------------------------------------------------------------


def test_describe_images_block_device_mapping_filters(ec2, instant):
    snap_a = completed_snapshot(ec2, size=8)
    snap_b = completed_snapshot(ec2, size=30)
    image_a = registered_image(ec2, "ec2r-a", snap_a)
    image_b = registered_image(ec2, "ec2r-b", snap_b)

    def ids(name, values):
        return {i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": name, "Values": values}])["Images"]}

    assert ids("block-device-mapping.snapshot-id", [snap_b]) == {image_b}
    assert ids("block-device-mapping.snapshot-id", [snap_a, snap_b]) == {image_a, image_b}
    assert ids("block-device-mapping.volume-size", ["30"]) == {image_b}
    assert ids("block-device-mapping.device-name", ["/dev/xvda"]) == {image_a, image_b}
    assert ids("block-device-mapping.encrypted", ["false"]) == {image_a, image_b}
    assert ids("root-device-type", ["ebs"]) == {image_a, image_b}


def test_describe_images_owners_tags_and_pagination(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    created = [
        registered_image(ec2, f"ec2r-img-{n}", snapshot_id, TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "n", "Value": str(n % 2)}]}])
        for n in range(7)
    ]
    assert {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]} == set(created)
    odd = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:n", "Values": ["1"]}])["Images"]
    assert len(odd) == 3
    first = ec2.describe_images(Owners=["self"], MaxResults=5)
    assert len(first["Images"]) == 5 and first["NextToken"]
    second = ec2.describe_images(Owners=["self"], MaxResults=5, NextToken=first["NextToken"])
    assert len(second["Images"]) == 2 and "NextToken" not in second
    assert {i["ImageId"] for i in first["Images"] + second["Images"]} == set(created)
    assert code_of(ec2.describe_images, ImageIds=[created[0]], MaxResults=5) == "InvalidParameterCombination"


def test_describe_images_pending_state_filter(ec2, instance_with_volumes, durations):
    durations({"image": 3600})
    image_id = ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-pending", NoReboot=True)["ImageId"]
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]
    assert [i["ImageId"] for i in found] == [image_id]


# --- 8. DeregisterImage and launch permissions -----------------------------------------------


def test_deregister_image_deletes_snapshots_not_shared(ec2, instant):
    shared = completed_snapshot(ec2)
    own = completed_snapshot(ec2)
    keeper = registered_image(ec2, "ec2r-keeper", shared)
    image_id = ec2.register_image(
        Name="ec2r-doomed",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": shared}},
            {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": own}},
        ],
    )["ImageId"]
    result = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    codes = {r["SnapshotId"]: r["ReturnCode"] for r in result["DeleteSnapshotResults"]}
    assert codes == {own: "success", shared: "skipped"}
    assert code_of(ec2.describe_snapshots, SnapshotIds=[own]) == "InvalidSnapshot.NotFound"
    assert snapshot_of(ec2, shared)["SnapshotId"] == shared
    assert image_of(ec2, keeper)["State"] == "available"


def test_deregister_without_flag_keeps_snapshots(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    image_id = registered_image(ec2, "ec2r-plain", snapshot_id)
    result = ec2.deregister_image(ImageId=image_id)
    assert result["Return"] is True and "DeleteSnapshotResults" not in result
    ec2.delete_snapshot(SnapshotId=snapshot_id)  # no longer in use


def test_deregistered_image_stays_visible_by_id_for_a_while(ec2, durations, advance):
    durations({"snapshot": 0, "deregister": 60})
    image_id = registered_image(ec2, "ec2r-gone", completed_snapshot(ec2))
    ec2.deregister_image(ImageId=image_id)
    assert image_of(ec2, image_id)["State"] == "deregistered"
    listed = ec2.describe_images(Owners=["self"])["Images"]
    assert [(i["ImageId"], i["State"]) for i in listed] == [(image_id, "deregistered")]
    registered_image(ec2, "ec2r-gone", completed_snapshot(ec2))  # the name is free at once
    advance(61)
    assert ec2.describe_images(ImageIds=[image_id])["Images"] == []
    assert [i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]] == ["ec2r-gone"]
    assert code_of(ec2.deregister_image, ImageId=image_id) in ("InvalidAMIID.Unavailable", "InvalidAMIID.NotFound")


def test_launch_permissions(ec2, instant):
    image_id = registered_image(ec2, "ec2r-shared", completed_snapshot(ec2))
    org = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
    ou = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
    ec2.modify_image_attribute(
        ImageId=image_id,
        LaunchPermission={"Add": [{"UserId": "111122223333"}, {"OrganizationArn": org}, {"OrganizationalUnitArn": ou}]},
    )
    ec2.modify_image_attribute(
        ImageId=image_id, Attribute="launchPermission", OperationType="add",
        UserIds=["444455556666", "777788889999"], OrganizationArns=[org.replace("o-abcdefghij", "o-zzzzzzzzzz")],
    )

    def perms():
        got = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
        return sorted(tuple(sorted(p.items())) for p in got)

    assert len(perms()) == 6
    assert (("UserId", "777788889999"),) in perms()
    ec2.disable_image_block_public_access()  # on by default, as for new AWS accounts
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    assert image_of(ec2, image_id)["Public"] is True
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"Group": "all"}, {"UserId": "111122223333"}]})
    assert image_of(ec2, image_id)["Public"] is False
    assert (("UserId", "111122223333"),) not in perms()
    assert code_of(ec2.modify_image_attribute, ImageId=image_id, LaunchPermission={"Add": [{"UserId": "12"}]}) == "InvalidAMIAttributeItemValue"
    assert code_of(ec2.describe_image_attribute, ImageId="ami-0123456789abcdef0", Attribute="launchPermission") == "InvalidAMIID.NotFound"


def test_modify_image_description(ec2, instant):
    image_id = registered_image(ec2, "ec2r-desc", completed_snapshot(ec2))
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "new words"})
    assert image_of(ec2, image_id)["Description"] == "new words"

