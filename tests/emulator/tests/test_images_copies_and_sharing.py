"""Image LastLaunchedTime, time-based CopyImage, the progress of a pending copy, snapshot create
volume permissions and their sharing rules, and the boot attributes of RegisterImage
(ec2emu/fixes/images_amis.py, images_snapshots.py, images_common.py).
Each test would fail against plain moto 5.2.5 (or against the layer before these corrections),
except the pending-copy ones, which pin behaviour the layer already had."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from test_images import (  # noqa: F401  (fixtures are used by name)
    AZ,
    REGION,
    advance,
    code_of,
    completed_snapshot,
    durations,
    image_of,
    instant,
    kms,
    new_key,
    registered_image,
    snapshot_of,
    transitions,
)

OTHER_ACCOUNT = "111122223333"
DAY = 86400


def emulator_now(emu) -> datetime:
    return parse_time(emu.control("GET", "clock")["now"])


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def two_volume_image(ec2, name: str) -> str:
    """An image with a root and a data snapshot (completed at once)."""
    root, data = completed_snapshot(ec2, size=8), completed_snapshot(ec2, size=20)
    return ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}},
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data}},
        ],
    )["ImageId"]


def snapshot_ids(image: dict) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def permissions(ec2, snapshot_id: str) -> list[dict]:
    return ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")["CreateVolumePermissions"]


# --- 1. LastLaunchedTime ---------------------------------------------------------------------


def test_last_launched_time_is_reported_a_day_after_the_launch(emu, ec2, durations):
    durations({"last-launched-report": DAY})  # AWS's documented delay (the emulator's default is 0)
    image_id = registered_image(ec2, "ec2r-launched", completed_snapshot(ec2))
    assert "LastLaunchedTime" not in image_of(ec2, image_id)
    assert "LastLaunchedTime" not in ec2.describe_image_attribute(ImageId=image_id, Attribute="lastLaunchedTime")

    launched_at = emulator_now(emu)
    ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    emu.advance(DAY - 60)  # "a 24-hour delay before that usage is reported"
    assert "LastLaunchedTime" not in image_of(ec2, image_id)

    emu.advance(60)
    shown = image_of(ec2, image_id)["LastLaunchedTime"]
    assert abs(parse_time(shown) - launched_at) < timedelta(seconds=5)
    attribute = ec2.describe_image_attribute(ImageId=image_id, Attribute="lastLaunchedTime")
    assert attribute["LastLaunchedTime"] == {"Value": shown}

    # A later launch replaces it, once reported in turn.
    emu.advance(3600)
    second_launch = emulator_now(emu)
    ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    assert image_of(ec2, image_id)["LastLaunchedTime"] == shown
    emu.advance(DAY)
    assert abs(parse_time(image_of(ec2, image_id)["LastLaunchedTime"]) - second_launch) < timedelta(seconds=5)


def test_last_launched_time_shows_at_once_by_default_for_own_and_public_images(emu, ec2, instant):
    own = registered_image(ec2, "ec2r-own", completed_snapshot(ec2))
    public = emu.control("POST", "images", {"owner": "amazon", "name": "al2023-ami-x86_64"})["image_id"]
    never = registered_image(ec2, "ec2r-never-launched", completed_snapshot(ec2))
    for image_id in (own, public):
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    described = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[own, public, never])["Images"]}
    assert "LastLaunchedTime" in described[own] and "LastLaunchedTime" in described[public]
    assert "LastLaunchedTime" not in described[never]
    assert described[own]["LastLaunchedTime"].endswith("Z")


# --- 2. time-based CopyImage -----------------------------------------------------------------


def test_time_based_copy_shows_its_completion_duration_on_every_snapshot(ec2, durations, advance):
    durations({"copy-image": 30})
    source = two_volume_image(ec2, "ec2r-src")
    copy = image_of(ec2, ec2.copy_image(
        SourceImageId=source, SourceRegion=REGION, Name="ec2r-timed", SnapshotCopyCompletionDurationMinutes=60,
    )["ImageId"])
    ids = snapshot_ids(copy)
    assert len(ids) == 2
    for snapshot in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]:
        assert (snapshot["State"], snapshot["CompletionDurationMinutes"], snapshot["TransferType"]) == ("pending", 60, "time-based")
        assert "CompletionTime" not in snapshot
    advance(31)
    assert image_of(ec2, copy["ImageId"])["State"] == "available"
    for snapshot in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]:
        assert (snapshot["State"], snapshot["CompletionDurationMinutes"]) == ("completed", 60)
        took = snapshot["CompletionTime"] - snapshot["StartTime"]
        assert timedelta(seconds=29) <= took <= timedelta(minutes=60)


def test_standard_copies_and_other_snapshots_show_no_completion_duration(ec2, durations, advance):
    durations({"snapshot": 30})
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ)
    pending_id = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    assert "CompletionTime" not in snapshot_of(ec2, pending_id)
    advance(31)
    created = snapshot_of(ec2, pending_id)
    assert "CompletionTime" in created and "TransferType" not in created and "CompletionDurationMinutes" not in created

    durations()
    source = registered_image(ec2, "ec2r-src", pending_id)
    copy = image_of(ec2, ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-standard")["ImageId"])
    snapshot = snapshot_of(ec2, snapshot_ids(copy)[0])
    assert snapshot["TransferType"] == "standard" and "CompletionDurationMinutes" not in snapshot
    assert snapshot_of(ec2, ec2.copy_snapshot(SourceSnapshotId=pending_id, SourceRegion=REGION)["SnapshotId"])["TransferType"] == "standard"


@pytest.mark.parametrize("minutes", [0, 10, 20, 2895, 3000, -15])
def test_time_based_copy_refuses_durations_outside_the_documented_range(ec2, instant, minutes):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    code = code_of(ec2.copy_image, SourceImageId=source, SourceRegion=REGION, Name="ec2r-bad", SnapshotCopyCompletionDurationMinutes=minutes)
    assert code == "InvalidParameterValue"
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 1


@pytest.mark.parametrize("minutes", [15, 2880])
def test_time_based_copy_accepts_the_range_limits(ec2, instant, minutes):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    copy = image_of(ec2, ec2.copy_image(
        SourceImageId=source, SourceRegion=REGION, Name="ec2r-ok", SnapshotCopyCompletionDurationMinutes=minutes,
    )["ImageId"])
    assert snapshot_of(ec2, snapshot_ids(copy)[0])["CompletionDurationMinutes"] == minutes


def test_completion_duration_is_part_of_the_client_token_fingerprint(ec2, instant):
    source = registered_image(ec2, "ec2r-src", completed_snapshot(ec2))
    args = {"SourceImageId": source, "SourceRegion": REGION, "Name": "ec2r-copy", "ClientToken": "timed-1",
            "SnapshotCopyCompletionDurationMinutes": 45}
    first = ec2.copy_image(**args)["ImageId"]
    assert ec2.copy_image(**args)["ImageId"] == first
    assert code_of(ec2.copy_image, **{**args, "SnapshotCopyCompletionDurationMinutes": 60}) == "IdempotentParameterMismatch"
    without = {k: v for k, v in args.items() if k != "SnapshotCopyCompletionDurationMinutes"}
    assert code_of(ec2.copy_image, **without) == "IdempotentParameterMismatch"


# --- 3. a pending copy -----------------------------------------------------------------------


def test_a_pending_copy_lists_its_snapshots_whose_progress_rises(ec2, durations, advance):
    durations({"copy-image": 100})
    source = two_volume_image(ec2, "ec2r-src")
    copy_id = ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-copy")["ImageId"]
    copy = image_of(ec2, copy_id)
    assert copy["State"] == "pending"
    ids = snapshot_ids(copy)
    assert len(ids) == 2 and not set(ids) & set(snapshot_ids(image_of(ec2, source)))
    seen = []
    for _ in range(3):
        states = ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
        assert {s["State"] for s in states} == {"pending"}
        seen.append(int(states[0]["Progress"].rstrip("%")))
        assert image_of(ec2, copy_id)["State"] == "pending"
        advance(33)
    assert seen[0] < seen[1] < seen[2] < 100
    advance(2)
    assert image_of(ec2, copy_id)["State"] == "available"
    assert {(s["State"], s["Progress"]) for s in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]} == {("completed", "100%")}


def test_a_failed_copy_ends_failed_with_every_snapshot_in_error(emu, ec2, durations, advance):
    durations({"copy-image": 60})
    source = two_volume_image(ec2, "ec2r-src")
    emu.control("POST", "image-copy-failures", {"count": 1})
    copy_id = ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name="ec2r-doomed")["ImageId"]
    ids = snapshot_ids(image_of(ec2, copy_id))
    assert {s["State"] for s in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]} == {"pending"}
    assert "StateReason" not in image_of(ec2, copy_id)
    advance(61)
    failed = image_of(ec2, copy_id)
    assert failed["State"] == "failed" and failed["StateReason"]["Code"] == "Server.InternalError"
    snapshots = ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
    assert {s["State"] for s in snapshots} == {"error"}
    assert all("CompletionTime" not in s for s in snapshots)


# --- 4. snapshot create volume permissions ----------------------------------------------------


def test_create_volume_permissions_round_trip_in_both_request_forms(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    assert permissions(ec2, snapshot_id) == []
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission",
        CreateVolumePermission={"Add": [{"UserId": OTHER_ACCOUNT}, {"Group": "all"}]},
    )
    assert permissions(ec2, snapshot_id) == [{"Group": "all"}, {"UserId": OTHER_ACCOUNT}]
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=["444455556666"],
    )
    assert permissions(ec2, snapshot_id) == [{"Group": "all"}, {"UserId": OTHER_ACCOUNT}, {"UserId": "444455556666"}]
    restorable = ec2.describe_snapshots(RestorableByUserIds=["444455556666"], OwnerIds=["self"])["Snapshots"]
    assert [s["SnapshotId"] for s in restorable] == [snapshot_id]

    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission",
        CreateVolumePermission={"Remove": [{"Group": "all"}, {"UserId": OTHER_ACCOUNT}]},
    )
    assert permissions(ec2, snapshot_id) == [{"UserId": "444455556666"}]
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="remove", UserIds=["444455556666"],
    )
    assert permissions(ec2, snapshot_id) == []


def test_describe_snapshot_attribute_answers_the_attribute_asked_for(ec2, instant):
    snapshot_id = completed_snapshot(ec2)
    ec2.modify_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=[OTHER_ACCOUNT])
    codes = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="productCodes")
    assert codes.get("ProductCodes", []) == [] and "CreateVolumePermissions" not in codes
    with pytest.raises(ClientError) as info:
        ec2.describe_snapshot_attribute(SnapshotId="snap-0123456789abcdef0", Attribute="createVolumePermission")
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidSnapshot.NotFound", "The snapshot 'snap-0123456789abcdef0' does not exist.")
    assert code_of(
        ec2.modify_snapshot_attribute, SnapshotId=snapshot_id, Attribute="createVolumePermission",
        CreateVolumePermission={"Add": [{"Group": "friends"}]},
    ) == "InvalidAMIAttributeItemValue"


def test_an_encrypted_snapshot_cannot_be_made_public(ec2, kms, instant):
    key = new_key(kms)
    snapshot_id = completed_snapshot(ec2, Encrypted=True, KmsKeyId=key["Arn"])
    for form in ({"CreateVolumePermission": {"Add": [{"Group": "all"}]}}, {"OperationType": "add", "GroupNames": ["all"]}):
        assert code_of(ec2.modify_snapshot_attribute, SnapshotId=snapshot_id, Attribute="createVolumePermission", **form) == "OperationNotPermitted"
    assert permissions(ec2, snapshot_id) == []
    # Shared with an account it may be: the key is a customer managed key.
    ec2.modify_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=[OTHER_ACCOUNT])
    assert permissions(ec2, snapshot_id) == [{"UserId": OTHER_ACCOUNT}]


def test_a_snapshot_under_the_aws_managed_key_cannot_be_shared(ec2, instant):
    snapshot_id = completed_snapshot(ec2, Encrypted=True)  # the default key: alias/aws/ebs
    assert snapshot_of(ec2, snapshot_id)["KmsKeyId"] == ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
    with pytest.raises(ClientError) as info:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id, Attribute="createVolumePermission",
            CreateVolumePermission={"Add": [{"UserId": OTHER_ACCOUNT}]},
        )
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    assert permissions(ec2, snapshot_id) == []


# --- 5. registration attributes ---------------------------------------------------------------


def test_boot_attributes_round_trip_and_are_copied(ec2, instant):
    uefi = "QU1aTlZBUlMAAAAA"  # base64 of an (abbreviated) UEFI variable store
    image_id = registered_image(
        ec2, "ec2r-uefi", completed_snapshot(ec2), BootMode="uefi", ImdsSupport="v2.0", TpmSupport="v2.0", UefiData=uefi,
    )
    image = image_of(ec2, image_id)
    assert (image["BootMode"], image["ImdsSupport"], image["TpmSupport"]) == ("uefi", "v2.0", "v2.0")
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="uefiData")["UefiData"] == {"Value": uefi}
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="bootMode")["BootMode"] == {"Value": "uefi"}

    copy_id = ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="ec2r-uefi-copy")["ImageId"]
    copy = image_of(ec2, copy_id)
    assert (copy["BootMode"], copy["ImdsSupport"], copy["TpmSupport"]) == ("uefi", "v2.0", "v2.0")
    assert ec2.describe_image_attribute(ImageId=copy_id, Attribute="uefiData")["UefiData"] == {"Value": uefi}


@pytest.mark.parametrize("boot_mode", ["uefi-preferred", "legacy-bios", None])
def test_tpm_support_needs_uefi_boot_mode(ec2, instant, boot_mode):
    extra = {"BootMode": boot_mode} if boot_mode else {}
    code = code_of(registered_image, ec2, "ec2r-tpm", completed_snapshot(ec2), TpmSupport="v2.0", **extra)
    assert code == "InvalidParameterCombination"
    assert ec2.describe_images(Owners=["self"])["Images"] == []


@pytest.mark.parametrize("param, value", [("TpmSupport", "v1.2"), ("ImdsSupport", "v1.0")])
def test_tpm_and_imds_support_take_only_v2(ec2, instant, param, value):
    extra = {"BootMode": "uefi", param: value}
    assert code_of(registered_image, ec2, "ec2r-bad", completed_snapshot(ec2), **extra) == "InvalidParameterValue"


def test_uefi_data_has_a_maximum_length(ec2, instant):
    code = code_of(registered_image, ec2, "ec2r-big", completed_snapshot(ec2), BootMode="uefi", UefiData="A" * 64004)
    assert code == "InvalidParameterValue"
