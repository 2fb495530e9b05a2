"""Corrections 5 and 6: pagination, filters, tags."""

import botocore.exceptions
import pytest

from conftest import error_code


def fails(code, fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert error_code(e) == code, e.value.response["Error"]


def make(ec2, n, **kw):
    return [ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, **kw)["VolumeId"] for _ in range(n)]


def pages(fn, key, **kw):
    out, token = [], None
    while True:
        resp = fn(**kw, **({"NextToken": token} if token else {}))
        out.append([x["VolumeId"] for x in resp[key]])
        token = resp.get("NextToken")
        if not token:
            return out


def test_describe_volumes_pages(ec2):
    ids = make(ec2, 12)
    got = pages(ec2.describe_volumes, "Volumes", MaxResults=5)
    assert [len(p) for p in got] == [5, 5, 2]
    assert sorted(sum(got, [])) == sorted(ids)
    assert "NextToken" not in ec2.describe_volumes(MaxResults=500)


def test_pages_are_stable_when_volumes_are_deleted_between_pages(ec2):
    make(ec2, 10)
    first = ec2.describe_volumes(MaxResults=5)
    ec2.delete_volume(VolumeId=first["Volumes"][0]["VolumeId"])
    second = ec2.describe_volumes(MaxResults=5, NextToken=first["NextToken"])
    assert len(second["Volumes"]) == 5 and "NextToken" not in second
    assert not {v["VolumeId"] for v in first["Volumes"]} & {v["VolumeId"] for v in second["Volumes"]}


def test_describe_volumes_parameter_errors(ec2):
    [vid] = make(ec2, 1)
    fails("InvalidParameterCombination", ec2.describe_volumes, VolumeIds=[vid], MaxResults=5)
    fails("InvalidParameterValue", ec2.describe_volumes, MaxResults=4)
    fails("InvalidParameterValue", ec2.describe_volumes, MaxResults=501)
    fails("InvalidPaginationToken", ec2.describe_volumes, MaxResults=5, NextToken="garbage")


def test_filters_with_pagination(ec2):
    tagged = make(ec2, 7, TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "owner", "Value": "me"}]}])
    make(ec2, 4)
    multi = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="io1", Iops=100,
                              MultiAttachEnabled=True)["VolumeId"]
    by_tag = pages(ec2.describe_volumes, "Volumes", MaxResults=5,
                   Filters=[{"Name": "tag:owner", "Values": ["me"]}])
    assert sorted(sum(by_tag, [])) == sorted(tagged) and [len(p) for p in by_tag] == [5, 2]
    by_key = pages(ec2.describe_volumes, "Volumes", MaxResults=5, Filters=[{"Name": "tag-key", "Values": ["owner"]}])
    assert sorted(sum(by_key, [])) == sorted(tagged)
    found = ec2.describe_volumes(Filters=[{"Name": "multi-attach-enabled", "Values": ["true"]}])["Volumes"]
    assert [v["VolumeId"] for v in found] == [multi]
    assert len(ec2.describe_volumes(Filters=[{"Name": "multi-attach-enabled", "Values": ["false"]}])["Volumes"]) == 11


def test_describe_volumes_modifications_pages(ec2):
    ids = make(ec2, 7)
    for vid in ids:
        ec2.modify_volume(VolumeId=vid, Size=20)
    got = pages(ec2.describe_volumes_modifications, "VolumesModifications", MaxResults=3)
    assert [len(p) for p in got] == [3, 3, 1] and sorted(sum(got, [])) == sorted(ids)


@pytest.mark.parametrize("call", ["create_tags", "delete_tags"])
def test_aws_prefixed_tag_keys_are_rejected(ec2, call):
    [vid] = make(ec2, 1)
    fails("InvalidParameterValue", getattr(ec2, call), Resources=[vid], Tags=[{"Key": "aws:owner", "Value": "x"}])


def test_aws_prefix_in_tag_specifications_creates_nothing(ec2):
    fails("InvalidParameterValue", ec2.create_volume, AvailabilityZone="us-east-1a", Size=10,
          TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "AWS:x", "Value": "y"}]}])
    assert ec2.describe_volumes()["Volumes"] == []


def test_tag_limit(ec2):
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    fails("TagLimitExceeded", ec2.create_volume, AvailabilityZone="us-east-1a", Size=10,
          TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
    assert ec2.describe_volumes()["Volumes"] == []
    [vid] = make(ec2, 1)
    ec2.create_tags(Resources=[vid], Tags=tags[:50])
    fails("TagLimitExceeded", ec2.create_tags, Resources=[vid], Tags=tags[50:])
