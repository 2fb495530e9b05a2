"""Calls are counted by the identity that signed them, and STS sessions are remembered with
the role, session name and session tags they were asked for."""

import boto3
from botocore.config import Config


def test_calls_are_counted_by_the_access_key_of_an_assumed_role_session(emu):
    sts = emu.client("sts")
    session = sts.assume_role(
        RoleArn="arn:aws:iam::123456789012:role/team-a",
        RoleSessionName="ec2r-team-a",
        Tags=[{"Key": "kubernetes-namespace", "Value": "team-a"}],
    )["Credentials"]
    as_team_a = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=emu.url,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
        config=Config(retries={"max_attempts": 1}),
    )
    as_team_a.describe_volumes()
    as_team_a.describe_volumes()
    emu.client("ec2").describe_volumes()

    principals = emu.control("GET", "principals")["principals"]
    team_a = principals[session["AccessKeyId"]]
    assert team_a["calls"] == {"DescribeVolumes": 2}
    assert team_a["session"] == {
        "role_arn": "arn:aws:iam::123456789012:role/team-a",
        "session_name": "ec2r-team-a",
        "tags": {"kubernetes-namespace": "team-a"},
    }
    others = [p for key, p in principals.items() if key != session["AccessKeyId"]]
    assert sum(p["calls"].get("DescribeVolumes", 0) for p in others) == 1
    assert all(p["session"] is None for p in others)


def test_a_reset_forgets_sessions_and_counts(emu):
    emu.client("ec2").describe_volumes()
    emu.control("POST", "reset")
    assert emu.control("GET", "principals") == {"principals": {}}
