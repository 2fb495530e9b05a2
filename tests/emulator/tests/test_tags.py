"""Tag lookups through moto's per-resource table (ec2emu/fixes/tags.py).

Behaviour tests: the answers of every tag filter form are the ones moto gives (the same
expectations pass against the layer without fixes/tags.py), for volumes, snapshots, images and
instances, on tags given at creation, after CreateTags, after DeleteTags and after the resource
is deleted. Work tests: counters, never a clock; a tag-filtered Describe is served by the
table without one scan of it, and its cost grows with the resources listed, not with their square.
"""

from __future__ import annotations

import pytest

AZ = "us-east-1a"
IMAGES_AT_ONCE = {"snapshot": 0, "copy-snapshot": 0, "image": 0, "copy-image": 0, "deregister": 0}

A_TAGS = {"Name": "alpha", "team": "blue"}
B_TAGS = {"Name": "beta", "team": "green", "cost-center": "42"}


def spec(resource_type: str, tags: dict) -> list:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def tag_dict(item: dict) -> dict:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}


class Volumes:
    def create(self, ec2, tags):
        kw = {"TagSpecifications": spec("volume", tags)} if tags else {}
        return ec2.create_volume(Size=1, AvailabilityZone=AZ, **kw)["VolumeId"]

    def describe(self, ec2, filters):
        return {v["VolumeId"]: tag_dict(v) for v in ec2.describe_volumes(Filters=filters)["Volumes"]}

    def delete(self, ec2, rid):
        ec2.delete_volume(VolumeId=rid)


class Snapshots:
    def create(self, ec2, tags):
        volume = ec2.create_volume(Size=1, AvailabilityZone=AZ)["VolumeId"]
        kw = {"TagSpecifications": spec("snapshot", tags)} if tags else {}
        return ec2.create_snapshot(VolumeId=volume, **kw)["SnapshotId"]

    def describe(self, ec2, filters):
        return {s["SnapshotId"]: tag_dict(s)
                for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]}

    def delete(self, ec2, rid):
        ec2.delete_snapshot(SnapshotId=rid)


class Images:
    def __init__(self):
        self.n = 0

    def create(self, ec2, tags):
        self.n += 1
        snapshot = Snapshots().create(ec2, {})
        image = ec2.register_image(
            Name=f"tags-{self.n}", RootDeviceName="/dev/xvda", Architecture="x86_64",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
        )["ImageId"]
        if tags:  # RegisterImage's own TagSpecifications are covered in test_images*.py
            ec2.create_tags(Resources=[image], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return image

    def describe(self, ec2, filters):
        return {i["ImageId"]: tag_dict(i) for i in ec2.describe_images(Owners=["self"], Filters=filters)["Images"]}

    def delete(self, ec2, rid):
        ec2.deregister_image(ImageId=rid)


class Instances:
    def create(self, ec2, tags):
        kw = {"TagSpecifications": spec("instance", tags)} if tags else {}
        return ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": AZ}, **kw)["Instances"][0]["InstanceId"]

    def describe(self, ec2, filters):
        out = {}
        for r in ec2.describe_instances(Filters=filters)["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] != "terminated":
                    out[i["InstanceId"]] = tag_dict(i)
        return out

    def delete(self, ec2, rid):
        ec2.terminate_instances(InstanceIds=[rid])


KINDS = {"volume": Volumes, "snapshot": Snapshots, "image": Images, "instance": Instances}


@pytest.fixture(params=list(KINDS))
def kind(request, emu):
    emu.control("POST", "transitions", IMAGES_AT_ONCE)
    return KINDS[request.param]()


def f(name, *values):
    return {"Name": name, "Values": list(values)}


# (filters, which of a/b/c match): c has no tags at all.
FORMS = [
    ([f("tag:Name", "alpha")], "a"),
    ([f("tag:Name", "alpha", "beta")], "ab"),
    ([f("tag:Name", "al*")], "a"),
    ([f("tag:Name", "?eta")], "b"),
    ([f("tag:Name", "ALPHA")], ""),  # values are case-sensitive
    ([f("tag:team", "blue")], "a"),
    ([f("tag:missing", "blue")], ""),
    ([f("tag:cost-center", "42")], "b"),
    ([f("tag-key", "team")], "ab"),
    ([f("tag-key", "te*")], "ab"),
    ([f("tag-key", "cost-center")], "b"),
    ([f("tag-key", "nothing")], ""),
    ([f("tag-value", "green")], "b"),
    ([f("tag-value", "gr?en")], "b"),
    ([f("tag-value", "blu*")], "a"),
    ([f("tag-value", "42")], "b"),
    ([f("tag:Name", "alpha"), f("tag-key", "team")], "a"),  # filters AND together
    ([f("tag:Name", "alpha"), f("tag-value", "green")], ""),
]


def test_every_tag_filter_form_on_tags_given_at_creation(ec2, kind):
    ids = {"a": kind.create(ec2, A_TAGS), "b": kind.create(ec2, B_TAGS), "c": kind.create(ec2, {})}
    for filters, expected in FORMS:
        got = kind.describe(ec2, filters)
        assert set(got) == {ids[x] for x in expected}, filters
        for name, rid in ids.items():
            if rid in got:
                assert got[rid] == {"a": A_TAGS, "b": B_TAGS, "c": {}}[name]
    listed = kind.describe(ec2, [])
    assert {listed[ids[x]] == t for x, t in (("a", A_TAGS), ("b", B_TAGS), ("c", {}))} == {True}


def test_tag_filters_follow_create_tags_delete_tags_and_delete(ec2, kind):
    a, b, c = kind.create(ec2, A_TAGS), kind.create(ec2, B_TAGS), kind.create(ec2, {})

    ec2.create_tags(Resources=[c, b], Tags=[{"Key": "team", "Value": "blue"}])  # b: overwritten
    assert set(kind.describe(ec2, [f("tag:team", "blue")])) == {a, b, c}
    assert kind.describe(ec2, [f("tag-value", "green")]) == {}
    assert kind.describe(ec2, [f("tag-key", "team")])[c] == {"team": "blue"}

    ec2.delete_tags(Resources=[a], Tags=[{"Key": "team"}])  # no value: any value
    ec2.delete_tags(Resources=[b], Tags=[{"Key": "Name", "Value": "not-beta"}])  # other value: kept
    ec2.delete_tags(Resources=[b], Tags=[{"Key": "cost-center", "Value": "42"}])  # same value: gone
    assert set(kind.describe(ec2, [f("tag:team", "blue")])) == {b, c}
    assert set(kind.describe(ec2, [f("tag-key", "Name")])) == {a, b}
    assert kind.describe(ec2, [f("tag-key", "cost-center")]) == {}
    assert kind.describe(ec2, [f("tag:Name", "*")]) == {a: {"Name": "alpha"}, b: {"Name": "beta", "team": "blue"}}

    kind.delete(ec2, a)
    assert kind.describe(ec2, [f("tag:Name", "alpha")]) == {}
    assert set(kind.describe(ec2, [f("tag-key", "Name")])) == {b}

    ec2.create_tags(Resources=[b], Tags=[{"Key": "Name", "Value": "alpha"}])
    assert set(kind.describe(ec2, [f("tag:Name", "alpha")])) == {b}


def test_describe_tags_answers_as_moto_does(ec2):
    a = Volumes().create(ec2, A_TAGS)
    s = Snapshots().create(ec2, {"Name": "snap"})
    got = ec2.describe_tags(Filters=[f("resource-id", a, s)])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in got) == sorted(
        [(a, "volume", "Name", "alpha"), (a, "volume", "team", "blue"), (s, "snapshot", "Name", "snap")])
    assert {t["ResourceId"] for t in ec2.describe_tags(Filters=[f("key", "te*")])["Tags"]} == {a}


# --- work, counted ----------------------------------------------------------------------------


def lookups(emu) -> dict:
    return emu.control("GET", "tag-lookups")


def zero(emu) -> None:
    emu.control("DELETE", "tag-lookups")


def sweep_cost(emu, ec2, filters) -> dict:
    zero(emu)
    listed, token = 0, None
    while True:
        page = ec2.describe_volumes(Filters=filters, MaxResults=10, **({"NextToken": token} if token else {}))
        listed += len(page["Volumes"])
        token = page.get("NextToken")
        if not token:
            break
    return {**lookups(emu), "listed": listed}


def test_a_tag_filtered_describe_volumes_is_served_by_the_table(emu, ec2):
    vols = Volumes()
    ids = [vols.create(ec2, {"cluster": "c1", "Name": f"v{i}"}) for i in range(20)]
    for i in range(10):  # other tagged resources in the same table
        vols.create(ec2, {"cluster": "c2"})
    zero(emu)
    got = ec2.describe_volumes(Filters=[f("tag:cluster", "c1")])["Volumes"]
    assert sorted(v["VolumeId"] for v in got) == sorted(ids)
    cost = lookups(emu)
    assert cost["scans"] == 0
    # one lookup per volume to filter (30) and one per volume rendered (20), whatever the table holds
    assert cost["rows_visited"] == cost["indexed"] <= 30 + 20


def test_sweep_cost_grows_linearly_with_volumes(emu, ec2):
    vols = Volumes()
    filters = [f("tag-key", "cluster")]
    for _ in range(15):
        vols.create(ec2, {"cluster": "c1"})
    small = sweep_cost(emu, ec2, filters)
    for _ in range(45):
        vols.create(ec2, {"cluster": "c1"})
    large = sweep_cost(emu, ec2, filters)
    assert (small["listed"], large["listed"]) == (15, 60)
    assert small["scans"] == large["scans"] == 0
    # Each page (10 volumes) filters every volume once and renders its own: pages x volumes +
    # listed lookups of one table row each (2 x 15 + 15 = 45, 6 x 60 + 60 = 420). moto's scan
    # visited the whole table per lookup: 45 x 15 = 675 and 420 x 60 = 25,200 rows.
    for cost, n in ((small, 15), (large, 60)):
        pages = -(-n // 10)
        assert cost["rows_visited"] == cost["indexed"] <= pages * n + n


def test_snapshots_images_and_instances_are_served_by_the_table(emu, ec2):
    emu.control("POST", "transitions", IMAGES_AT_ONCE)
    snap = Snapshots().create(ec2, {"cluster": "c1"})
    image = Images().create(ec2, {"cluster": "c1"})
    inst = Instances().create(ec2, {"cluster": "c1"})
    for describe, rid in ((Snapshots().describe, snap), (Images().describe, image), (Instances().describe, inst)):
        zero(emu)
        assert set(describe(ec2, [f("tag:cluster", "c1")])) == {rid}
        cost = lookups(emu)
        assert cost["scans"] == 0 and cost["indexed"] >= 1


def test_the_counters_see_a_scan_of_the_whole_table(emu, ec2):
    """DescribeTags keeps moto's scan: the counters report it, so a Describe that fell back to
    scanning per resource would show in the tests above."""
    for i in range(7):
        Volumes().create(ec2, {"Name": f"v{i}"})
    zero(emu)
    ec2.describe_tags()
    assert lookups(emu) == {"indexed": 0, "scans": 1, "rows_visited": 7}
    emu.control("POST", "reset")
    assert lookups(emu) == {"indexed": 0, "scans": 0, "rows_visited": 0}
