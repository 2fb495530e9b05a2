"""Seeds the AWS emulator with what the AmiImage examples need, for `hack/demo.sh`.

Run with the emulator's python (`$(hack/emulator-venv.sh) hack/demo-seed.py`) after sourcing
the test bed's aws.env (AWS_ENDPOINT_URL, AWS_REGION, the dummy credentials, EC2EMU_URL). It
makes, in AWS_REGION:

  * an EBS-backed instance, launched from an image registered here from a snapshot of our own
    (examples/amiimage-from-instance.yaml images it);
  * a completed snapshot (examples/amiimage-from-snapshots.yaml registers an image from it);

both tagged `ec2.reconciler.dev/grant-namespaces=<namespace>`: made outside the controller,
they are nobody's, and this is how their owner grants the namespace the right to use them.
And, in eu-west-1, two public images owned by `amazon` named like Amazon Linux 2023 releases,
an older and a newer one (examples/amiimage-copy.yaml copies the newest; a public image is
anyone's to copy, so it needs no grant).

Idempotent: everything is looked up first (by the `ec2r-demo-seed` tag, the public images by
name), so a second run makes nothing new. Progress goes to stderr; stdout gets `NAME=value`
lines for the shell:

  INSTANCE_ID=i-...  SNAPSHOT_ID=snap-...  SOURCE_IMAGE_ID=ami-... (the newest base image)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3

SEED_TAG = "ec2r-demo-seed"
GRANT_TAG = "ec2.reconciler.dev/grant-namespaces"
BASE_REGION = "eu-west-1"
# Public base images of `amazon`, oldest first: (name, creation date).
BASE_IMAGES = [
    ("al2023-ami-2026.0.20261001.0-kernel-6.1-x86_64", "2026-10-01T08:00:00.000Z"),
    ("al2023-ami-2026.0.20261101.0-kernel-6.1-x86_64", "2026-11-01T08:00:00.000Z"),
]
TIMEOUT_SECONDS = 60


def log(message: str) -> None:
    print(f"demo-seed: {message}", file=sys.stderr, flush=True)


def tags(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs]


def wait_for(what: str, check) -> object:
    """Polls `check()` until it returns something truthy."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"demo-seed: gave up waiting for {what}")
        time.sleep(0.5)


def seed_filter(role: str) -> list[dict]:
    return [{"Name": f"tag:{SEED_TAG}", "Values": [role]}]


def ensure_granted(ec2, resource_id: str, current: list[dict], namespace: str) -> None:
    if {t["Key"]: t["Value"] for t in current or []}.get(GRANT_TAG) != namespace:
        ec2.create_tags(Resources=[resource_id], Tags=tags((GRANT_TAG, namespace)))


def snapshot(ec2, zone: str, namespace: str) -> str:
    """A completed snapshot of an 8 GiB volume, granted to `namespace`."""
    found = [
        s for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=seed_filter("snapshot"))["Snapshots"]
        if s["State"] != "error"
    ]
    if found:
        snap = found[0]
        log(f"snapshot {snap['SnapshotId']} already there")
        ensure_granted(ec2, snap["SnapshotId"], snap.get("Tags"), namespace)
    else:
        volume_id = source_volume(ec2, zone)
        snap = ec2.create_snapshot(
            VolumeId=volume_id,
            Description="ec2-reconciler demo: a root file system to register an image from",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags(
                (SEED_TAG, "snapshot"), ("Name", "demo-root"), (GRANT_TAG, namespace),
            )}],
        )
        log(f"snapshot {snap['SnapshotId']} of {volume_id} requested")
    snapshot_id = snap["SnapshotId"]

    def completed():
        s = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        if s["State"] == "error":
            raise SystemExit(f"demo-seed: snapshot {snapshot_id} failed")
        return s["State"] == "completed"

    wait_for(f"snapshot {snapshot_id} to complete", completed)
    # The volume served only to take the snapshot.
    for volume in ec2.describe_volumes(Filters=seed_filter("snapshot-source"))["Volumes"]:
        ec2.delete_volume(VolumeId=volume["VolumeId"])
        log(f"volume {volume['VolumeId']} deleted (the snapshot is taken)")
    return snapshot_id


def source_volume(ec2, zone: str) -> str:
    found = ec2.describe_volumes(Filters=seed_filter("snapshot-source"))["Volumes"]
    if found:
        volume_id = found[0]["VolumeId"]
    else:
        volume_id = ec2.create_volume(
            AvailabilityZone=zone, Size=8, VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags((SEED_TAG, "snapshot-source"))}],
        )["VolumeId"]
        log(f"volume {volume_id} created to snapshot")
    wait_for(f"volume {volume_id} to be available", lambda: ec2.describe_volumes(
        VolumeIds=[volume_id])["Volumes"][0]["State"] == "available")
    return volume_id


def launch_image(ec2, snapshot_id: str) -> str:
    """The image the instance is launched from (ours, registered from the snapshot)."""
    found = ec2.describe_images(Owners=["self"], Filters=seed_filter("launch-image"))["Images"]
    if found:
        return found[0]["ImageId"]
    image_id = ec2.register_image(
        Name="ec2r-demo-launch-base",
        Description="ec2-reconciler demo: what the demo instance is launched from",
        Architecture="x86_64",
        VirtualizationType="hvm",
        EnaSupport=True,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {
            "SnapshotId": snapshot_id, "VolumeType": "gp3", "DeleteOnTermination": True,
        }}],
        TagSpecifications=[{"ResourceType": "image", "Tags": tags((SEED_TAG, "launch-image"))}],
    )["ImageId"]
    log(f"image {image_id} registered to launch the instance from")
    wait_for(f"image {image_id} to be available", lambda: ec2.describe_images(
        ImageIds=[image_id])["Images"][0]["State"] == "available")
    return image_id


def instance(ec2, zone: str, snapshot_id: str, namespace: str) -> str:
    """A running EBS-backed instance, granted to `namespace`."""
    alive = ["pending", "running", "stopping", "stopped"]
    found = [
        i for r in ec2.describe_instances(Filters=seed_filter("instance") + [
            {"Name": "instance-state-name", "Values": alive},
        ])["Reservations"] for i in r["Instances"]
    ]
    if found:
        instance_id = found[0]["InstanceId"]
        log(f"instance {instance_id} already there")
        ensure_granted(ec2, instance_id, found[0].get("Tags"), namespace)
    else:
        image_id = launch_image(ec2, snapshot_id)
        instance_id = ec2.run_instances(
            ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
            Placement={"AvailabilityZone": zone},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags(
                (SEED_TAG, "instance"), ("Name", "demo-web"), (GRANT_TAG, namespace),
            )}],
        )["Instances"][0]["InstanceId"]
        log(f"instance {instance_id} launched from {image_id}")

    def state():
        return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]

    wait_for(f"instance {instance_id} to run", lambda: state() in ("running", "stopped"))
    return instance_id


def base_images(control_url: str) -> str:
    """The public `amazon` base images in BASE_REGION; returns the newest one's id."""
    ec2 = boto3.client("ec2", region_name=BASE_REGION)
    newest = None
    for name, created in BASE_IMAGES:
        found = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
        if found:
            newest = found[0]["ImageId"]
            continue
        request = urllib.request.Request(
            f"{control_url}/_emulator/images",
            data=json.dumps({
                "owner": "amazon", "region": BASE_REGION, "name": name, "public": True,
                "creation_date": created,
                "description": f"Amazon Linux 2023 AMI {name.split('-')[2]} x86_64 HVM kernel-6.1",
            }).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request) as answer:
                newest = json.load(answer)["image_id"]
        except urllib.error.HTTPError as e:
            raise SystemExit(f"demo-seed: seeding {name}: HTTP {e.code} {e.read().decode()}")
        log(f"public image {newest} of amazon in {BASE_REGION}: {name}")
    return newest


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed the AWS emulator for the demo's AmiImage examples.")
    parser.add_argument("--namespace", default="demo", help="the namespace granted the instance and snapshot")
    args = parser.parse_args()
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "EC2EMU_URL"):
        if not os.environ.get(name):
            raise SystemExit(f"demo-seed: {name} is not set (source the test bed's aws.env)")
    region = os.environ["AWS_REGION"]
    zone = f"{region}a"
    ec2 = boto3.client("ec2", region_name=region)

    snapshot_id = snapshot(ec2, zone, args.namespace)
    instance_id = instance(ec2, zone, snapshot_id, args.namespace)
    source_image_id = base_images(os.environ["EC2EMU_URL"].rstrip("/"))
    print(f"INSTANCE_ID={instance_id}")
    print(f"SNAPSHOT_ID={snapshot_id}")
    print(f"SOURCE_IMAGE_ID={source_image_id}")


if __name__ == "__main__":
    main()
