"""Instance corrections (ec2emu/fixes/instances.py), numbered as in its docstring. Each test
fails on moto 5.2.5 as the layer stood before these corrections."""

import json
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import error_code

AZ = "us-east-1a"


@pytest.fixture(autouse=True)
def snapshots_at_once(emu):
    emu.control("POST", "transitions", {"snapshot": 0, "copy-snapshot": 0, "image": 0, "copy-image": 0})


def fails(code, fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert error_code(e) == code, e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def described(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def root_volume_id(ec2, iid):
    inst = described(ec2, iid)
    (ebs,) = [m["Ebs"] for m in inst["BlockDeviceMappings"] if m["DeviceName"] == inst["RootDeviceName"]]
    return ebs["VolumeId"]


def new_key(emu):
    return emu.client("kms").create_key(Description="migration")["KeyMetadata"]


def completed_snapshot(ec2, size=12, **volume_args):
    vid = ec2.create_volume(AvailabilityZone=AZ, Size=size, **volume_args)["VolumeId"]
    return ec2.create_snapshot(VolumeId=vid)["SnapshotId"], vid


def image(ec2, snapshot_id, root="/dev/xvda", extra=(), name="ec2r-root-test"):
    return ec2.register_image(
        Name=name, RootDeviceName=root, Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": root, "Ebs": {"SnapshotId": snapshot_id, "VolumeType": "gp3"}},
                             *extra])["ImageId"]


def run(ec2, **kw):
    kw.setdefault("ImageId", "ami-12345678")
    return ec2.run_instances(MinCount=1, MaxCount=1, Placement={"AvailabilityZone": AZ}, **kw)["Instances"][0]


# --- 1. lifecycle -------------------------------------------------------------------------------
def test_stop_goes_through_stopping_on_the_emulator_clock(emu, ec2, instance):
    emu.transitions(instance_stop=60)
    r = ec2.stop_instances(InstanceIds=[instance])["StoppingInstances"][0]
    assert (r["PreviousState"]["Name"], r["CurrentState"]["Name"], r["CurrentState"]["Code"]) == ("running", "stopping", 64)
    assert state(ec2, instance) == "stopping"
    fails("IncorrectInstanceState", ec2.start_instances, InstanceIds=[instance])
    emu.advance(61)
    assert state(ec2, instance) == "stopped"
    emu.transitions(instance_stop=100000)
    assert state(ec2, instance) == "stopped"  # latched: a longer duration does not undo it
    again = ec2.stop_instances(InstanceIds=[instance])["StoppingInstances"][0]
    assert again["CurrentState"]["Name"] == again["PreviousState"]["Name"] == "stopped"


def test_start_goes_through_pending(emu, ec2, instance):
    ec2.stop_instances(InstanceIds=[instance])
    assert state(ec2, instance) == "stopped"
    emu.transitions(instance_start=30)
    r = ec2.start_instances(InstanceIds=[instance])["StartingInstances"][0]
    assert (r["PreviousState"]["Name"], r["CurrentState"]["Name"]) == ("stopped", "pending")
    assert state(ec2, instance) == "pending"
    msg = fails("IncorrectInstanceState", ec2.stop_instances, InstanceIds=[instance])
    assert "never reached the 'running' state" in msg
    vid = ec2.create_volume(AvailabilityZone=AZ, Size=10)["VolumeId"]
    assert fails("IncorrectState", ec2.attach_volume, VolumeId=vid, InstanceId=instance,
                 Device="/dev/sdf") == f"Instance '{instance}' is not 'running'."
    emu.advance(31)
    assert state(ec2, instance) == "running"
    assert ec2.start_instances(InstanceIds=[instance])["StartingInstances"][0]["CurrentState"]["Name"] == "running"


def test_terminated_instance_cannot_start_or_stop_or_reboot_back(ec2, instance):
    ec2.terminate_instances(InstanceIds=[instance])
    msg = fails("IncorrectInstanceState", ec2.start_instances, InstanceIds=[instance])
    assert msg == f"The instance '{instance}' is not in a state from which it can be started."
    fails("IncorrectInstanceState", ec2.stop_instances, InstanceIds=[instance])
    ec2.reboot_instances(InstanceIds=[instance])
    assert state(ec2, instance) == "terminated"


# --- 2. root volume rules ------------------------------------------------------------------------
def test_root_volume_detaches_only_from_a_stopped_instance(ec2, instance):
    root = root_volume_id(ec2, instance)
    msg = fails("IncorrectState", ec2.detach_volume, VolumeId=root)
    assert msg == f"Unable to detach root volume '{root}' from instance '{instance}'"
    fails("IncorrectState", ec2.detach_volume, VolumeId=root, InstanceId=instance, Force=True)
    ec2.stop_instances(InstanceIds=[instance])
    ec2.detach_volume(VolumeId=root, InstanceId=instance)
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["State"] == "available"


def test_instance_without_root_volume_does_not_start_and_takes_a_new_root_while_stopped(emu, ec2, instance):
    root = root_volume_id(ec2, instance)
    ec2.stop_instances(InstanceIds=[instance])
    emu.transitions(volume_detach=60)
    ec2.detach_volume(VolumeId=root)
    # still detaching: the root is going away, so the instance does not start either
    fails("InvalidParameterValue", ec2.start_instances, InstanceIds=[instance])
    emu.advance(61)
    msg = fails("InvalidParameterValue", ec2.start_instances, InstanceIds=[instance])
    assert msg == (f"Invalid value '{instance}' for instanceId. "
                   "Instance does not have a volume attached at root (/dev/sda1)")
    new_root = ec2.create_volume(AvailabilityZone=AZ, Size=8, Encrypted=True)["VolumeId"]
    ec2.attach_volume(VolumeId=new_root, InstanceId=instance, Device="/dev/sda1")
    ec2.start_instances(InstanceIds=[instance])
    assert state(ec2, instance) == "running"
    assert root_volume_id(ec2, instance) == new_root


# --- 3. instance store-backed instances -----------------------------------------------------------
def test_instance_store_backed_instance_cannot_stop(ec2):
    ami = ec2.register_image(Name="ec2r-instance-store", ImageLocation="bucket/image.manifest.xml",
                             RootDeviceName="/dev/sda1", Architecture="x86_64",
                             VirtualizationType="hvm")["ImageId"]
    inst = run(ec2, ImageId=ami, InstanceType="m3.medium")
    iid = inst["InstanceId"]
    assert inst["RootDeviceType"] == "instance-store"
    assert described(ec2, iid)["RootDeviceType"] == "instance-store"
    assert described(ec2, iid)["BlockDeviceMappings"] == []
    msg = fails("UnsupportedOperation", ec2.stop_instances, InstanceIds=[iid])
    assert msg == f"The instance '{iid}' does not have an 'ebs' root device type and cannot be stopped."
    assert state(ec2, iid) == "running"
    vid = ec2.create_volume(AvailabilityZone=AZ, Size=8)["VolumeId"]
    fails("IncorrectState", ec2.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sda1")


# --- 4. instance store volumes of EBS-backed instances -------------------------------------------
def store(emu, method="GET", **body):
    if method == "GET":
        req = urllib.request.Request(f"{emu.url}/_emulator/instance-store?instanceId={body['instanceId']}")
    else:
        req = urllib.request.Request(f"{emu.url}/_emulator/instance-store", data=json.dumps(body).encode(),
                                     method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_instance_store_volumes_are_shown_and_emptied_by_a_stop(emu, ec2):
    info = ec2.describe_instance_types(InstanceTypes=["m5d.large"])["InstanceTypes"][0]["InstanceStorageInfo"]
    assert info["TotalSizeInGB"] == 75  # already right in moto
    inst = run(ec2, InstanceType="m5d.large",
               BlockDeviceMappings=[{"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}])
    iid = inst["InstanceId"]
    # DescribeInstances lists only EBS devices, as on AWS
    assert [m["DeviceName"] for m in described(ec2, iid)["BlockDeviceMappings"]] == ["/dev/sda1"]
    view = store(emu, instanceId=iid)
    assert view["volumes"] == [{"virtualName": "ephemeral0", "deviceName": "/dev/sdb", "sizeInGB": 75,
                                "type": "ssd", "nvme": True}]
    assert store(emu, "POST", instanceId=iid, data="scratch")["data"] == "scratch"
    ec2.stop_instances(InstanceIds=[iid])
    after = store(emu, instanceId=iid)
    assert after["data"] is None and after["emptied"] == 1
    ec2.start_instances(InstanceIds=[iid])
    assert store(emu, instanceId=iid)["volumes"] == view["volumes"]


def test_ami_ephemeral_mappings_give_non_nvme_instance_store(emu, ec2):
    snap, _ = completed_snapshot(ec2, size=8)
    ami = image(ec2, snap, extra=[{"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
                                  {"DeviceName": "/dev/sdc", "VirtualName": "ephemeral1"}])
    both = run(ec2, ImageId=ami, InstanceType="c3.large")["InstanceId"]
    assert [v["deviceName"] for v in store(emu, instanceId=both)["volumes"]] == ["/dev/sdb", "/dev/sdc"]
    one = run(ec2, ImageId=ami, InstanceType="c3.large",
              BlockDeviceMappings=[{"DeviceName": "/dev/sdc", "NoDevice": ""}])["InstanceId"]
    assert [v["virtualName"] for v in store(emu, instanceId=one)["volumes"]] == ["ephemeral0"]
    none = run(ec2, ImageId=ami, InstanceType="m5.large")["InstanceId"]
    assert store(emu, instanceId=none)["volumes"] == []
    with pytest.raises(urllib.error.HTTPError) as e:
        store(emu, "POST", instanceId=none, data="x")
    assert e.value.code == 400


# --- 5. root volume from the AMI -------------------------------------------------------------------
def test_root_volume_follows_the_ami(emu, ec2):
    key = new_key(emu)
    snap, _ = completed_snapshot(ec2, size=12, VolumeType="gp3", Encrypted=True, KmsKeyId=key["Arn"])
    data_snap, _ = completed_snapshot(ec2, size=20)
    ami = image(ec2, snap, extra=[{"DeviceName": "/dev/sdf",
                                   "Ebs": {"SnapshotId": data_snap, "DeleteOnTermination": False}}])
    inst = run(ec2, ImageId=ami)
    assert inst["RootDeviceName"] == "/dev/xvda"
    mappings = {m["DeviceName"]: m["Ebs"] for m in described(ec2, inst["InstanceId"])["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/xvda", "/dev/sdf"}
    assert (mappings["/dev/xvda"]["DeleteOnTermination"], mappings["/dev/sdf"]["DeleteOnTermination"]) == (True, False)
    root = ec2.describe_volumes(VolumeIds=[mappings["/dev/xvda"]["VolumeId"]])["Volumes"][0]
    assert (root["Size"], root["VolumeType"], root["Encrypted"], root["KmsKeyId"], root["SnapshotId"]) == \
        (12, "gp3", True, key["Arn"], snap)
    assert root["Attachments"][0]["Device"] == "/dev/xvda"

    bigger = run(ec2, ImageId=ami, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30}},
        {"DeviceName": "/dev/sdf", "NoDevice": ""},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 5}}])
    mappings = {m["DeviceName"]: m["Ebs"] for m in described(ec2, bigger["InstanceId"])["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/xvda", "/dev/sdg"}
    sizes = {v["Attachments"][0]["Device"]: v["Size"] for v in ec2.describe_volumes(
        VolumeIds=[m["VolumeId"] for m in mappings.values()])["Volumes"]}
    assert sizes == {"/dev/xvda": 30, "/dev/sdg": 5}
    assert mappings["/dev/sdg"]["DeleteOnTermination"] is False
    fails("InvalidBlockDeviceMapping", run, ec2=ec2, ImageId=ami,
          BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "NoDevice": ""}])


# --- 6. DeleteOnTermination ----------------------------------------------------------------------
def test_delete_on_termination_is_one_value(ec2, instance):
    root = root_volume_id(ec2, instance)

    def views():
        inst = described(ec2, instance)["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"]
        attr = ec2.describe_instance_attribute(InstanceId=instance, Attribute="blockDeviceMapping")
        (mapping,) = attr["BlockDeviceMappings"]
        assert (mapping["DeviceName"], mapping["Ebs"]["VolumeId"]) == ("/dev/sda1", root)
        vol = ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["Attachments"][0]["DeleteOnTermination"]
        return inst, mapping["Ebs"]["DeleteOnTermination"], vol

    assert views() == (True, True, True)
    ec2.modify_instance_attribute(InstanceId=instance, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"DeleteOnTermination": False}}])
    assert views() == (False, False, False)
    fails("InvalidInstanceAttributeValue", ec2.modify_instance_attribute, InstanceId=instance,
          BlockDeviceMappings=[{"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": False}}])
    ec2.terminate_instances(InstanceIds=[instance])
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["State"] == "available"


# --- 7. disabled KMS key at start ------------------------------------------------------------
def test_start_with_a_root_volume_under_a_disabled_key_ends_stopped(emu, ec2):
    key = new_key(emu)
    snap, _ = completed_snapshot(ec2, size=8, Encrypted=True, KmsKeyId=key["Arn"])
    iid = run(ec2, ImageId=image(ec2, snap))["InstanceId"]
    ec2.stop_instances(InstanceIds=[iid])
    emu.client("kms").disable_key(KeyId=key["KeyId"])
    emu.transitions(instance_start=30)
    assert ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]["CurrentState"]["Name"] == "pending"
    emu.advance(31)
    inst = described(ec2, iid)
    assert inst["State"]["Name"] == "stopped"
    assert inst["StateReason"]["Code"] == "Client.InvalidKMSKey.InvalidState"
    emu.client("kms").enable_key(KeyId=key["KeyId"])
    ec2.start_instances(InstanceIds=[iid])
    emu.advance(31)
    assert state(ec2, iid) == "running"


