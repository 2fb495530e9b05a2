"""AMI corrections beyond test_images.py: RegisterImage validation, sharing rules and image
block public access, images of other accounts, deprecation, deregistration protection,
CreationDate on the emulator clock, CopyImage encryption defaults, CreateImage mappings, latched
states, key-ordered pagination, `aws:` tags, 4xx instead of 500, injected copy failures.
Each test would fail against plain moto 5.2.5 (or against the layer before these corrections)."""

from __future__ import annotations

import urllib.error
from datetime import datetime, timedelta

import pytest

from test_images import (  # noqa: F401  (fixtures are used by name)
    AZ,
    REGION,
    advance,
    code_of,
    completed_snapshot,
    durations,
    image_of,
    instance_with_volumes,
    instant,
    kms,
    new_key,
    registered_image,
    snapshot_of,
    tags_of,
    transitions,
)

OTHER_ACCOUNT = "111122223333"


def ids_of(images: list[dict]) -> set[str]:
    return {i["ImageId"] for i in images}


# --- latched states, pagination, aws: tags ----------------------------------------------------


def test_a_finished_image_and_snapshot_never_go_back_to_pending(ec2, durations):
    durations({"snapshot": 0, "image": 0})
    snapshot_id = completed_snapshot(ec2)
    image_id = registered_image(ec2, "ec2r-latched", snapshot_id)
    assert snapshot_of(ec2, snapshot_id)["State"] == "completed"
    durations({"snapshot": 3600, "image": 3600, "copy-image": 3600})
    assert snapshot_of(ec2, snapshot_id)["State"] == "completed"
    assert image_of(ec2, image_id)["State"] == "available"
    ec2.copy_snapshot(SourceSnapshotId=snapshot_id, SourceRegion=REGION)  # not IncorrectState


def test_describe_images_pages_do_not_skip_when_an_image_is_deregistered_between_pages(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    created = {registered_image(ec2, f"ec2r-page-{n}", snapshot_id) for n in range(10)}
    first = ec2.describe_images(Owners=["self"], MaxResults=5)
    ec2.deregister_image(ImageId=first["Images"][0]["ImageId"])
    second = ec2.describe_images(Owners=["self"], MaxResults=5, NextToken=first["NextToken"])
    assert len(second["Images"]) == 5 and "NextToken" not in second
    assert ids_of(first["Images"]) | ids_of(second["Images"]) == created
    assert code_of(ec2.describe_images, Owners=["self"], MaxResults=5, NextToken="bogus") == "InvalidPaginationToken"


@pytest.mark.parametrize("call", ["create_image", "copy_image", "register_image", "copy_snapshot"])
def test_aws_tag_keys_are_refused_in_every_tag_specification(ec2, instance_with_volumes, call):
    snapshot_id = completed_snapshot(ec2)
    source = registered_image(ec2, "ec2r-tag-src", snapshot_id)
    resource = "snapshot" if call == "copy_snapshot" else "image"
    specs = [{"ResourceType": resource, "Tags": [{"Key": "AWS:owner", "Value": "x"}]}]
    calls = {
        "create_image": lambda: ec2.create_image(InstanceId=instance_with_volumes["id"], Name="ec2r-t", NoReboot=True, TagSpecifications=specs),
        "copy_image": lambda: ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-t", TagSpecifications=specs),
        "register_image": lambda: registered_image(ec2, "ec2r-t", snapshot_id, TagSpecifications=specs),
        "copy_snapshot": lambda: ec2.copy_snapshot(SourceSnapshotId=snapshot_id, SourceRegion=REGION, TagSpecifications=specs),
    }
    assert code_of(calls[call]) == "InvalidParameterValue"
    assert [i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]] == ["ec2r-tag-src"]


# --- RegisterImage validation ----------------------------------------------------------------


def register(ec2, snapshot_id, ebs_extra=None, **kwargs):
    args = {
        "Name": "ec2r-reg", "RootDeviceName": "/dev/xvda", "Architecture": "x86_64", "VirtualizationType": "hvm",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id, **(ebs_extra or {})}}],
    }
    args.update(kwargs)
    return ec2.register_image(**args)["ImageId"]


@pytest.mark.parametrize("ebs_extra, code", [
    ({"Encrypted": True}, "InvalidBlockDeviceMapping"),
    ({"Encrypted": False}, "InvalidBlockDeviceMapping"),
    ({"KmsKeyId": "alias/aws/ebs"}, "InvalidParameterCombination"),
    ({"VolumeType": "gp4"}, "InvalidParameterValue"),
    ({"VolumeType": "gp3", "Iops": 99999}, "InvalidParameterValue"),
    ({"VolumeType": "gp3", "Throughput": 5000}, "InvalidParameterValue"),
    ({"VolumeType": "io1"}, "InvalidParameterCombination"),
    ({"VolumeType": "gp2", "Iops": 3000}, "InvalidParameterCombination"),
    ({"VolumeSize": 4}, "InvalidBlockDeviceMapping"),
])
def test_register_image_refuses_bad_mappings(ec2, instant, ebs_extra, code):
    snapshot_id = completed_snapshot(ec2, size=8)
    assert code_of(register, ec2, snapshot_id, ebs_extra) == code
    assert ec2.describe_images(Owners=["self"])["Images"] == []


@pytest.mark.parametrize("param, value", [
    ("Architecture", "sparc"), ("VirtualizationType", "bogus"), ("BootMode", "bios"),
])
def test_register_image_refuses_unknown_enum_values(ec2, instant, param, value):
    snapshot_id = completed_snapshot(ec2)
    assert code_of(register, ec2, snapshot_id, **{param: value}) == "InvalidParameterValue"


def test_register_image_needs_a_completed_snapshot_at_its_root_device(ec2, durations):
    durations({"snapshot": 3600})
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    pending = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    assert code_of(register, ec2, pending) == "IncorrectState"
    durations({"snapshot": 0})
    assert code_of(ec2.register_image, Name="ec2r-nothing", Architecture="x86_64") == "InvalidBlockDeviceMapping"
    assert code_of(register, ec2, pending, RootDeviceName="/dev/sda1") == "InvalidBlockDeviceMapping"
    assert code_of(register, ec2, "snap-0123456789abcdef0") == "InvalidSnapshot.NotFound"
    image_id = register(ec2, pending, {"VolumeType": "gp3", "Iops": 4000, "Throughput": 250})
    ebs = image_of(ec2, image_id)["BlockDeviceMappings"][0]["Ebs"]
    assert (ebs["VolumeType"], ebs["Iops"], ebs["Throughput"]) == ("gp3", 4000, 250)


# --- sharing rules and image block public access ---------------------------------------------


def test_image_block_public_access_is_on_by_default_and_blocks_public_sharing(ec2, instant):
    image_id = registered_image(ec2, "ec2r-bpa", completed_snapshot(ec2))
    state = ec2.get_image_block_public_access_state()
    assert (state["ImageBlockPublicAccessState"], state["ManagedBy"]) == ("block-new-sharing", "account")
    make_public = {"ImageId": image_id, "LaunchPermission": {"Add": [{"Group": "all"}]}}
    assert code_of(ec2.modify_image_attribute, **make_public) == "OperationNotPermitted"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})  # accounts are fine
    assert ec2.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    ec2.modify_image_attribute(**make_public)
    assert image_of(ec2, image_id)["Public"] is True
    assert ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert image_of(ec2, image_id)["Public"] is True  # already public images stay public
    assert code_of(ec2.enable_image_block_public_access, ImageBlockPublicAccessState="unblocked") == "InvalidParameterValue"


def test_an_encrypted_image_cannot_be_made_public(ec2, kms, instant):
    key = new_key(kms)
    image_id = registered_image(ec2, "ec2r-enc", completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"]))
    ec2.disable_image_block_public_access()
    assert code_of(ec2.modify_image_attribute, ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}) == "UnsupportedOperation"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})  # customer key: fine


def test_an_image_under_the_aws_managed_key_cannot_be_shared(ec2, instant):
    image_id = registered_image(ec2, "ec2r-awskey", completed_snapshot(ec2, Encrypted=True))  # default key: aws/ebs
    for perm in ({"UserId": OTHER_ACCOUNT}, {"OrganizationArn": "arn:aws:organizations::123456789012:organization/o-abcdefghij"}):
        assert code_of(ec2.modify_image_attribute, ImageId=image_id, LaunchPermission={"Add": [perm]}) == "InvalidParameter"
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == []


# --- images of other accounts ----------------------------------------------------------------


def seed(emu, **image):
    return emu.control("POST", "images", image)


def test_public_and_shared_images_of_other_accounts_are_visible(emu, ec2, instant):
    mine = registered_image(ec2, "ec2r-mine", completed_snapshot(ec2))
    account = image_of(ec2, mine)["OwnerId"]
    amazon = seed(emu, owner="amazon", name="al2023-ami-2023.6-x86_64", public=True)["image_id"]
    market = seed(emu, owner="aws-marketplace", name="vendor-image", public=True)["image_id"]
    shared = seed(emu, owner=OTHER_ACCOUNT, name="team-base", shared_with=[account])["image_id"]
    hidden = seed(emu, owner="444455556666", name="not-for-us", public=False)["image_id"]

    assert ids_of(ec2.describe_images()["Images"]) == {mine, amazon, market, shared}
    assert ids_of(ec2.describe_images(Owners=["self"])["Images"]) == {mine}
    assert ids_of(ec2.describe_images(Owners=["amazon"])["Images"]) == {amazon}
    assert ids_of(ec2.describe_images(Owners=["amazon", "aws-marketplace"])["Images"]) == {amazon, market}
    assert ids_of(ec2.describe_images(Owners=[OTHER_ACCOUNT])["Images"]) == {shared}
    assert ids_of(ec2.describe_images(Owners=["aws-backup-vault"])["Images"]) == set()
    assert ids_of(ec2.describe_images(ExecutableUsers=["self"])["Images"]) == {shared}
    assert ids_of(ec2.describe_images(ExecutableUsers=["all"])["Images"]) == {amazon, market}
    assert ids_of(ec2.describe_images(ExecutableUsers=["self"], ImageIds=[shared, amazon])["Images"]) == {shared}
    assert ids_of(ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-*"]}])["Images"]) == {amazon}
    image = image_of(ec2, amazon)
    assert (image["ImageOwnerAlias"], image["OwnerId"], image["Public"]) == ("amazon", "137112412989", True)
    assert code_of(ec2.describe_images, ImageIds=[hidden]) == "InvalidAMIID.NotFound"
    assert code_of(ec2.describe_images, ImageIds=["bogus"]) == "InvalidAMIID.Malformed"


def test_executable_users_applies_together_with_image_ids(ec2, instant):
    image_id = registered_image(ec2, "ec2r-grant", completed_snapshot(ec2))
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    assert ids_of(ec2.describe_images(ImageIds=[image_id], ExecutableUsers=[OTHER_ACCOUNT])["Images"]) == {image_id}
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": OTHER_ACCOUNT}]})
    assert ec2.describe_images(ImageIds=[image_id], ExecutableUsers=[OTHER_ACCOUNT])["Images"] == []


def test_a_seeded_public_image_can_be_copied_into_the_account(emu, ec2, instant):
    seeded = seed(emu, owner="amazon", name="al2023-base", public=True, volume_size=10,
                  creation_date="2026-01-02T03:04:05Z", tags={"os": "al2023"})
    image = image_of(ec2, seeded["image_id"])
    assert image["CreationDate"] == "2026-01-02T03:04:05.000Z" and tags_of(image) == {"os": "al2023"}
    copy_id = ec2.copy_image(SourceImageId=seeded["image_id"], SourceRegion=REGION, Name="ec2r-my-base")["ImageId"]
    copy = image_of(ec2, copy_id)
    assert copy["OwnerId"] != seeded["owner_id"] and copy["SourceImageId"] == seeded["image_id"]
    assert copy["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 10


def test_seeding_rejects_bad_input(emu):
    with pytest.raises(urllib.error.HTTPError) as e:
        seed(emu, owner="nobody", name="x")
    assert e.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as e:
        seed(emu, owner="amazon")
    assert e.value.code == 400


# --- deprecation and deregistration protection -----------------------------------------------


def test_deprecation_time_is_rounded_shown_and_hides_other_accounts_deprecated_images(emu, ec2, instant):
    now = emu.control("GET", "clock")["now"]
    mine = registered_image(ec2, "ec2r-old", completed_snapshot(ec2))
    day = datetime.fromisoformat(now[:10])
    ec2.enable_image_deprecation(ImageId=mine, DeprecateAt=day + timedelta(days=2, seconds=40))
    assert image_of(ec2, mine)["DeprecationTime"] == (day + timedelta(days=2, minutes=1)).strftime("%Y-%m-%dT%H:%M:00.000Z")
    assert code_of(ec2.enable_image_deprecation, ImageId=mine, DeprecateAt=day - timedelta(days=1)) == "InvalidParameterValue"
    assert code_of(ec2.enable_image_deprecation, ImageId=mine, DeprecateAt=day + timedelta(days=3700)) == "InvalidParameterValue"
    theirs = seed(emu, owner="amazon", name="old-base", public=True, deprecation_time=(day + timedelta(days=1)).isoformat() + "Z")["image_id"]
    assert ids_of(ec2.describe_images()["Images"]) == {mine, theirs}
    emu.advance(3 * 86400)
    assert ids_of(ec2.describe_images()["Images"]) == {mine}  # the owner still sees its own
    assert ids_of(ec2.describe_images(IncludeDeprecated=True)["Images"]) == {mine, theirs}
    ec2.disable_image_deprecation(ImageId=mine)
    assert "DeprecationTime" not in image_of(ec2, mine)
    assert code_of(ec2.enable_image_deprecation, ImageId=theirs, DeprecateAt=day + timedelta(days=5)) == "InvalidAMIID.NotFound"


def test_deregistration_protection_with_cooldown_on_the_emulator_clock(emu, ec2, instant):
    image_id = registered_image(ec2, "ec2r-protected", completed_snapshot(ec2))
    assert image_of(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.enable_image_deregistration_protection(ImageId=image_id, WithCooldown=True)
    assert image_of(ec2, image_id)["DeregistrationProtection"] == "enabled-with-cooldown"
    assert code_of(ec2.deregister_image, ImageId=image_id) == "OperationNotPermitted"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    assert image_of(ec2, image_id)["DeregistrationProtection"].startswith("disabled-until ")
    attr = ec2.describe_image_attribute(ImageId=image_id, Attribute="deregistrationProtection")
    assert attr["DeregistrationProtection"]["Value"].startswith("disabled-until ")
    assert code_of(ec2.deregister_image, ImageId=image_id) == "OperationNotPermitted"
    emu.advance(23 * 3600)
    assert code_of(ec2.deregister_image, ImageId=image_id) == "OperationNotPermitted"
    emu.advance(3600 + 1)
    assert image_of(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image_id)


def test_deregistration_protection_without_cooldown(ec2, instant):
    image_id = registered_image(ec2, "ec2r-protected", completed_snapshot(ec2))
    ec2.enable_image_deregistration_protection(ImageId=image_id)
    assert image_of(ec2, image_id)["DeregistrationProtection"] == "enabled-without-cooldown"
    assert code_of(ec2.deregister_image, ImageId=image_id) == "OperationNotPermitted"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    ec2.deregister_image(ImageId=image_id)


# --- CreationDate and the creation-date filter -----------------------------------------------


def test_creation_date_follows_the_emulator_clock_and_filters_with_wildcards(emu, ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    first = registered_image(ec2, "ec2r-day-1", snapshot_id)
    emu.advance(400 * 86400)
    now = emu.control("GET", "clock")["now"]
    second = registered_image(ec2, "ec2r-day-2", snapshot_id)
    created = image_of(ec2, second)["CreationDate"]
    assert created[:10] == now[:10] and created.endswith(".000Z")
    assert image_of(ec2, first)["CreationDate"][:10] != now[:10]

    def by_date(pattern):
        return ids_of(ec2.describe_images(Owners=["self"], Filters=[{"Name": "creation-date", "Values": [pattern]}])["Images"])

    assert by_date(now[:10] + "T*") == {second}
    assert by_date(created) == {second}
    assert by_date("*") == {first, second}


# --- CopyImage encryption defaults -----------------------------------------------------------


def test_copy_of_an_encrypted_image_keeps_its_key_in_the_same_region(ec2, kms, instant):
    key = new_key(kms)
    source = registered_image(ec2, "ec2r-enc-src", completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"]))
    copy = image_of(ec2, ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-enc-copy")["ImageId"])
    assert snapshot_of(ec2, copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])["KmsKeyId"] == key["Arn"]
    other = new_key(kms)
    recopy = image_of(ec2, ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-enc-copy2",
                                          Encrypted=True, KmsKeyId=other["Arn"])["ImageId"])
    assert snapshot_of(ec2, recopy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])["KmsKeyId"] == other["Arn"]


def test_copy_of_an_encrypted_image_cannot_be_unencrypted(ec2, kms, instant):
    key = new_key(kms)
    source = registered_image(ec2, "ec2r-enc-src", completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"]))
    assert code_of(ec2.copy_image, SourceImageId=source, SourceRegion=REGION, Name="ec2r-plain", Encrypted=False) == "InvalidRequest"
    plain = registered_image(ec2, "ec2r-plain-src", completed_snapshot(ec2))
    ec2.copy_image(SourceImageId=plain, SourceRegion=REGION, Name="ec2r-plain-copy", Encrypted=False)


# --- CreateImage mappings and instance state -------------------------------------------------


def test_create_image_honours_delete_on_termination_and_added_mappings(ec2, instance_with_volumes):
    root = instance_with_volumes["root"]
    image_id = ec2.create_image(
        InstanceId=instance_with_volumes["id"], Name="ec2r-bdm", NoReboot=True,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3"}},
            {"DeviceName": "/dev/sdh", "VirtualName": "ephemeral0"},
        ],
    )["ImageId"]
    by_device = {m["DeviceName"]: m for m in image_of(ec2, image_id)["BlockDeviceMappings"]}
    assert set(by_device) == {root, "/dev/sdf", "/dev/sdg", "/dev/sdh"}
    assert by_device["/dev/sdf"]["Ebs"]["DeleteOnTermination"] is True
    assert (by_device["/dev/sdg"]["Ebs"]["VolumeSize"], by_device["/dev/sdg"]["Ebs"]["VolumeType"]) == (50, "gp3")
    assert "SnapshotId" not in by_device["/dev/sdg"]["Ebs"]
    assert by_device["/dev/sdh"] == {"DeviceName": "/dev/sdh", "VirtualName": "ephemeral0"}
    assert code_of(ec2.create_image, InstanceId=instance_with_volumes["id"], Name="ec2r-bdm2", NoReboot=True,
                   BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 100}}]) == "InvalidBlockDeviceMapping"


def test_create_image_of_a_terminated_instance_is_refused(ec2, instance_with_volumes):
    ec2.terminate_instances(InstanceIds=[instance_with_volumes["id"]])
    assert code_of(ec2.create_image, InstanceId=instance_with_volumes["id"], Name="ec2r-dead") == "IncorrectInstanceState"
    assert ec2.describe_images(Owners=["self"])["Images"] == []


# --- 4xx, never 500 --------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["tpmSupport", "uefiData", "lastLaunchedTime", "imdsSupport", "ramdisk"])
def test_describe_image_attribute_answers_attributes_moto_crashed_on(ec2, instant, attribute):
    # moto 5.2.5: HTTP 500 (AttributeError), which the SDK retries as a server fault.
    image_id = registered_image(ec2, "ec2r-attrs", completed_snapshot(ec2), BootMode="uefi", TpmSupport="v2.0", ImdsSupport="v2.0")
    result = ec2.describe_image_attribute(ImageId=image_id, Attribute=attribute)
    assert result["ImageId"] == image_id
    if attribute in ("tpmSupport", "imdsSupport"):
        assert result[attribute[0].upper() + attribute[1:]]["Value"] == "v2.0"


# --- injected CopyImage failure --------------------------------------------------------------


def test_a_copy_can_be_made_to_fail_with_a_state_reason(emu, ec2, durations):
    durations({"copy-image": 30})
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    emu.control("POST", "image-copy-failures", {"code": "Server.InternalError", "message": "Server.InternalError: Internal error on copy"})
    failing = ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-fails")["ImageId"]
    fine = ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-works")["ImageId"]
    assert image_of(ec2, failing)["State"] == "pending"
    emu.advance(31)
    failed = image_of(ec2, failing)
    assert failed["State"] == "failed"
    assert failed["StateReason"] == {"Code": "Server.InternalError", "Message": "Server.InternalError: Internal error on copy"}
    assert snapshot_of(ec2, failed["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])["State"] == "error"
    assert image_of(ec2, fine)["State"] == "available"
    assert emu.control("GET", "image-copy-failures")["image_copy_failures"] == []
