"""The `error` fault kind (faults.py): a chosen terminal AWS error for the next `count` requests
of an action, in the service's own error shape, with nothing applied."""

import urllib.error

import botocore.exceptions
import pytest

from conftest import error_code


def fails(code, fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert error_code(e) == code, e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def test_error_fault_returns_a_terminal_aws_error_without_applying_the_request(emu, ec2, instance):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    emu.control("POST", "faults", {"action": "AttachVolume", "fault": "error", "code": "IncorrectState",
                                   "status": 400, "message": "vol is busy", "count": 2})
    for _ in range(2):
        assert fails("IncorrectState", ec2.attach_volume, VolumeId=vid, InstanceId=instance,
                     Device="/dev/sdf") == "vol is busy"
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"] == []
    ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdf")
    assert emu.control("GET", "calls")["faulted"] == {"AttachVolume": 2}

    emu.fault(action="kms:DescribeKey", fault="error", code="NotFoundException", message="gone")
    kms = emu.client("kms")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.describe_key(KeyId="alias/x")
    assert e.value.response["Error"] == {"Code": "NotFoundException", "Message": "gone"}
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.fault(action="AttachVolume", fault="error")  # no code
    assert e.value.code == 400
