"""IAM evaluation (ec2emu/iam.py): requests signed by an IAM user's key are held to its
policies, here the controller's own generated policy (deploy/iam-policy.json); other keys are
not evaluated."""

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ec2emu.iam import condition_holds, decide

POLICY = json.loads((Path(__file__).resolve().parents[3] / "deploy" / "iam-policy.json").read_text())
CLUSTER = "ec2.reconciler.dev/cluster"
GRANT = "ec2.reconciler.dev/grant-namespaces"
OURS = [{"ResourceType": "volume", "Tags": [{"Key": CLUSTER, "Value": "c1"}]}]


def as_user(emu, name: str, policy: dict, service: str = "ec2"):
    user = emu.control("POST", "iam-users", {"name": name, "policy": policy})
    return boto3.client(
        service, endpoint_url=emu.url, region_name="us-east-1",
        aws_access_key_id=user["access_key_id"], aws_secret_access_key=user["secret_access_key"],
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def controller(emu):
    return as_user(emu, "controller", POLICY)


def refused(call) -> ClientError:
    with pytest.raises(ClientError) as excinfo:
        call()
    return excinfo.value


def test_null_and_string_conditions_follow_the_iam_operators():
    ctx = {"aws:RequestTag/team": "a", "aws:TagKeys": ["team", "env"]}
    assert condition_holds("Null", "aws:RequestTag/team", "false", ctx)
    assert not condition_holds("Null", "aws:RequestTag/other", "false", ctx)
    assert condition_holds("Null", "aws:RequestTag/other", "true", ctx)
    assert condition_holds("StringLike", "aws:requesttag/TEAM", "?", ctx)
    assert not condition_holds("StringEquals", "ec2:CreateAction", ["CreateVolume"], ctx)
    assert condition_holds("StringNotEquals", "ec2:CreateAction", ["CreateVolume"], ctx)
    assert condition_holds("StringEqualsIfExists", "ec2:CreateAction", ["CreateVolume"], ctx)
    assert condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["env"], ctx)
    assert not condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["env"], ctx)
    assert condition_holds("Bool", "kms:GrantIsForAWSResource", "true", {"kms:GrantIsForAWSResource": "true"})
    assert not condition_holds("NumericLessThan", "aws:MultiFactorAuthAge", "3600", {"aws:MultiFactorAuthAge": "1"})


def test_the_shipped_policy_serves_every_partition():
    """One file for every account: ARNs of the aws, aws-cn and aws-us-gov partitions, and EBS's
    KMS endpoint in a China Region (`.amazonaws.com.cn`)."""
    owned = {"ec2:ResourceTag/ec2.reconciler.dev/cluster": "prod"}
    for partition, region in [("aws", "us-east-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")]:
        volume = f"arn:{partition}:ec2:{region}:123456789012:volume/vol-1"
        assert decide([POLICY], "ec2:DeleteVolume", volume, owned) == "allow", partition
        assert decide([POLICY], "ec2:DeleteVolume", volume, {}) == "implicit", partition
        key = f"arn:{partition}:kms:{region}:123456789012:key/k-1"
        suffix = ".cn" if partition == "aws-cn" else ""
        via_ebs = {"kms:ViaService": f"ec2.{region}.amazonaws.com{suffix}"}
        assert decide([POLICY], "kms:Decrypt", key, via_ebs) == "allow", partition
        assert decide([POLICY], "kms:Decrypt", key, {"kms:ViaService": f"s3.{region}.amazonaws.com{suffix}"}) == "implicit"


def test_an_explicit_deny_wins_and_nothing_allowed_is_an_implicit_deny():
    allow = {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
    deny = {"Statement": [{"Effect": "Deny", "Action": "ec2:DeleteVolume", "Resource": "arn:aws:ec2:*:*:volume/*"}]}
    arn = "arn:aws:ec2:us-east-1:123456789012:volume/vol-1"
    assert decide([allow], "ec2:DeleteVolume", arn, {}) == "allow"
    assert decide([allow, deny], "ec2:DeleteVolume", arn, {}) == "explicit"
    assert decide([deny], "ec2:CreateVolume", arn, {}) == "implicit"


def test_a_create_needs_the_cluster_tag_in_the_request(emu, controller):
    e = refused(lambda: controller.create_volume(AvailabilityZone="us-east-1a", Size=1))
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error_code_of(e) == "UnauthorizedOperation"
    assert "ec2:CreateVolume on resource: arn:aws:ec2:us-east-1:123456789012:volume/*" in e.response["Error"]["Message"]
    volume = controller.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=OURS)
    assert volume["VolumeId"].startswith("vol-")
    assert len(emu.client().describe_volumes()["Volumes"]) == 1
    assert emu.control("GET", "iam-refusals") == {"refusals": {"ec2:CreateVolume": 1}}
    emu.control("POST", "reset")
    assert emu.control("GET", "iam-refusals") == {"refusals": {}}


def test_tags_at_creation_need_create_tags_for_that_create_action(emu):
    policy = json.loads(json.dumps(POLICY))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "TagOnCreateVolumes"]
    client = as_user(emu, "no-tag-on-create", policy)
    e = refused(lambda: client.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=OURS))
    assert "perform: ec2:CreateTags on resource" in e.response["Error"]["Message"]
    assert emu.client().describe_volumes()["Volumes"] == []


def test_modify_and_delete_only_on_volumes_that_carry_the_cluster_tag(emu, controller, ec2):
    theirs = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    ours = controller.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=OURS)["VolumeId"]
    assert error_code_of(refused(lambda: controller.delete_volume(VolumeId=theirs))) == "UnauthorizedOperation"
    assert error_code_of(refused(lambda: controller.modify_volume(VolumeId=theirs, Size=2))) == "UnauthorizedOperation"
    e = refused(lambda: controller.create_tags(Resources=[theirs], Tags=[{"Key": CLUSTER, "Value": "c1"}]))
    assert error_code_of(e) == "UnauthorizedOperation"
    controller.modify_volume(VolumeId=ours, Size=2)
    controller.delete_volume(VolumeId=ours)
    assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]] == [theirs]


def test_a_granted_instance_may_be_stopped_and_another_may_not(emu, controller, ec2):
    granted, other = [
        i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2)["Instances"]
    ]
    ec2.create_tags(Resources=[granted], Tags=[{"Key": GRANT, "Value": "team-a"}])
    controller.stop_instances(InstanceIds=[granted])
    assert error_code_of(refused(lambda: controller.stop_instances(InstanceIds=[other]))) == "UnauthorizedOperation"
    e = refused(lambda: controller.stop_instances(InstanceIds=[granted, other]))
    assert f"instance/{other}" in e.response["Error"]["Message"]


def test_kms_keys_are_read_directly_and_used_for_nothing_else(emu):
    kms_admin = emu.client("kms")
    key_id = kms_admin.create_key()["KeyMetadata"]["KeyId"]
    kms_admin.create_alias(AliasName="alias/data", TargetKeyId=key_id)
    kms = as_user(emu, "controller", POLICY, service="kms")
    assert kms.describe_key(KeyId="alias/data")["KeyMetadata"]["KeyId"] == key_id
    e = refused(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert error_code_of(e) == "AccessDeniedException"
    assert "kms:Encrypt" in e.response["Error"]["Message"]


def test_a_policy_replaced_later_applies_to_the_next_request(emu, controller):
    create = {"AvailabilityZone": "us-east-1a", "Size": 1, "TagSpecifications": OURS}
    emu.control("PUT", "iam-users", {"name": "controller", "policy": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}})
    assert error_code_of(refused(lambda: controller.create_volume(**create))) == "UnauthorizedOperation"
    emu.control("PUT", "iam-users", {"name": "controller", "policy": POLICY})
    assert controller.create_volume(**create)["VolumeId"].startswith("vol-")


def encrypted_volume(emu, policy: dict, name: str) -> list:
    """Creates an encrypted volume under `policy`; the volumes seen afterwards."""
    key_id = emu.client("kms").create_key()["KeyMetadata"]["KeyId"]
    client = as_user(emu, name, policy)
    volume_id = client.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True, KmsKeyId=key_id,
                                     TagSpecifications=OURS)["VolumeId"]
    return [v["VolumeId"] for v in emu.client().describe_volumes()["Volumes"] if v["VolumeId"] == volume_id]


def test_ebs_uses_a_key_for_the_caller_only_through_ebs(emu):
    assert len(encrypted_volume(emu, POLICY, "allowed")) == 1
    assert emu.control("GET", "iam-refusals") == {"refusals": {}}

    without = json.loads(json.dumps(POLICY))
    without["Statement"] = [s for s in without["Statement"] if s["Sid"] != "UseThroughEbsKmsKeys"]
    assert encrypted_volume(emu, without, "no-kms") == []  # accepted, then vanished
    assert emu.control("GET", "iam-refusals") == {"refusals": {"kms:GenerateDataKeyWithoutPlaintext": 1}}

    other_service = json.loads(json.dumps(POLICY))
    for s in other_service["Statement"]:
        if s["Sid"] == "UseThroughEbsKmsKeys":
            s["Condition"]["StringLike"]["kms:ViaService"] = "rds.*.amazonaws.com"
    assert encrypted_volume(emu, other_service, "via-rds") == []


def test_reads_are_allowed_and_other_credentials_are_not_evaluated(emu, controller, ec2):
    controller.describe_volumes()
    controller.describe_images(Owners=["self"])
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
    assert len(ec2.describe_volumes()["Volumes"]) == 1


def error_code_of(error: ClientError) -> str:
    return error.response["Error"]["Code"]
