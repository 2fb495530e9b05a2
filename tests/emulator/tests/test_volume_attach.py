"""Correction 4: Multi-Attach and attachment errors."""

import botocore.exceptions
import pytest

from conftest import error_code


def fails(code, fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert error_code(e) == code, e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def instances(ec2, n, zone="us-east-1a"):
    r = ec2.run_instances(ImageId="ami-12345678", MinCount=n, MaxCount=n, Placement={"AvailabilityZone": zone})
    return [i["InstanceId"] for i in r["Instances"]]


def test_multi_attach_up_to_16_instances(ec2):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, VolumeType="io2", Iops=1000,
                            MultiAttachEnabled=True)["VolumeId"]
    ids = instances(ec2, 17)
    for iid in ids[:16]:
        ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    fails("AttachmentLimitExceeded", ec2.attach_volume, VolumeId=vid, InstanceId=ids[16], Device="/dev/sdf")
    v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
    assert v["MultiAttachEnabled"] is True
    assert sorted(a["InstanceId"] for a in v["Attachments"]) == sorted(ids[:16])
    found = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [ids[3]]}])["Volumes"]
    # that instance's own root volume matches too
    assert vid in [x["VolumeId"] for x in found] and len(found) == 2
    ec2.detach_volume(VolumeId=vid, InstanceId=ids[0])
    left = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"]
    assert ids[0] not in [a["InstanceId"] for a in left] and len(left) == 15


def test_second_attach_without_multi_attach_is_volume_in_use(ec2):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    a, b = instances(ec2, 2)
    ec2.attach_volume(VolumeId=vid, InstanceId=a, Device="/dev/sdf")
    fails("VolumeInUse", ec2.attach_volume, VolumeId=vid, InstanceId=b, Device="/dev/sdf")
    assert [x["InstanceId"] for x in ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"]] == [a]


def test_attach_errors(ec2, instance):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    other_zone = instances(ec2, 1, zone="us-east-1b")[0]
    fails("InvalidVolume.ZoneMismatch", ec2.attach_volume, VolumeId=vid, InstanceId=other_zone, Device="/dev/sdf")
    fails("InvalidInstanceID.NotFound", ec2.attach_volume, VolumeId=vid, InstanceId="i-0123456789abcdef0",
          Device="/dev/sdf")
    first = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    ec2.attach_volume(VolumeId=first, InstanceId=instance, Device="/dev/sdf")
    msg = fails("InvalidParameterValue", ec2.attach_volume, VolumeId=vid, InstanceId=instance, Device="/dev/sdf")
    assert msg == "Attachment point /dev/sdf is already in use"


def test_attach_while_creating_is_incorrect_state(emu, ec2, instance):
    emu.transitions(volume_create=100000)
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    fails("IncorrectState", ec2.attach_volume, VolumeId=vid, InstanceId=instance, Device="/dev/sdf")


def test_detach_unattached_is_incorrect_state(ec2):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    fails("IncorrectState", ec2.detach_volume, VolumeId=vid)


def test_delete_attached_is_volume_in_use(ec2, instance):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdf")
    fails("VolumeInUse", ec2.delete_volume, VolumeId=vid)


def test_terminating_an_instance_still_releases_its_volumes(ec2, instance):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdf")
    ec2.terminate_instances(InstanceIds=[instance])
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"] == []


def test_multi_attach_changes_in_place_only_on_io2_and_only_when_allowed(emu, ec2):
    emu.transitions(volume_modify=0, volume_optimize=0, volume_attach=0, volume_detach=0)
    a, b = instances(ec2, 2)
    io1 = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, VolumeType="io1", Iops=1000)["VolumeId"]
    assert "io2" in fails("InvalidParameterValue", ec2.modify_volume, VolumeId=io1, MultiAttachEnabled=True)

    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, VolumeType="io2", Iops=1000)["VolumeId"]
    ec2.attach_volume(VolumeId=vid, InstanceId=a, Device="/dev/sdf")
    fails("InvalidParameterValue", ec2.modify_volume, VolumeId=vid, MultiAttachEnabled=True)
    ec2.detach_volume(VolumeId=vid, InstanceId=a)
    ec2.modify_volume(VolumeId=vid, MultiAttachEnabled=True)
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["MultiAttachEnabled"] is True

    ec2.attach_volume(VolumeId=vid, InstanceId=a, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=vid, InstanceId=b, Device="/dev/sdf")
    fails("InvalidParameterValue", ec2.modify_volume, VolumeId=vid, MultiAttachEnabled=False)
    ec2.detach_volume(VolumeId=vid, InstanceId=b)
    ec2.modify_volume(VolumeId=vid, MultiAttachEnabled=False)
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["MultiAttachEnabled"] is False
