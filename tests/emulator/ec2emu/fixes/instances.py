"""Corrections for EC2 instances (moto 5.2.5) on the path of an in-place volume encryption
(stop, swap the root volume, start). Each restores a documented AWS behaviour; EC2 API reference
pages are named by action, "EC2 guide" is the Amazon EC2 User Guide.

 1. Lifecycle over time (StopInstances, StartInstances API reference; EC2 guide "Amazon EC2
    instance state changes"). moto: `stopped`/`running` at once. Here StopInstances moves a
    running instance to `stopping` (64) and it becomes `stopped` (80) after the `instance-stop`
    duration; StartInstances moves a stopped instance to `pending` (0), `running` (16) after
    `instance-start`. States are derived lazily on the emulator clock, latched once reached
    (like the volume transitions). Stopping a stopping/stopped instance or starting a
    pending/running one is accepted and changes nothing (the calls are idempotent on AWS).
    Refused with IncorrectInstanceState: starting a `stopping`, `shutting-down` or `terminated`
    instance ("The instance 'i-x' is not in a state from which it can be started.", as AWS
    words it: canonical/ubuntu-pro-client#1697); stopping a `pending` instance ("Instance 'i-x'
    cannot be stopped as it has never reached the 'running' state.", cloud-custodian#6014) or a
    terminated one (approximate). moto: a terminated instance starts.
    RebootInstances no longer revives a stopped or terminated instance (moto sets `running`);
    AWS ignores reboots of terminated instances (RebootInstances API reference).
 2. Root volume rules. DetachVolume API reference: "If an EBS volume is the root device of an
    instance, it can't be detached while the instance is running": detaching the volume at the
    instance's RootDeviceName from an instance that is not `stopped` -> IncorrectState "Unable to
    detach root volume 'vol-x' from instance 'i-x'" (Force does not lift it). AttachVolume at the
    root device only while the instance is `stopped` (IncorrectState, approximate); AttachVolume
    to an instance that is neither running nor stopped -> IncorrectState "Instance 'i-x' is not
    'running'." (what AWS answers for a pending instance, ansible-collections/amazon.aws#497).
    StartInstances of an EBS-backed instance with no volume attached at its root device ->
    InvalidParameterValue "Invalid value 'i-x' for instanceId. Instance does not have a volume
    attached at root (/dev/xvda)" (VM Import/Export guide, Troubleshooting). moto: all allowed.
 3. Instance store-backed instances (AMI guide "Root device type"; StopInstances API reference:
    "You can't stop or hibernate instance store-backed instances"): an instance launched from an
    AMI with RootDeviceType `instance-store` has RootDeviceType `instance-store` and no EBS root
    volume; StopInstances -> UnsupportedOperation "The instance 'i-x' does not have an 'ebs' root
    device type and cannot be stopped." (the real error, mitchellh/vagrant-aws#193). moto: every
    instance is `ebs` with an 8 GiB root and stops.
 4. Instance store volumes of EBS-backed instances (EC2 guide "Instance store temporary block
    storage", "Add instance store volumes"; DescribeInstanceTypes InstanceStorageInfo, which moto
    already answers). RunInstances accepts `VirtualName: ephemeralN` mappings (moto:
    `MissingParameter: ebs`) and takes the AMI's. The instance's instance store volumes are: every
    disk of the type when it is NVMe ("NVMe instance store volumes are automatically enumerated",
    the mappings have no effect), else the mapped `ephemeralN` the type has (N < disk count); a
    type without instance storage has none. DescribeInstances keeps listing only EBS devices
    (InstanceBlockDeviceMapping holds DeviceName + Ebs), as on AWS. "The data in an instance store
    persists only during the lifetime of the instance ... if the instance stops ... the data is
    lost": StopInstances empties them. Tests see this through `GET/POST /_emulator/instance-store`
    (instance_store_view/write below): the volumes, a marker a test can write, and how often they
    were emptied.
 5. Root and other volumes from the AMI's mappings (EC2 guide "Root volumes": "we create an
    Amazon EBS volume for each Amazon EBS snapshot referenced by the AMI"; "Block device mappings"
    > "Update the block device mapping when launching an instance"). moto: always an 8 GiB gp2
    unencrypted volume at /dev/sda1, and none at all with explicit mappings. Here: the AMI's
    mappings (snapshot, size, type, iops, throughput, DeleteOnTermination; encryption and key from
    the snapshot, volumes.py rule 7) at their device names, the root at the AMI's RootDeviceName;
    RunInstances mappings override per device (NoDevice removes one, the root cannot be removed:
    InvalidBlockDeviceMapping, approximate) and add others; DeleteOnTermination defaults to true
    for the root and false for other new volumes (EC2 guide "Preserve data when an instance is
    terminated"). Unknown AMIs (tests use `ami-12345678`) keep moto's 8 GiB root at /dev/sda1,
    which is also what such an instance's RootDeviceName says.
 6. One DeleteOnTermination (ModifyInstanceAttribute API reference, BlockDeviceMapping;
    DescribeInstanceAttribute `blockDeviceMapping`; DescribeVolumes Attachments). moto keeps it
    twice and ModifyInstanceAttribute changed only the instance's copy; DescribeInstanceAttribute
    blockDeviceMapping answered nothing; a device that is not mapped gave HTTP 500. Here the
    attachment reads the instance's mapping, DescribeInstanceAttribute lists the mappings, an
    unmapped device is InvalidInstanceAttributeValue "No device is currently mapped at /dev/sdz"
    (approximate).
 7. Disabled KMS key at start. A root volume whose KMS key is not enabled: StartInstances is
    accepted, the instance goes `pending` and then back to `stopped` with StateReason
    `Client.InvalidKMSKey.InvalidState` "The KMS key provided is in an incorrect state" (the code
    AWS reports for launches with such keys; for starts the outcome is expected, unverified).

Durations (ec2emu.transitions): `instance-stop`, `instance-start` (0 = instant).
"""

from __future__ import annotations

import copy
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, OperationDisableApiStopNotPermitted
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import EBSBackend, VolumeAttachment
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import Instance, InstanceBackend, StateReason
from moto.ec2.responses.instances import InstanceResponse

from .. import clock, transitions
from . import volumes

DEFAULTS = {"instance-stop": 1.0, "instance-start": 1.0}
CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
DEFAULT_ROOT_SIZE = 8  # moto's root volume for unknown AMIs
KMS_REASON = ("Client.InvalidKMSKey.InvalidState",
              "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state")

_orig: dict[str, Any] = {}


def err(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


# --- 1. lazily derived state ------------------------------------------------------------------
def _state_get(self: Instance) -> Any:
    d = self.__dict__
    t = d.get("_ec2r_transition")
    if t is not None and transitions.done(t[0], t[1]):
        del d["_ec2r_transition"]  # latched: a longer duration set later never undoes it
        state = d["_ec2r_state"]
        state.name, state.code = t[2], CODES[t[2]]
        if t[3] is not None:
            self.state_reason = StateReason(t[3][1], t[3][0])
            self._reason = f"Server.InternalError ({clock.now():%Y-%m-%d %H:%M:%S} GMT)"  # approximate
    return d["_ec2r_state"]


def _state_set(self: Instance, value: Any) -> None:
    self.__dict__["_ec2r_state"] = value


def _settled_attr(name: str) -> property:
    """StateReason / StateTransitionReason, read after the state has settled (whichever the
    serializer reads first)."""
    slot = f"_ec2r_{name}"

    def get(self: Instance) -> Any:
        _state_get(self)
        return self.__dict__.get(slot)

    def set_(self: Instance, value: Any) -> None:
        self.__dict__[slot] = value

    return property(get, set_)


def _begin(instance: Instance, key: str, now_state: str, then_state: str, reason: tuple | None = None) -> None:
    state = instance.__dict__["_ec2r_state"]
    state.name, state.code = now_state, CODES[now_state]
    instance.__dict__["_ec2r_transition"] = (clock.now(), key, then_state, reason)


def _terminate(self: Instance) -> Any:
    self.__dict__["_ec2r_terminating"] = True  # lets moto's teardown detach the root volume
    self.__dict__.pop("_ec2r_transition", None)
    _empty_instance_store(self)
    return _orig["terminate"](self)


def _reboot(self: Instance) -> None:
    if self.state == "running":
        _orig["reboot"](self)


def _root_attachment(instance: Instance) -> Any:
    bdt = instance.block_device_mapping.get(instance.root_device_name)
    if bdt is None or not getattr(bdt, "volume_id", None):
        return None
    volume = instance.ec2_backend.volumes.get(bdt.volume_id)
    if volume is None:
        return None
    for att in volume.attachments:
        if att.instance is instance and att.device == instance.root_device_name and att.status != "detaching":
            return att
    return None


def stop_instances(self: InstanceBackend, instance_ids: list[str]) -> list[tuple[Instance, Any]]:
    instances = self.get_multi_instances_by_id(instance_ids)
    for i in instances:  # all checked before any is changed
        if i.root_device_type != "ebs":
            raise err("UnsupportedOperation",
                      f"The instance '{i.id}' does not have an 'ebs' root device type and cannot be stopped.")
        if i.disable_api_stop is True:
            raise OperationDisableApiStopNotPermitted(i.id)
        if i.state == "pending":
            raise err("IncorrectInstanceState",
                      f"Instance '{i.id}' cannot be stopped as it has never reached the 'running' state.")
        if i.state in ("shutting-down", "terminated"):
            raise err("IncorrectInstanceState",
                      f"The instance '{i.id}' is not in a state from which it can be stopped.")  # approximate
    out = []
    for i in instances:
        previous = copy.copy(i._state)
        if i.state == "running":
            _orig["stop"](i)  # moto's side effects: NICs, StateReason Client.UserInitiatedShutdown
            _begin(i, "instance-stop", "stopping", "stopped")
            _empty_instance_store(i)
        out.append((i, previous))
    return out


def start_instances(self: InstanceBackend, instance_ids: list[str]) -> list[tuple[Instance, Any]]:
    instances = self.get_multi_instances_by_id(instance_ids)
    for i in instances:
        if i.state in ("stopping", "shutting-down", "terminated"):
            raise err("IncorrectInstanceState",
                      f"The instance '{i.id}' is not in a state from which it can be started.")
        if i.state == "stopped" and i.root_device_type == "ebs" and _root_attachment(i) is None:
            raise err("InvalidParameterValue",
                      f"Invalid value '{i.id}' for instanceId. Instance does not have a volume attached "
                      f"at root ({i.root_device_name})")
    out = []
    for i in instances:
        previous = copy.copy(i._state)
        if i.state == "stopped":
            root = _root_attachment(i)
            bad_key = bool(root and root.volume.encrypted
                           and not volumes._key_usable(self, root.volume.kms_key_id))
            _orig["start"](i)
            _begin(i, "instance-start", "pending", "stopped" if bad_key else "running",
                   KMS_REASON if bad_key else None)
        out.append((i, previous))
    return out


def _state_dict(state: Any) -> dict:
    return {"Code": state.code, "Name": state.name}


def _stop_response(self: Any) -> ActionResult:
    ids = self._get_param("InstanceIds", [])
    self.error_on_dryrun()
    done = self.ec2_backend.stop_instances(ids)
    return ActionResult({"StoppingInstances": [
        {"InstanceId": i.id, "CurrentState": _state_dict(i._state), "PreviousState": _state_dict(p)}
        for i, p in done]})


def _start_response(self: Any) -> ActionResult:
    ids = self._get_param("InstanceIds", [])
    self.error_on_dryrun()
    done = self.ec2_backend.start_instances(ids)
    return ActionResult({"StartingInstances": [
        {"InstanceId": i.id, "CurrentState": _state_dict(i._state), "PreviousState": _state_dict(p)}
        for i, p in done]})


# --- 2. root volume rules ---------------------------------------------------------------------
def detach_volume(self: EBSBackend, volume_id: str, instance_id: str | None, device_path: str | None,
                  pending: bool = False) -> Any:
    volume = self.get_volume(volume_id)
    for att in volume.attachments:
        inst = att.instance
        if (instance_id and inst.id != instance_id) or (device_path and att.device != device_path):
            continue
        if inst.__dict__.get("_ec2r_terminating"):
            continue
        if att.device == inst.root_device_name and inst.root_device_type == "ebs" and inst.state != "stopped":
            raise err("IncorrectState", f"Unable to detach root volume '{volume_id}' from instance '{inst.id}'")
    return _orig["detach_volume"](self, volume_id, instance_id, device_path, pending=pending)


def attach_volume(self: EBSBackend, volume_id: str, instance_id: str, device_path: str,
                  delete_on_termination: bool = False, pending: bool = False) -> Any:
    if pending:  # API calls only; RunInstances attaches its own volumes while the instance is new
        self.get_volume(volume_id)
        inst = self.get_instance(instance_id)
        if inst.state not in ("running", "stopped"):
            raise err("IncorrectState", f"Instance '{inst.id}' is not 'running'.")
        if device_path == inst.root_device_name and device_path not in inst.block_device_mapping \
                and inst.state != "stopped":
            raise err("IncorrectState",
                      f"Instance '{inst.id}' is not 'stopped': a volume can be attached at its root device "
                      f"({device_path}) only while it is stopped (approximate)")
    return _orig["attach_volume"](self, volume_id, instance_id, device_path, delete_on_termination,
                                  pending=pending)


# --- 3/4/5. launch: root device type, AMI mappings, instance store ---------------------------
def _instance_init(self: Instance, ec2_backend: Any, image_id: str, *args: Any, **kwargs: Any) -> None:
    _orig["instance_init"](self, ec2_backend, image_id, *args, **kwargs)
    ami = ec2_backend.amis.get(self.image_id) if self.image_id else None
    if ami is not None and ami.root_device_type == "instance-store":
        self.root_device_type = "instance-store"


def _parse_block_device_mapping(self: Any) -> list[dict[str, Any]]:
    """RunInstances BlockDeviceMappings as sent (absent values stay None, so the AMI's apply);
    `VirtualName` (instance store) mappings are accepted."""
    out = []
    for m in self._get_param("BlockDeviceMappings", []) or []:
        ebs = m.get("Ebs")
        if "NoDevice" not in m and not m.get("VirtualName"):
            if ebs is None:
                raise err("MissingParameter", "The request must contain the parameter ebs")
            if not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
                raise err("MissingParameter", "The request must contain the parameter size or snapshotId")
        out.append({"DeviceName": m.get("DeviceName"), "VirtualName": m.get("VirtualName"),
                    "NoDevice": m.get("NoDevice"), "Ebs": dict(ebs) if ebs else None})
    return out


def _effective_mappings(ami: Any, explicit: list[dict], root: str, ebs_root: bool) -> list[dict]:
    merged: dict[str, dict] = {}
    for m in (ami.block_device_mappings if ami is not None else []):
        if "NoDevice" not in m:
            merged[m["DeviceName"]] = copy.deepcopy(m)
    for m in explicit:
        dev = m["DeviceName"]
        if m.get("NoDevice") is not None:
            if dev == root and ebs_root:
                raise err("InvalidBlockDeviceMapping",
                          f"The device '{dev}' is the root device and cannot be removed (approximate)")
            merged.pop(dev, None)
        elif m.get("VirtualName"):
            merged[dev] = {"DeviceName": dev, "VirtualName": m["VirtualName"]}
        else:
            base = dict((merged.get(dev) or {}).get("Ebs") or {})
            base.update({k: v for k, v in (m.get("Ebs") or {}).items() if v is not None})
            merged[dev] = {"DeviceName": dev, "Ebs": base}
    if ebs_root and "Ebs" not in merged.get(root, {}):
        if ami is not None:
            raise err("InvalidBlockDeviceMapping",
                      f"The image has no EBS volume for its root device {root} (approximate)")
        merged[root] = {"DeviceName": root, "Ebs": {"VolumeSize": DEFAULT_ROOT_SIZE}}
    return list(merged.values())


def _volume_args(backend: Any, dev: str, ebs: dict, root: str) -> dict:
    snapshot_id = ebs.get("SnapshotId")
    snapshot = backend.get_snapshot(snapshot_id) if snapshot_id else None
    size = volumes._int(ebs.get("VolumeSize"))
    if size is None and snapshot is not None:
        size = snapshot.volume_size
    vtype = ebs.get("VolumeType") or volumes.DEFAULT_TYPE
    iops, throughput = volumes._int(ebs.get("Iops")), volumes._int(ebs.get("Throughput"))
    volumes.validate_volume(vtype, size, iops, throughput, None)
    dot = volumes._bool(ebs.get("DeleteOnTermination"))
    return {"size": size, "snapshot_id": snapshot_id, "volume_type": vtype, "iops": iops,
            "throughput": throughput, "encrypted": bool(volumes._bool(ebs.get("Encrypted"))),
            "kms_key_id": ebs.get("KmsKeyId"),
            "delete_on_termination": (dev == root) if dot is None else dot}


def run_instances(self: InstanceBackend, image_id: str, count: int, user_data: Any,
                  security_group_names: list[str], **kwargs: Any) -> Any:
    if not image_id and kwargs.get("launch_template"):
        image_id = self._get_template_from_args(kwargs["launch_template"]).image_id
    ami = self.amis.get(image_id) if image_id else None
    explicit = kwargs.get("block_device_mappings")
    if explicit is None and kwargs.get("launch_template"):
        explicit = self._get_template_from_args(kwargs["launch_template"]).data.get("BlockDeviceMappings")
    ebs_root = not (ami is not None and ami.root_device_type == "instance-store")
    root = ami.root_device_name if ami is not None else "/dev/sda1"
    mappings = _effective_mappings(ami, explicit or [], root, ebs_root)
    ebs = [(m["DeviceName"], _volume_args(self, m["DeviceName"], m["Ebs"], root)) for m in mappings if "Ebs" in m]
    ephemeral = [m for m in mappings if m.get("VirtualName")]
    volume_tags = (kwargs.get("tags") or {}).get("volume", {})
    kwargs["block_device_mappings"] = []  # moto creates nothing; the volumes are made below
    reservation = _orig["run_instances"](self, image_id, count, user_data, security_group_names, **kwargs)
    for inst in reservation.instances:
        inst.__dict__["_ec2r_ephemeral"] = ephemeral
        for dev, args in ebs:
            dot = args.pop("delete_on_termination")
            volume = self.create_volume(zone_name=inst.placement.zone, **args)
            args["delete_on_termination"] = dot
            volume.add_tags(volume_tags)
            self.attach_volume(volume.id, inst.id, dev, dot)
    return reservation


def instance_store_volumes(instance: Instance) -> list[dict]:
    info = (INSTANCE_TYPES.get(instance.instance_type) or {}).get("InstanceStorageInfo")
    if not info:
        return []
    disks = [(d["SizeInGB"], d["Type"]) for d in info.get("Disks", []) for _ in range(int(d.get("Count", 1)))]
    mapped = {m["VirtualName"]: m["DeviceName"] for m in instance.__dict__.get("_ec2r_ephemeral", [])}
    nvme = info.get("NvmeSupport") == "required"
    out = []
    for n, (size, kind) in enumerate(disks):
        name = f"ephemeral{n}"
        if nvme or name in mapped:
            out.append({"virtualName": name, "deviceName": mapped.get(name), "sizeInGB": size, "type": kind,
                        "nvme": nvme})
    return out


def _empty_instance_store(instance: Instance) -> None:
    d = instance.__dict__
    if instance_store_volumes(instance):
        d["_ec2r_store_data"] = None
        d["_ec2r_store_emptied"] = d.get("_ec2r_store_emptied", 0) + 1


def _find_instance(payload: dict) -> Instance:
    instance_id = payload.get("instanceId") or payload.get("instance_id")
    if not instance_id:
        raise ValueError("'instanceId' is required")
    backend = ec2_backends[payload.get("account") or DEFAULT_ACCOUNT_ID][payload.get("region") or "us-east-1"]
    inst = backend.get_instance_by_id(instance_id)
    if inst is None:
        raise ValueError(f"no instance {instance_id} in that account and Region")
    return inst


def instance_store_view(inst: Instance) -> dict:
    d = inst.__dict__
    return {"instanceId": inst.id, "instanceType": inst.instance_type, "rootDeviceType": inst.root_device_type,
            "state": inst.state, "volumes": instance_store_volumes(inst),
            "data": d.get("_ec2r_store_data"), "emptied": d.get("_ec2r_store_emptied", 0)}


def control_instance_store(method: str, payload: dict) -> dict:
    """GET/POST /_emulator/instance-store. GET ?instanceId=i-x[&region=..&account=..]: the
    instance's instance store volumes, the marker written there (`data`, null once emptied) and
    how often a stop emptied them (`emptied`). POST {"instanceId", "data"} writes the marker
    (only on an instance with instance store volumes, while it runs)."""
    from ..server import MOTO_LOCK  # control requests do not hold moto's lock by themselves

    with MOTO_LOCK:
        return _instance_store(method, payload)


def _instance_store(method: str, payload: dict) -> dict:
    inst = _find_instance(payload)
    if method == "POST":
        if not instance_store_volumes(inst):
            raise ValueError(f"{inst.id} ({inst.instance_type}) has no instance store volumes")
        if inst.state != "running":
            raise ValueError(f"{inst.id} is {inst.state}, not running")
        inst.__dict__["_ec2r_store_data"] = payload.get("data")
    return instance_store_view(inst)


# --- 6. DeleteOnTermination, one value ---------------------------------------------------------
def _att_dot_get(self: VolumeAttachment) -> bool:
    bdt = self.instance.block_device_mapping.get(self.device)
    if bdt is not None and getattr(bdt, "volume_id", None) == self.volume.id:
        return bool(volumes._bool(bdt.delete_on_termination))
    return bool(self.__dict__.get("_ec2r_dot", False))


def _att_dot_set(self: VolumeAttachment, value: Any) -> None:
    self.__dict__["_ec2r_dot"] = bool(volumes._bool(value))


def _block_device_mapping_handler(self: Any) -> bool:
    mappings = self._get_param("BlockDeviceMappings", []) or []
    if not mappings:
        return False
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    self.error_on_dryrun()
    changes = []
    for m in mappings:
        dev = m.get("DeviceName")
        bdt = instance.block_device_mapping.get(dev)
        if bdt is None:
            raise err("InvalidInstanceAttributeValue", f"No device is currently mapped at {dev}")  # approximate
        value = volumes._bool((m.get("Ebs") or {}).get("DeleteOnTermination"))
        if value is not None:
            changes.append((bdt, value))
    for bdt, value in changes:
        bdt.delete_on_termination = value
    return True


def _describe_instance_attribute(self: Any) -> Any:
    if self._get_param("Attribute") != "blockDeviceMapping":
        return _orig["describe_instance_attribute"](self)
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    return ActionResult({"InstanceId": instance.id, "BlockDeviceMappings": [
        {"DeviceName": dev, "Ebs": {"VolumeId": bdt.volume_id, "Status": Instance.get_block_device_status(bdt.status),
                                    "AttachTime": bdt.attach_time,
                                    "DeleteOnTermination": bool(volumes._bool(bdt.delete_on_termination))}}
        for dev, bdt in instance.get_block_device_mapping]})


# --- install / reset ---------------------------------------------------------------------------
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    transitions.register_defaults(DEFAULTS)
    _orig["instance_init"] = Instance.__init__
    _orig["terminate"] = Instance.terminate
    _orig["reboot"] = Instance.reboot
    _orig["stop"] = Instance.stop
    _orig["start"] = Instance.start
    Instance.__init__ = _instance_init
    Instance._state = property(_state_get, _state_set)
    Instance.state_reason = _settled_attr("state_reason")
    Instance._reason = _settled_attr("reason")
    Instance.terminate = _terminate
    Instance.reboot = _reboot
    _orig["run_instances"] = InstanceBackend.run_instances
    InstanceBackend.run_instances = run_instances
    InstanceBackend.stop_instances = stop_instances
    InstanceBackend.start_instances = start_instances
    _orig["detach_volume"] = EBSBackend.detach_volume  # volumes.py's
    _orig["attach_volume"] = EBSBackend.attach_volume
    EBSBackend.detach_volume = detach_volume
    EBSBackend.attach_volume = attach_volume
    VolumeAttachment.delete_on_termination = property(_att_dot_get, _att_dot_set)
    InstanceResponse.stop_instances = _stop_response
    InstanceResponse.start_instances = _start_response
    InstanceResponse._parse_block_device_mapping = _parse_block_device_mapping
    InstanceResponse._block_device_mapping_handler = _block_device_mapping_handler
    _orig["describe_instance_attribute"] = InstanceResponse.describe_instance_attribute
    InstanceResponse.describe_instance_attribute = _describe_instance_attribute
    from .. import control

    control.register("instance-store", control_instance_store)


def reset() -> None:
    """Nothing to forget: the state lives on moto's instances, which moto's reset drops."""
