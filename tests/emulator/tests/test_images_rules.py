"""AMI corrections beyond test_images.py: RegisterImage validation, sharing rules and image
block public access, images of other accounts, deprecation, deregistration protection,
CreationDate on the emulator clock, CopyImage encryption defaults, CreateImage mappings, latched
states, key-ordered pagination, `aws:` tags, 4xx instead of 500, injected copy failures.
Each test would fail against plain moto 5.2.5 (or against the layer before these corrections)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

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
