"""Corrections for EBS volumes (moto 5.2.5), each restoring a documented AWS behaviour.

Where AWS documents it (EC2 API reference pages are named by action; "EBS guide" is the
Amazon EBS User Guide):

 1. Pending states (API reference: CreateVolume, AttachVolume, DetachVolume, DeleteVolume,
    ModifyVolume, DescribeVolumesModifications; EBS guide "Amazon EBS volume lifecycle" and
    "Monitor the progress of volume modifications"). moto is `available`/`completed` at once.
    Volumes go creating -> available, attachments attaching -> attached, detaching -> gone
    (DetachVolume Force=true: at once), deleting -> gone; modifications modifying (old values
    still shown on the volume) -> optimizing (new values shown) -> completed with EndTime.
    Durations: ec2emu.transitions keys volume-create, -attach, -detach, -delete, -modify,
    -optimize. Only API calls are pending: volumes moto creates for RunInstances are at once.
 2. ClientToken (API reference: CreateVolume "ClientToken"; EC2 developer guide "Ensuring
    idempotency"): same token and parameters replay the first result; other parameters give
    IdempotentParameterMismatch. Per account and Region. Also RunInstances.
 3. Ranges and combinations (EBS guide "Amazon EBS volume types", CreateVolume and ModifyVolume
    API reference; VOLUME_TYPES below is the one table). Error codes and messages follow what
    AWS returns where known; messages marked "approximate" are close paraphrases.
    Unknown Availability Zone -> InvalidZone.NotFound "The zone 'x' does not exist." (what
    CreateVolume returns, hashicorp/terraform#6110). Unknown SnapshotId ->
    InvalidSnapshot.NotFound. A KMS key that is not enabled (KmsKeyId, the snapshot's key or
    the default key): AWS "authenticates the KMS key asynchronously" (CreateVolume API
    reference, KmsKeyId): the call succeeds with `creating`, then the volume disappears
    (DescribeVolumes -> InvalidVolume.NotFound; aws/aws-sdk-ruby#1222,
    kubernetes/kubernetes#48438), and replaying its ClientToken gives
    IdempotentParameterMismatch (kubernetes-sigs/aws-ebs-csi-driver#3010).
    ModifyVolume (EBS guide "Requirements for EBS volume modifications", "Modify a volume"):
    size only grows; one modification at a time until `completed` (IncorrectModificationState
    "Volume vol-x cannot be modified in modification state MODIFYING", as AWS words it); at most
    4 per rolling 24 h by the emulator clock (VolumeModificationRateExceeded, AWS's code and
    message); a type change without Iops resets iops to the new type's default (3000 for
    gp3/io1/io2), without Throughput resets gp3 throughput to 125 (ModifyVolume API reference).
 4. Multi-Attach (EBS guide "Attach a volume to multiple instances with Amazon EBS
    Multi-Attach"): io1/io2 with MultiAttachEnabled take up to 16 instances in the volume's AZ;
    otherwise a second attach -> VolumeInUse. Changed in place by ModifyVolume MultiAttachEnabled
    (EBS guide "Enable Multi-Attach", "Disable Multi-Attach"): only on io2 (io1 keeps what it
    was created with), enabled only while attached to no instance, disabled only while attached
    to at most one; otherwise a 4xx (AWS documents no code: InvalidParameterValue here).
    Other AZ -> InvalidVolume.ZoneMismatch; device
    in use on the instance -> InvalidParameterValue "Attachment point /dev/sdf is already in
    use"; detaching an unattached volume -> IncorrectState (moto: HTTP 500).
 5. DescribeVolumes / DescribeVolumesModifications pagination (API reference: MaxResults 5..500,
    NextToken, "You cannot specify this parameter and the volume IDs parameter in the same
    request" -> InvalidParameterCombination); filter multi-attach-enabled (moto: HTTP 500).
 6. Tags (EC2 user guide "Tag restrictions"): keys starting with `aws:` are rejected in
    CreateTags, DeleteTags and TagSpecifications (InvalidParameterValue "Tag keys starting
    with 'aws:' are reserved for internal use"); more than 50 tags -> TagLimitExceeded, also
    checked before a resource is created from TagSpecifications.
 7. Encryption by default (EBS guide "Enable Amazon EBS encryption by default"): new volumes
    are encrypted with the default EBS KMS key; volumes from an encrypted snapshot keep the
    snapshot's key unless KmsKeyId is given (EBS guide "Encryption rules"). Without Size, a
    volume from a snapshot has the snapshot's size (CreateVolume API reference, Size: "The default
    is the snapshot size"; moto took the source volume's current size).
 8. DescribeVolumesModifications answers the latest modification of each volume only (API
    reference, DescribeVolumesModifications: "Describes the most recent volume modification
    request for the specified EBS volumes"), with or without VolumeIds, and its filters
    (`modification-state`, ...) apply to that latest one. moto answered every modification a
    volume ever had, so `modification-state=failed` listed a failure a later modification had
    replaced.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError, InvalidVolumeIdError, VolumeInUseError
from moto.ec2.models import elastic_block_store as ebs_models
from moto.ec2.models.block_device import BlockDeviceType
from moto.ec2.models.elastic_block_store import EBSBackend, Volume, VolumeAttachment, VolumeModification
from moto.ec2.responses._base_response import EC2BaseResponse
from moto.ec2.utils import generic_filter
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.tags import TagResponse

from .. import clock, transitions

# --- the one table of volume limits ----------------------------------------------------------
# EBS guide "Amazon EBS volume types" (general purpose and provisioned IOPS pages), with the
# larger gp3 limits (65536 GiB, 80000 IOPS, 2000 MiB/s). Ratios are per GiB (iops) and per
# provisioned IOPS (throughput); gp3's 3000 IOPS / 125 MiB/s baseline is allowed at any size.
VOLUME_TYPES: dict[str, dict[str, Any]] = {
    "gp3": {"size": (1, 65536), "iops": (3000, 80000), "iops_per_gib": 500, "iops_baseline": 3000,
            "throughput": (125, 2000), "throughput_per_iops": 0.25, "throughput_baseline": 125},
    "gp2": {"size": (1, 16384)},
    "io1": {"size": (4, 16384), "iops": (100, 64000), "iops_per_gib": 50, "iops_required": True,
            "multi_attach": True},
    "io2": {"size": (4, 65536), "iops": (100, 256000), "iops_per_gib": 1000, "iops_required": True,
            "multi_attach": True},
    "st1": {"size": (125, 16384)},
    "sc1": {"size": (125, 16384)},
    "standard": {"size": (1, 1024)},
}
DEFAULT_TYPE = "gp2"  # CreateVolume API reference: VolumeType "Default: gp2"
TYPE_CHANGE_DEFAULT_IOPS = 3000  # ModifyVolume: new type gp3/io1/io2 without Iops
GP3_DEFAULT_THROUGHPUT = 125
MAX_ATTACHMENTS = 16  # Multi-Attach: up to 16 Nitro instances
MAX_MODIFICATIONS_PER_DAY = 4
MAX_TAGS = 50

_orig: dict[str, Any] = {}
# ClientToken -> (fingerprint of the parameters, result object), keyed by (account, Region, token).
_tokens: dict[tuple[str, str, str], tuple[str, Any]] = {}


def err(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, bool) else str(value).lower() == "true"


# --- validation --------------------------------------------------------------------------------
def validate_volume(vtype: str, size: int | None, iops: int | None, throughput: int | None,
                    multi_attach: bool | None) -> None:
    """Checks a volume configuration against VOLUME_TYPES, the way CreateVolume and ModifyVolume
    do before acting."""
    if vtype not in VOLUME_TYPES:
        raise err("InvalidParameterValue",
                  f"Value ({vtype}) for parameter volumeType is invalid. "
                  f"Valid values: {', '.join(VOLUME_TYPES)}.")  # approximate
    limits = VOLUME_TYPES[vtype]
    if size is not None:
        low, high = limits["size"]
        if size < low:
            raise err("InvalidParameterValue", f"Volume of {size}GiB is too small; minimum is {low}GiB.")
        if size > high:
            raise err("InvalidParameterValue", f"Volume of {size}GiB is too large; maximum is {high}GiB.")
    if "iops" not in limits:
        if iops is not None:
            raise err("InvalidParameterCombination", f"The parameter iops is not supported for {vtype} volumes.")
    elif iops is None:
        if limits.get("iops_required"):
            raise err("InvalidParameterCombination",
                      f"The parameter iops must be specified for {vtype} volumes.")  # approximate
    else:
        low, high = limits["iops"]
        if iops < low:
            raise err("InvalidParameterValue", f"Volume iops of {iops} is too low; minimum is {low}.")
        if iops > high:
            raise err("InvalidParameterValue", f"Volume iops of {iops} is too high; maximum is {high}.")
        ratio = limits["iops_per_gib"]
        if size and iops > limits.get("iops_baseline", 0) and iops > size * ratio:
            raise err("InvalidParameterValue",
                      f"Iops to volume size ratio of {iops / size:.6f} is too high; maximum is {ratio:.6f}.")
    if "throughput" not in limits:
        if throughput is not None:
            raise err("InvalidParameterCombination",
                      f"The parameter throughput is not supported for {vtype} volumes.")
    elif throughput is not None:
        low, high = limits["throughput"]
        if throughput < low:
            raise err("InvalidParameterValue", f"Volume throughput of {throughput} is too low; minimum is {low}.")
        if throughput > high:
            raise err("InvalidParameterValue", f"Volume throughput of {throughput} is too high; maximum is {high}.")
        effective_iops = iops if iops is not None else limits["iops_baseline"]
        per_iops = limits["throughput_per_iops"]
        if throughput > limits["throughput_baseline"] and throughput > effective_iops * per_iops:
            raise err("InvalidParameterValue",
                      f"Throughput (MiBps) to iops ratio of {throughput / effective_iops:.6f} is too high; "
                      f"maximum is {per_iops:.6f} MiBps per iops.")
    if multi_attach and not limits.get("multi_attach"):
        raise err("InvalidParameterCombination",
                  f"Multi-Attach is supported only for io1 and io2 volumes, not {vtype}.")  # approximate


def _check_zone(backend: Any, zone: str | None) -> None:
    if not zone:
        raise err("MissingParameter", "The request must contain the parameter AvailabilityZone")
    if backend.get_zone_by_name(zone) is None:
        raise err("InvalidZone.NotFound", f"The zone '{zone}' does not exist.")


def _check_tag_keys(keys: Any) -> None:
    for key in keys:
        if str(key).lower().startswith("aws:"):
            raise err("InvalidParameterValue",
                      f"Value ( {key} ) for parameter key is invalid. "
                      "Tag keys starting with 'aws:' are reserved for internal use")


# --- lazy pending states ------------------------------------------------------------------------
def _latched(obj: Any, started_attr: str, key: str) -> bool:
    """True once `key`'s duration has elapsed since obj.<started_attr>; latched so that a later,
    longer duration setting never moves a finished transition backwards (AWS states only move
    forwards). Objects without a start time (made internally by moto) are done."""
    d = obj.__dict__
    started = d.get(started_attr)
    if started is None or d.get(f"{started_attr}_done"):
        return True
    if transitions.done(started, key):
        d[f"{started_attr}_done"] = True
        return True
    return False


def _pending_set(backend: Any) -> set:
    return backend.__dict__.setdefault("_ec2r_pending", set())


def _settle(backend: Any) -> None:
    """Applies transitions that have run their course: detachments finish, deletions and
    asynchronously failed creations disappear. Only volumes with such a transition are looked at."""
    pending = _pending_set(backend)
    for volume_id in list(pending):
        volume = backend.volumes.get(volume_id)
        if volume is None:
            pending.discard(volume_id)
            continue
        d = volume.__dict__
        if d.get("_ec2r_deleting_at") is not None and _latched(volume, "_ec2r_deleting_at", "volume-delete"):
            backend.volumes.pop(volume_id, None)
            pending.discard(volume_id)
            continue
        if d.get("_ec2r_doomed") and _latched(volume, "_ec2r_created_at", "volume-create"):
            backend.volumes.pop(volume_id, None)
            pending.discard(volume_id)
            continue
        still = False
        for att in list(d.get("_ec2r_attachments", [])):
            if att.__dict__.get("_ec2r_detaching_at") is not None:
                if _latched(att, "_ec2r_detaching_at", "volume-detach"):
                    _finish_detach(volume, att)
                else:
                    still = True
        if not still and not d.get("_ec2r_doomed") and d.get("_ec2r_deleting_at") is None:
            pending.discard(volume_id)


def _finish_detach(volume: Volume, att: VolumeAttachment) -> None:
    atts = volume.__dict__.setdefault("_ec2r_attachments", [])
    if att in atts:
        atts.remove(att)
    bdm = att.instance.block_device_mapping
    if att.device in bdm and getattr(bdm[att.device], "volume_id", None) == volume.id:
        del bdm[att.device]
    att.__dict__["_ec2r_status"] = "detached"


# --- Volume model: status, attachments, staged modification values, filters -----------------
def _volume_status(self: Volume) -> str:
    d = self.__dict__
    if d.get("_ec2r_deleting_at") is not None:
        return "deleting"
    if not _latched(self, "_ec2r_created_at", "volume-create"):
        return "creating"
    return "in-use" if d.get("_ec2r_attachments") else "available"


def _get_attachment(self: Volume) -> VolumeAttachment | None:
    atts = self.__dict__.get("_ec2r_attachments") or []
    return atts[0] if atts else None


def _set_attachment(self: Volume, value: VolumeAttachment | None) -> None:
    # moto's own code sets `volume.attachment`: None clears, a value replaces.
    self.__dict__["_ec2r_attachments"] = [] if value is None else [value]


def _get_attachments(self: Volume) -> list[VolumeAttachment]:
    return list(self.__dict__.get("_ec2r_attachments") or [])


def _modification_phase(mod: VolumeModification) -> tuple[str, int]:
    d = mod.__dict__
    started = d.get("_ec2r_started")
    if started is None or d.get("_ec2r_end") is not None:
        return "completed", 100
    modify, optimize = transitions.duration("volume-modify"), transitions.duration("volume-optimize")
    elapsed = transitions.elapsed(started)
    total = modify + optimize
    if elapsed >= total:
        d["_ec2r_end"] = started + timedelta(seconds=total)
        return "completed", 100
    progress = int(elapsed * 100 / total) if total > 0 else 100
    return ("modifying" if elapsed < modify else "optimizing"), min(progress, 99)


def _staged(name: str) -> property:
    """A Volume attribute that shows the pre-modification value while the latest modification
    is still `modifying`; AWS reports the new size/type/iops/throughput from `optimizing` on."""
    slot = f"_ec2r_{name}"

    def get(self: Volume) -> Any:
        mods = self.__dict__.get("modifications") or []
        if mods:
            mod = mods[-1]
            original = mod.__dict__.get("_ec2r_original")
            if original is not None and _modification_phase(mod)[0] == "modifying":
                return original[name]
        return self.__dict__.get(slot)

    def set_(self: Volume, value: Any) -> None:
        self.__dict__[slot] = value

    return property(get, set_)


_ATTACHMENT_FIELDS = {
    "attachment.attach-time": lambda a: a.attach_time,
    "attachment.delete-on-termination": lambda a: str(bool(getattr(a, "delete_on_termination", False))).lower(),
    "attachment.device": lambda a: a.device,
    "attachment.instance-id": lambda a: a.instance.id,
    "attachment.status": lambda a: a.status,
}


def _volume_filter_value(self: Volume, filter_name: str, method_name: str | None = None) -> Any:
    if filter_name in _ATTACHMENT_FIELDS:
        values = [_ATTACHMENT_FIELDS[filter_name](a) for a in self.attachments]
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    if filter_name == "multi-attach-enabled":
        return str(bool(self.multi_attach_enabled)).lower()
    if filter_name == "volume-type":
        return self.volume_type
    return _orig["volume_filter"](self, filter_name, method_name)


def _attachment_status_get(self: VolumeAttachment) -> str:
    d = self.__dict__
    if d.get("_ec2r_status") == "detached":
        return "detached"
    if d.get("_ec2r_detaching_at") is not None:
        return "detaching"
    if not _latched(self, "_ec2r_attaching_at", "volume-attach"):
        return "attaching"
    return "attached"


def _attachment_status_set(self: VolumeAttachment, value: str) -> None:
    if value == "detached":
        self.__dict__["_ec2r_status"] = value


def _modification_filter_value(self: VolumeModification, filter_name: str) -> Any:
    fields = {
        "modification-state": lambda: self.modification_state,
        "original-iops": lambda: self.original_iops,
        "target-iops": lambda: self.target_iops,
        "original-multi-attach-enabled": lambda: str(bool(self.original_multi_attach_enabled)).lower(),
        "target-multi-attach-enabled": lambda: str(bool(self.target_multi_attach_enabled)).lower(),
        "target-throughput": lambda: self.target_throughput,
        "start-time": lambda: self.start_time,
    }
    if filter_name in fields:
        return fields[filter_name]()
    return _orig["modification_filter"](self, filter_name)


def _end_time_get(self: VolumeModification) -> Any:
    if self.__dict__.get("_ec2r_started") is None:
        return self.__dict__.get("_ec2r_end_time")
    _modification_phase(self)
    return self.__dict__.get("_ec2r_end")


def _end_time_set(self: VolumeModification, value: Any) -> None:
    self.__dict__["_ec2r_end_time"] = value


# --- EBSBackend replacements -------------------------------------------------------------------
def _default_kms_key(backend: Any) -> str:
    try:
        from . import images

        return images.default_ebs_kms_key_arn(backend.region_name, backend.account_id)
    except (ImportError, AttributeError):
        return backend.default_kms_key_id or backend._create_default_encryption_key()


def _key_usable(backend: Any, key_ref: str) -> bool:
    try:
        from .images import resolve_key_arn
    except ImportError:
        resolve_key_arn = None
    if resolve_key_arn is not None:
        return resolve_key_arn(backend.account_id, backend.region_name, key_ref) is not None
    from moto.kms.models import kms_backends

    try:
        key = kms_backends[backend.account_id][backend.region_name].describe_key(key_ref)
    except Exception:
        return False
    return getattr(key, "enabled", True)


def create_volume(self: EBSBackend, size: int, zone_name: str, snapshot_id: str | None = None,
                  encrypted: bool = False, kms_key_id: str | None = None, **kwargs: Any) -> Volume:
    """Encryption by default and snapshot encryption (rule 7), then moto's create_volume."""
    if getattr(self, "ebs_encryption_by_default", False):
        encrypted = True
    snapshot = self.snapshots.get(snapshot_id) if snapshot_id else None
    if snapshot is not None and size is None:
        size = snapshot.volume_size  # "The default is the snapshot size" (moto: the live volume's)
    if snapshot is not None and not kms_key_id and snapshot.encrypted:
        encrypted = True
        kms_key_id = snapshot.kms_key_id
    if encrypted and not kms_key_id:
        kms_key_id = _default_kms_key(self)
    if kwargs.get("volume_type") == "gp3" and not kwargs.get("throughput"):
        kwargs["throughput"] = GP3_DEFAULT_THROUGHPUT  # AWS reports gp3's baseline throughput
    return _orig["create_volume"](self, size, zone_name, snapshot_id=snapshot_id, encrypted=encrypted,
                                  kms_key_id=kms_key_id, **kwargs)


def get_volume(self: EBSBackend, volume_id: str) -> Volume:
    _settle(self)
    return _orig["get_volume"](self, volume_id)


def describe_volumes(self: EBSBackend, volume_ids: list[str] | None = None, filters: Any = None) -> list[Volume]:
    _settle(self)
    return _orig["describe_volumes"](self, volume_ids=volume_ids, filters=filters)


def attach_volume(self: EBSBackend, volume_id: str, instance_id: str, device_path: str,
                  delete_on_termination: bool = False, pending: bool = False) -> VolumeAttachment:
    """Multi-Attach aware attach (rule 4). `pending` (API calls only) starts in `attaching`."""
    volume = self.get_volume(volume_id)
    instance = self.get_instance(instance_id)
    if volume.status not in ("available", "in-use"):
        raise err("IncorrectState", f"{volume_id} is not 'available'.")
    attachments = volume.attachments
    if any(a.instance.id == instance.id for a in attachments):
        raise err("VolumeInUse", f"{volume_id} is already attached to an instance")
    if attachments and not volume.multi_attach_enabled:
        raise err("VolumeInUse", f"{volume_id} is already attached to an instance")
    if len(attachments) >= MAX_ATTACHMENTS:
        raise err("AttachmentLimitExceeded",  # approximate: the code AWS uses for attachment limits
                  f"Volume {volume_id} is already attached to {MAX_ATTACHMENTS} instances")
    zone = volume.zone.name if volume.zone else None
    if instance.availability_zone != zone:
        raise err("InvalidVolume.ZoneMismatch",
                  f"The volume '{volume_id}' is not in the same availability zone as instance '{instance.id}'")
    if device_path in instance.block_device_mapping:
        raise err("InvalidParameterValue", f"Attachment point {device_path} is already in use")
    att = VolumeAttachment(volume, instance, device_path, "attached")
    att.attach_time = clock.now()
    att.delete_on_termination = bool(delete_on_termination)
    if pending:
        att.__dict__["_ec2r_attaching_at"] = att.attach_time
    volume.__dict__.setdefault("_ec2r_attachments", []).append(att)
    instance.block_device_mapping[device_path] = BlockDeviceType(
        volume_id=volume_id, status="in-use", size=volume.size, attach_time=att.attach_time,
        delete_on_termination=bool(delete_on_termination))
    return att


def detach_volume(self: EBSBackend, volume_id: str, instance_id: str | None, device_path: str | None,
                  pending: bool = False) -> VolumeAttachment:
    """Detach one attachment (rule 4). `pending` (API calls without Force) goes `detaching`."""
    volume = self.get_volume(volume_id)
    if instance_id:
        self.get_instance(instance_id)  # InvalidInstanceID.NotFound
    attachments = volume.attachments
    if not attachments:
        raise err("IncorrectState", f"Volume '{volume_id}' is in the '{volume.status}' state.")
    candidates = [a for a in attachments if not instance_id or a.instance.id == instance_id]
    if not candidates:
        raise err("InvalidAttachment.NotFound",
                  f"Volume {volume_id} can not be detached from {instance_id} because it is not attached")
    if device_path:
        candidates = [a for a in candidates if a.device == device_path]
        if not candidates:
            raise err("InvalidAttachment.NotFound",
                      f"The volume {volume_id} is not attached to instance {instance_id} as device {device_path}")
    if len(candidates) > 1:
        raise err("InvalidParameterCombination",  # approximate
                  f"Volume {volume_id} is attached to several instances: specify InstanceId")
    att = candidates[0]
    if pending:
        if att.__dict__.get("_ec2r_detaching_at") is None:
            att.__dict__["_ec2r_detaching_at"] = clock.now()
            _pending_set(self).add(volume_id)
        _settle(self)  # a zero duration detaches at once
    else:
        _finish_detach(volume, att)
    return att


def delete_volume(self: EBSBackend, volume_id: str, pending: bool = False) -> Volume:
    _settle(self)
    volume = self.volumes.get(volume_id)
    if volume is None:
        raise InvalidVolumeIdError(volume_id)
    if volume.attachments:
        raise VolumeInUseError(volume_id, volume.attachments[0].instance.id)
    if not pending:
        return self.volumes.pop(volume_id)
    if volume.__dict__.get("_ec2r_deleting_at") is None:
        volume.__dict__["_ec2r_deleting_at"] = clock.now()
        _pending_set(self).add(volume_id)
    _settle(self)
    return volume


def _check_multi_attach_change(volume: Volume, new_type: str, enable: bool) -> None:
    """Multi-Attach changed in place (correction 4): io2 only, and only with no attachment
    (enable) or at most one (disable)."""
    verb = "enable" if enable else "disable"
    if new_type != "io2":
        raise err("InvalidParameterValue",
                  f"Multi-Attach can only be {verb}d on io2 volumes after creation (approximate)")
    attached = len(_get_attachments(volume))
    if enable and attached > 0:
        raise err("InvalidParameterValue",
                  "Multi-Attach can only be enabled on a volume that is not attached (approximate)")
    if not enable and attached > 1:
        raise err("InvalidParameterValue",
                  "Multi-Attach can only be disabled on a volume attached to at most one instance (approximate)")


def modify_volume(self: EBSBackend, volume_id: str, target_size: Any = None, target_volume_type: Any = None,
                  target_iops: Any = None, target_throughput: Any = None,
                  target_multi_attach_enabled: Any = None) -> Volume:
    """ModifyVolume with AWS's rules (rule 3) and a modifying -> optimizing -> completed record."""
    volume = self.get_volume(volume_id)
    size, iops, throughput = _int(target_size), _int(target_iops), _int(target_throughput)
    multi = _bool(target_multi_attach_enabled)
    if all(v is None for v in (size, target_volume_type, iops, throughput, multi)):
        raise err("InvalidParameterValue",
                  "Invalid input: Must specify at least one of size, type, iops, throughput, multi_attach_enabled")
    if volume.status not in ("available", "in-use"):
        raise err("IncorrectState", f"The volume '{volume_id}' is in the '{volume.status}' state.")
    mods = volume.modifications
    if mods:
        state = _modification_phase(mods[-1])[0]
        if state != "completed":
            raise err("IncorrectModificationState",
                      f"Volume {volume_id} cannot be modified in modification state {state.upper()}")
    now = clock.now()
    recent = [m for m in mods if m.start_time and m.start_time > now - timedelta(hours=24)]
    if len(recent) >= MAX_MODIFICATIONS_PER_DAY:
        raise err("VolumeModificationRateExceeded",
                  "You've reached the maximum modification rate per volume limit. "
                  "Wait at least 6 hours between modifications per EBS volume.")

    current = {n: getattr(volume, n) for n in ("size", "volume_type", "iops", "throughput", "multi_attach_enabled")}
    new_type = target_volume_type or current["volume_type"]
    type_changed = new_type != current["volume_type"]
    new_size = size if size is not None else current["size"]
    if size is not None and size < current["size"]:
        raise err("InvalidParameterValue", "New size cannot be smaller than existing size")
    limits = VOLUME_TYPES.get(new_type, {})
    if iops is None:
        if "iops" not in limits:
            iops = None
        elif type_changed:
            iops = TYPE_CHANGE_DEFAULT_IOPS
        else:
            iops = current["iops"]
    if throughput is None:
        if "throughput" not in limits:
            throughput = None
        elif type_changed:
            throughput = GP3_DEFAULT_THROUGHPUT
        else:
            throughput = current["throughput"] or GP3_DEFAULT_THROUGHPUT
    if multi is not None and multi != bool(current["multi_attach_enabled"]):
        _check_multi_attach_change(volume, new_type, multi)
    if multi is None:
        multi = bool(current["multi_attach_enabled"]) and bool(limits.get("multi_attach"))
    validate_volume(new_type, new_size, iops, throughput, multi)

    mod = VolumeModification(volume, target_size=new_size)
    target = {"size": new_size, "volume_type": new_type, "iops": iops, "throughput": throughput,
              "multi_attach_enabled": multi}
    for name, value in target.items():
        setattr(mod, f"original_{name}", current[name])
        setattr(mod, f"target_{name}", value)
    mod.start_time = now
    mod.__dict__["_ec2r_started"] = now
    mod.__dict__["_ec2r_original"] = current
    volume.modifications.append(mod)
    for name, value in target.items():
        setattr(volume, name, value)
    return volume


# --- Response (Query API) wrappers -----------------------------------------------------------
def _fingerprint(response: Any) -> str:
    params = {k: v for k, v in response.querystring.items() if k not in ("Action", "Version", "ClientToken")}
    return json.dumps(params, sort_keys=True, default=str)


def _idempotent(action: str, make_result):
    """Wraps a response method taking ClientToken (rule 2)."""

    def wrapper(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if not token:
            return make_result(self)
        key = (self.current_account, self.region, f"{action}:{token}")
        fingerprint = _fingerprint(self)
        seen = _tokens.get(key)
        if seen is not None:
            if seen[0] != fingerprint:
                raise err("IdempotentParameterMismatch",
                          "The client token you have provided is associated with a resource that is "
                          "already deleted or has different parameters. Please use a different client token.")
            obj = seen[1]
            if isinstance(obj, Volume) and obj.__dict__.get("_ec2r_doomed") and obj.id not in self.ec2_backend.volumes:
                raise err("IdempotentParameterMismatch", "resource already deleted")
            return ActionResult(obj)
        result = make_result(self)
        _tokens[key] = (fingerprint, result.result)
        return result

    return wrapper


def _create_volume_response(self: Any) -> ActionResult:
    """Validation before moto acts (rule 3), then pending `creating` (rule 1)."""
    backend = self.ec2_backend
    vtype = self._get_param("VolumeType") or DEFAULT_TYPE
    size = _int(self._get_param("Size"))
    snapshot_id = self._get_param("SnapshotId")
    kms_key_id = self._get_param("KmsKeyId")
    _check_zone(backend, self._get_param("AvailabilityZone"))
    snapshot = None
    if snapshot_id:
        snapshot = backend.snapshots.get(snapshot_id)
        if snapshot is None:
            raise err("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
    elif size is None:
        raise err("MissingParameter", "The request must contain the parameter size or snapshotId")
    if snapshot is not None and size is not None and size < snapshot.volume_size:
        raise err("InvalidParameterValue",
                  f"Volume of {size}GiB is too small; minimum is {snapshot.volume_size}GiB.")
    effective_size = size if size is not None else (snapshot.volume_size if snapshot else None)
    validate_volume(vtype, effective_size, _int(self._get_param("Iops")), _int(self._get_param("Throughput")),
                    _bool(self._get_param("MultiAttachEnabled")))
    result = _orig["create_volume_response"](self)
    volume = result.result
    volume.__dict__["_ec2r_created_at"] = clock.now()
    # The key actually used, whether given, inherited from the snapshot or the default key
    # (rule 3d also for a snapshot whose key has since been disabled).
    key_ref = volume.kms_key_id or kms_key_id
    if volume.encrypted and not (_key_usable(backend, key_ref) and _caller_may_use(self, backend, key_ref)):
        # AWS accepts the call and fails the creation asynchronously: the volume vanishes.
        volume.__dict__["_ec2r_doomed"] = True
        _pending_set(backend).add(volume.id)
    return result


def _caller_may_use(response: Any, backend: Any, key_ref: str) -> bool:
    """Rule 3d for a key the caller's IAM policy does not let EBS use (ec2emu/iam.py)."""
    from .. import iam
    from .images import resolve_key_arn

    arn = resolve_key_arn(backend.account_id, backend.region_name, key_ref) or key_ref
    return iam.may_use_key_through_ebs(response.headers.get("Authorization", ""), backend.region_name, arn)


def _attach_volume_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    att = self.ec2_backend.attach_volume(self._get_param("VolumeId"), self._get_param("InstanceId"),
                                         self._get_param("Device"), pending=True)
    return ActionResult({"VolumeId": att.volume.id, "InstanceId": att.instance.id, "Device": att.device,
                         "State": att.status, "AttachTime": att.attach_time,
                         "DeleteOnTermination": att.delete_on_termination})


def _detach_volume_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    force = bool(_bool(self._get_param("Force")))
    att = self.ec2_backend.detach_volume(self._get_param("VolumeId"), self._get_param("InstanceId"),
                                         self._get_param("Device"), pending=not force)
    return ActionResult({"VolumeId": att.volume.id, "InstanceId": att.instance.id, "Device": att.device,
                         "State": att.status, "AttachTime": att.attach_time,
                         "DeleteOnTermination": att.delete_on_termination})


def _delete_volume_response(self: Any) -> EmptyResult:
    volume_id = self._get_param("VolumeId")
    self.error_on_dryrun()
    self.ec2_backend.delete_volume(volume_id, pending=True)
    return EmptyResult()


def _encode_token(kind: str, after: Any) -> str:
    raw = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(kind: str, token: str) -> Any:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["k"] == kind:
            return data["a"]
    except (ValueError, KeyError, TypeError):
        pass
    raise err("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")


def paginate(items: list, key, kind: str, max_results: int | None, token: str | None) -> tuple[list, str | None]:
    """Stable key-ordered pages: the token names the last key returned, so items created or
    deleted between pages never shift the others. NextToken is absent on the last page."""
    items = sorted(items, key=key)
    if token:
        after = _decode_token(kind, token)
        items = [i for i in items if _key_json(key(i)) > _key_json(after)]
    if max_results is None or len(items) <= max_results:
        return items, None
    page = items[:max_results]
    return page, _encode_token(kind, _key_json(key(page[-1])))


def _key_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _max_results(self: Any, low: int, high: int) -> int | None:
    value = _int(self._get_param("MaxResults"))
    if value is not None and not low <= value <= high:
        raise err("InvalidParameterValue",
                  f"Value ( {value} ) for parameter maxResults is invalid. "
                  f"Expecting a value between {low} and {high}.")  # approximate
    return value


def _describe_volumes_response(self: Any) -> ActionResult:
    filters = self._filters_from_querystring()
    volume_ids = self._get_param("VolumeIds", [])
    max_results = _max_results(self, 5, 500)
    if max_results is not None and volume_ids:
        raise err("InvalidParameterCombination", "The parameter volumeSet cannot be used with the parameter maxResults")
    volumes = self.ec2_backend.describe_volumes(volume_ids=volume_ids, filters=filters)
    page, next_token = paginate(volumes, lambda v: v.id, "volumes", max_results, self._get_param("NextToken"))
    return ActionResult({"Volumes": page, "NextToken": next_token})


def _describe_modifications_response(self: Any) -> ActionResult:
    filters = self._filters_from_querystring()
    volume_ids = self._get_param("VolumeIds", [])
    max_results = _max_results(self, 1, 500)  # API reference: "up to a limit of 500"
    # Item 8: the latest modification of each volume, then the filters on those.
    every = self.ec2_backend.describe_volumes_modifications(volume_ids=volume_ids, filters=None)
    latest: dict[str, VolumeModification] = {}
    for mod in every:  # moto appends: the last of a volume is its latest
        latest[mod.volume_id] = mod
    mods = list(latest.values())
    if filters:
        mods = generic_filter(filters, mods)
    index = {id(m): i for i, m in enumerate(mods)}
    page, next_token = paginate(mods, lambda m: (m.volume_id, m.start_time.isoformat(), index[id(m)]),
                                "modifications", max_results, self._get_param("NextToken"))
    return ActionResult({"VolumesModifications": page, "NextToken": next_token})


def _parse_tag_specification(self: Any, *args: Any, **kwargs: Any) -> dict:
    tags = _orig["parse_tag_specification"](self, *args, **kwargs)
    for resource_tags in tags.values():
        _check_tag_keys(resource_tags)
        if len([k for k in resource_tags if not k.lower().startswith("aws:")]) > MAX_TAGS:
            raise err("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
    return tags


def _tag_response(name: str):
    def wrapper(self: Any) -> Any:
        _check_tag_keys(tag["Key"] for tag in self._get_param("Tags", []))
        return _orig[name](self)

    return wrapper


# --- install / reset ------------------------------------------------------------------------------
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    # Times moto records for volumes (CreateTime, AttachTime, modification StartTime) come from
    # the emulator clock, so they agree with the transitions and the 24-hour rule.
    ebs_models.utcnow = clock.now

    Volume.status = property(_volume_status)
    Volume.attachment = property(_get_attachment, _set_attachment)
    Volume.attachments = property(_get_attachments)
    for name in ("size", "volume_type", "iops", "throughput", "multi_attach_enabled"):
        setattr(Volume, name, _staged(name))
    _orig["volume_filter"] = Volume.get_filter_value
    Volume.get_filter_value = _volume_filter_value
    VolumeAttachment.status = property(_attachment_status_get, _attachment_status_set)
    VolumeAttachment.delete_on_termination = False
    VolumeModification.modification_state = property(lambda self: _modification_phase(self)[0])
    VolumeModification.progress = property(lambda self: _modification_phase(self)[1])
    VolumeModification.end_time = property(_end_time_get, _end_time_set)
    _orig["modification_filter"] = VolumeModification.get_filter_value
    VolumeModification.get_filter_value = _modification_filter_value

    _orig["create_volume"] = EBSBackend.create_volume
    _orig["get_volume"] = EBSBackend.get_volume
    _orig["describe_volumes"] = EBSBackend.describe_volumes
    EBSBackend.create_volume = create_volume
    EBSBackend.get_volume = get_volume
    EBSBackend.describe_volumes = describe_volumes
    EBSBackend.attach_volume = attach_volume
    EBSBackend.detach_volume = detach_volume
    EBSBackend.delete_volume = delete_volume
    EBSBackend.modify_volume = modify_volume

    _orig["create_volume_response"] = ElasticBlockStore.create_volume
    ElasticBlockStore.create_volume = _idempotent("CreateVolume", _create_volume_response)
    ElasticBlockStore.attach_volume = _attach_volume_response
    ElasticBlockStore.detach_volume = _detach_volume_response
    ElasticBlockStore.delete_volume = _delete_volume_response
    ElasticBlockStore.describe_volumes = _describe_volumes_response
    ElasticBlockStore.describe_volumes_modifications = _describe_modifications_response
    InstanceResponse.run_instances = _idempotent("RunInstances", InstanceResponse.run_instances)

    _orig["parse_tag_specification"] = EC2BaseResponse._parse_tag_specification
    EC2BaseResponse._parse_tag_specification = _parse_tag_specification
    for name in ("create_tags", "delete_tags"):
        _orig[name] = getattr(TagResponse, name)
        setattr(TagResponse, name, _tag_response(name))


def reset() -> None:
    """moto's reset drops every backend (and the pending sets stored on them); the ClientToken
    store lives here."""
    _tokens.clear()
