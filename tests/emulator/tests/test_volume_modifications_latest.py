"""Correction 8: DescribeVolumesModifications answers each volume's latest modification, and
its filters apply to that one, with or without VolumeIds (the controller's sweep lists the
Region's in-flight and failed modifications by `modification-state`, without ids)."""


def modify_twice(emu, ec2):
    """A volume whose first modification completed and whose second is in flight."""
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="gp3")["VolumeId"]
    emu.transitions(volume_modify=0, volume_optimize=0)
    ec2.modify_volume(VolumeId=vid, Size=20)
    emu.advance(1)
    emu.transitions(volume_modify=100, volume_optimize=100)
    ec2.modify_volume(VolumeId=vid, Size=30)
    return vid


def states(ec2, **kw):
    found = ec2.describe_volumes_modifications(**kw)["VolumesModifications"]
    return [(m["VolumeId"], m["ModificationState"], m["TargetSize"]) for m in found]


def test_only_the_latest_modification_of_a_volume_is_answered(emu, ec2):
    vid = modify_twice(emu, ec2)
    assert states(ec2, VolumeIds=[vid]) == [(vid, "modifying", 30)]
    assert states(ec2) == [(vid, "modifying", 30)]


def test_a_state_filter_without_ids_matches_latest_modifications_only(emu, ec2):
    vid = modify_twice(emu, ec2)
    untouched = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    in_flight = [{"Name": "modification-state", "Values": ["modifying", "optimizing", "failed"]}]
    assert states(ec2, Filters=in_flight) == [(vid, "modifying", 30)]
    # The completed first modification was replaced by the second: not listed.
    assert states(ec2, Filters=[{"Name": "modification-state", "Values": ["completed"]}]) == []
    emu.advance(250)
    assert states(ec2, Filters=in_flight) == []
    assert states(ec2, Filters=[{"Name": "modification-state", "Values": ["completed"]}]) == [
        (vid, "completed", 30)
    ]
    assert untouched not in [v for v, _, _ in states(ec2)]


def test_listed_modifications_page_at_most_500(emu, ec2):
    emu.transitions(volume_modify=100, volume_optimize=100)
    ids = [ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"] for _ in range(7)]
    for vid in ids:
        ec2.modify_volume(VolumeId=vid, Size=20)
    seen, token = [], None
    while True:
        resp = ec2.describe_volumes_modifications(
            Filters=[{"Name": "modification-state", "Values": ["modifying"]}], MaxResults=3,
            **({"NextToken": token} if token else {}))
        seen.append(len(resp["VolumesModifications"]))
        token = resp.get("NextToken")
        if not token:
            break
    assert seen == [3, 3, 1]
