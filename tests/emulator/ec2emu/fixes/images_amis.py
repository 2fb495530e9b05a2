"""AMI corrections: CreateImage, RegisterImage, CopyImage, DescribeImages, DeregisterImage,
launch permissions.

AWS behaviour restored, with sources (EC2 API reference pages of each action; EC2 user guide,
"Amazon Machine Images"):
  * An AMI's block device mappings are real: CreateImage takes one snapshot per EBS volume
    attached to the instance (size, type, IOPS, throughput, encryption and key of the volume;
    the root device name of the instance); RegisterImage keeps the mappings, root device name,
    architecture, virtualization type, boot mode, ENA support it is given; CopyImage copies
    every snapshot. CreateImage's BlockDeviceMappings with NoDevice leave a volume out.
    moto: one fake 15 GiB `standard` snapshot for every AMI, whatever the call.
    (Here moto's Ami constructor no longer makes that fake volume and snapshot at all.)
  * DescribeImages' EbsBlockDevice carries Encrypted but not KmsKeyId ("KmsKeyId ... is only
    supported on BlockDeviceMapping objects called by RunInstances, RequestSpotFleet and
    RequestSpotInstances", EbsBlockDevice data type); the key shows on the snapshots.
  * AMI names are unique per account and Region: InvalidAMIName.Duplicate (CreateImage,
    RegisterImage, CopyImage). Names are 3-128 characters of letters, digits, ( ) [ ] space . / -
    ' @ _ (InvalidAMIName.Malformed).
  * CreateImage is asynchronous: the image is `pending` until its snapshots complete, then
    `available` (CreateImage API reference); here both follow the `image` duration. CopyImage
    likewise with `copy-image`. RegisterImage of existing snapshots is available at once.
  * CreateImage reboots the instance unless NoReboot=true. moto cannot show an instance
    rebooting (no state change is visible on AWS either, only a short outage), so the emulator
    records it: `reboots(instance_id)` counts the reboots CreateImage caused and the image keeps
    `no_reboot`. TagSpecifications may tag the image and the snapshots (moto: HTTP 500 for
    `snapshot`).
  * RegisterImage: a mapping naming a snapshot that does not exist is InvalidSnapshot.NotFound,
    one that is not `completed` IncorrectState; Encrypted or KmsKeyId on a snapshot mapping,
    volume types/sizes/IOPS/throughput outside the EBS guide's ranges, and Architecture /
    VirtualizationType / BootMode outside the API's valid values are refused (see
    _register_mapping and _check_enum). With ImageLocation (an S3 manifest) the AMI is instance
    store-backed (RootDeviceType `instance-store`), otherwise `ebs`, and an EBS-backed AMI's root
    device (RootDeviceName, default /dev/sda1) needs an EBS mapping with a snapshot
    (InvalidBlockDeviceMapping). Defaults as documented in the RegisterImage API reference:
    Architecture `i386`, VirtualizationType `paravirtual` (the controller should send both).
  * CreateImage refuses an instance that is neither running nor stopped; its
    BlockDeviceMappings change only DeleteOnTermination of existing devices and may add EBS and
    instance store (`ephemeralN`) mappings (see create_image).
  * CreationDate comes from the emulator clock in whole seconds (moto: the real clock), and the
    `creation-date` filter matches its text with wildcards (`2021-09-29T*`), as the
    DescribeImages API reference documents (moto compared a datetime with the string: never
    matched). `source-image-id` / `source-image-region` filters work.
  * CopyImage honours Encrypted/KmsKeyId (the copies of the snapshots are encrypted; see
    images_snapshots.copy_encryption), ClientToken (same token and parameters -> same ImageId;
    other parameters -> IdempotentParameterMismatch), TagSpecifications (image, snapshot),
    CopyImageTags (user tags of the source AMI, not `aws:` ones), SourceRegion. An encrypted
    source copied in its own account and Region without KmsKeyId keeps its key (AMI guide "Use
    encryption with EBS-backed AMIs"); Encrypted=false on an encrypted source is InvalidRequest
    (hashicorp/packer#7393). A visible image of another account (images_access) can be the
    source. POST /_emulator/image-copy-failures makes copies end `failed`. At most 300
    concurrent AMI copies per destination Region (ResourceLimitExceeded). The source must be
    `available` (IncorrectState). An unknown KmsKeyId is accepted and the copy ends `failed` with
    a StateReason, its snapshots `error` (KMS keys are checked asynchronously).
  * DescribeImages: `block-device-mapping.*` filters (moto: HTTP 500), MaxResults (1..1000) and
    NextToken pagination (not with ImageIds; key-ordered, images_common), filters, Owners and
    ExecutableUsers applied together with ImageIds, other accounts' public and shared images
    (images_access), deprecated images (images_lifecycle). DeregisterImage is refused while
    deregistration protection is on (images_lifecycle).
  * DeregisterImage with DeleteAssociatedSnapshots=true deletes the AMI's snapshots except those
    another AMI uses, reporting each in DeleteSnapshotResults (DeregisterImage API reference).
    "Recently deregistered images appear in the returned results for a short interval and then
    return empty results" (DescribeImages API reference): here as State `deregistered` for the
    `deregister` duration; the name is free at once.
  * Launch permissions: OperationType add/remove with several UserIds, OrganizationArns,
    OrganizationalUnitArns (moto kept only the first ARN); DescribeImageAttribute of an unknown
    AMI is InvalidAMIID.NotFound (moto: HTTP 500).
  * LastLaunchedTime (Image data type: "The date and time, in ISO 8601 date-time format, when
    the AMI was last used to launch an EC2 instance. When the AMI is used to launch an instance,
    there is a 24-hour delay before that usage is reported"; DescribeImageAttribute
    `lastLaunchedTime`). RunInstances records the launch on the emulator clock on the image it
    launches from (own or another account's visible image); DescribeImages and
    DescribeImageAttribute show the latest launch once the `last-launched-report` duration has
    passed since it, and nothing for an image never (reportedly) launched. That duration is 0 by
    default (the launch shows at once); set it to 86400 to get AWS's documented 24 hours.
    moto: always absent.
  * Time-based AMI copies (CopyImage API reference, SnapshotCopyCompletionDurationMinutes:
    "Specify a completion duration, in 15 minute increments, to initiate a time-based AMI copy.
    The specified completion duration applies to each of the snapshots associated with the
    AMI"; EBS guide "Time-based copies for Amazon EBS snapshots and EBS-backed AMIs": "between
    15 minutes and 48 hours ... in 15 minute increments"). A value outside 15..2880 or not a
    multiple of 15 is InvalidParameterValue (AWS documents no code for it; EC2's code for a
    value outside its range; wording approximate). Every snapshot of the copy shows
    CompletionDurationMinutes and TransferType `time-based` (images_snapshots). The copy still
    takes the `copy-image` duration here. The duration is part of the ClientToken fingerprint
    (same token, other duration -> IdempotentParameterMismatch). moto: parameter ignored.
  * RegisterImage keeps UefiData (DescribeImageAttribute `uefiData`; at most 64,000 characters,
    RegisterImage API reference; moto dropped it) and CopyImage copies it with the other boot
    attributes. TpmSupport and ImdsSupport take only `v2.0` (RegisterImage API reference, valid
    values); TpmSupport needs BootMode `uefi` (EC2 guide, NitroTPM prerequisites: "NitroTPM
    requires that an instance runs in UEFI boot mode, which requires that the AMI must be
    configured for UEFI boot mode"; RegisterImage refuses it with `uefi-preferred` too, as seen
    in flatcar/mantle#582): InvalidParameterCombination (AWS documents no code; approximate).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses import EC2Response
from moto.ec2.utils import generic_filter, random_ami_id

from .. import clock, transitions
from . import images_access as access
from . import images_common as common
from . import images_lifecycle as lifecycle
from . import images_snapshots as snaps
from . import volumes

CONCURRENT_IMAGE_COPY_LIMIT = 300
NAME_RE = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")

_orig: dict[str, Any] = {}
_reboots: dict[str, int] = {}
_client_tokens: dict[tuple[str, str, str], tuple[tuple, str]] = {}
_deregistered: dict[tuple[str, str], dict[str, Ami]] = {}
MIN_COPY_MINUTES, MAX_COPY_MINUTES, COPY_MINUTES_STEP = 15, 2880, 15  # time-based copies
UEFI_DATA_MAX = 64000


def reset() -> None:
    _reboots.clear()
    _client_tokens.clear()
    _deregistered.clear()


def reboots(instance_id: str) -> int:
    """How many times CreateImage (without NoReboot) rebooted the instance."""
    return _reboots.get(instance_id, 0)


# --- model -----------------------------------------------------------------------------------


class _NoFakeSnapshot:
    """Stands in for the backend while moto's Ami constructor runs, so that it does not create
    its fake 15 GiB volume and snapshot; everything else goes to the real backend."""

    def __init__(self, real: Any):
        self.__dict__["_real"] = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_real"], name)

    def create_volume(self, *a: Any, **kw: Any) -> Any:
        return SimpleNamespace(id="vol-ffffffff")

    def create_snapshot(self, *a: Any, **kw: Any) -> Any:
        return SimpleNamespace(id=None)

    def delete_volume(self, *a: Any, **kw: Any) -> None:
        return None


def _ami_init(self: Ami, ec2_backend: Any, ami_id: str, *args: Any, **kwargs: Any) -> None:
    kwargs.setdefault("creation_date", common.now())
    _orig["ami_init"](self, _NoFakeSnapshot(ec2_backend), ami_id, *args, **kwargs)
    self.ec2_backend = ec2_backend
    self.ebs_snapshot = None
    self.__dict__["_emu_bdm"] = []
    if self.root_device_type == "standard":
        self.root_device_type = "ebs"


def _ami_state_get(self: Ami) -> str:
    if self.__dict__.get("_emu_deregistered"):
        return "deregistered"
    if common.pending(self):
        return "pending"
    if common.failure(self):
        return "failed"
    return self.__dict__.get("_emu_state", "available")


def _ami_state_set(self: Ami, value: str) -> None:
    self.__dict__["_emu_state"] = value


def _ami_state_reason(self: Ami) -> dict[str, str] | None:
    message = common.failure(self)
    return {"Code": common.failure_code(self, "Client.InvalidKMSKey"), "Message": message} if message else None


def _creation_date_get(self: Ami) -> datetime:
    """CreationDate on the emulator clock, in whole seconds as AWS shows it
    (`2021-09-29T11:04:43.000Z`; moto serialises the datetime)."""
    value = self.__dict__.get("_emu_created") or common.now()
    return value.replace(microsecond=0)


def _creation_date_set(self: Ami, value: Any) -> None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
    elif isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    self.__dict__["_emu_created"] = value


def _ami_bdm(self: Ami) -> list[dict[str, Any]]:
    return self.__dict__.get("_emu_bdm", [])


def _ami_filter_value(self: Ami, name: str, method_name: str | None = None) -> Any:
    if name == "root-device-type":
        return self.root_device_type
    if name == "root-device-name":
        return self.root_device_name
    if name == "description":
        return self.description
    if name == "image-type":
        return self.image_type
    if name == "boot-mode":
        return self.boot_mode
    if name == "creation-date":  # matched as text, so `2021-09-29T*` selects a day
        return clock.isoformat(self.creation_date)
    if name == "source-image-id":
        return getattr(self, "source_image_id", None)
    if name == "source-image-region":
        return getattr(self, "source_image_region", None)
    return _orig["ami_filter"](self, name, method_name)


BDM_FILTERS = {
    "block-device-mapping.device-name": lambda m: m.get("DeviceName"),
    "block-device-mapping.snapshot-id": lambda m: (m.get("Ebs") or {}).get("SnapshotId"),
    "block-device-mapping.volume-size": lambda m: (m.get("Ebs") or {}).get("VolumeSize"),
    "block-device-mapping.volume-type": lambda m: (m.get("Ebs") or {}).get("VolumeType"),
    "block-device-mapping.delete-on-termination": lambda m: (m.get("Ebs") or {}).get("DeleteOnTermination"),
    "block-device-mapping.encrypted": lambda m: (m.get("Ebs") or {}).get("Encrypted"),
}


def _filter_images(images: list[Ami], filters: dict[str, list[str]]) -> list[Ami]:
    plain = {}
    for name, values in (filters or {}).items():
        if name.startswith("block-device-mapping."):
            if name not in BDM_FILTERS:
                raise common.error("InvalidParameterValue", f"The filter '{name}' is invalid")
            get = BDM_FILTERS[name]
            images = [i for i in images if common.match_any([get(m) for m in i.block_device_mappings], values)]
        else:
            plain[name] = values
    return generic_filter(plain, images) if plain else images


# --- LastLaunchedTime ------------------------------------------------------------------------


def record_launch(ami: Ami) -> None:
    """RunInstances launched an instance from `ami` now (emulator clock)."""
    ami.__dict__.setdefault("_emu_launches", []).append(clock.now())


def _last_launched_time(self: Ami) -> str | None:
    """The latest launch already reported (`last-launched-report` after it), ISO 8601."""
    launches = self.__dict__.get("_emu_launches") or []
    delay = transitions.duration("last-launched-report")
    reported = [t for t in launches if transitions.elapsed(t) >= delay]
    if not reported:
        return None
    latest = max(reported)
    self.__dict__["_emu_launches"] = [t for t in launches if t >= latest]  # older ones no longer matter
    return clock.isoformat(latest.replace(microsecond=0))


def _run_instances(self: Any, image_id: str, *args: Any, **kwargs: Any) -> Any:
    if not image_id and kwargs.get("launch_template"):
        image_id = self._get_template_from_args(kwargs["launch_template"]).image_id
    reservation = _orig["run_instances"](self, image_id, *args, **kwargs)
    ami = access.find_image(self, image_id) if image_id else None
    if ami is not None:
        record_launch(ami)
    return reservation


# --- helpers ---------------------------------------------------------------------------------


def _check_name(backend: Any, name: str | None) -> None:
    if not name or not NAME_RE.match(name):
        raise common.error(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, "
            "numbers, '(', ')', '.', '-', '/' and '_'",
        )
    for ami in backend.amis.values():
        if ami.name == name and ami.owner_id == backend.account_id:
            raise common.error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")


def _new_ami(backend: Any, **kwargs: Any) -> Ami:
    ami = Ami(backend, random_ami_id(), **kwargs)
    backend.amis[ami.id] = ami
    return ami


def _ebs_entry(device: str, snapshot: Any, size: int, vtype: str, delete: bool, iops: Any = None, throughput: Any = None) -> dict[str, Any]:
    ebs: dict[str, Any] = {
        "SnapshotId": snapshot.id,
        "VolumeSize": size,
        "VolumeType": vtype,
        "DeleteOnTermination": delete,
        "Encrypted": bool(snapshot.encrypted),
    }
    if iops is not None:
        ebs["Iops"] = iops
    if throughput is not None:
        ebs["Throughput"] = throughput
    return {"DeviceName": device, "Ebs": ebs}


def _apply_common(ami: Ami, p: Any) -> None:
    ena = p("EnaSupport")
    if ena is not None:
        ami.ena_support = str(ena).lower() == "true"
    if p("BootMode"):
        ami.boot_mode = p("BootMode")
    if p("TpmSupport"):
        ami.tpm_support = p("TpmSupport")
    if p("UefiData"):
        ami.uefi_data = p("UefiData")
    if p("ImdsSupport"):
        ami.imds_support = p("ImdsSupport")
    if p("SriovNetSupport"):
        ami.sriov = p("SriovNetSupport")


# --- actions ---------------------------------------------------------------------------------


def create_image(self: Any) -> ActionResult:
    """CreateImage API reference: "from an Amazon EBS-backed instance that is either running or
    stopped" (IncorrectInstanceState otherwise). BlockDeviceMappings: NoDevice leaves a volume
    out; for a volume the instance has, "the only option that can be changed for existing
    mappings or snapshots is DeleteOnTermination" (anything else: InvalidBlockDeviceMapping);
    other devices add new EBS volumes (empty, or from a snapshot) or instance store volumes
    (VirtualName `ephemeralN`) to the AMI."""
    p = self._get_param
    instance_id = p("InstanceId")
    name = p("Name")
    description = p("Description", "")
    no_reboot = self._get_bool_param("NoReboot", False)
    tags = common.tag_specs(p("TagSpecifications", []), ("image", "snapshot"))
    requested = p("BlockDeviceMappings", []) or []
    self.error_on_dryrun()

    backend = self.ec2_backend
    instance = backend.get_instance(instance_id)
    if instance.state not in ("running", "stopped"):
        raise common.error(
            "IncorrectInstanceState",
            f"The instance '{instance_id}' is not in a state from which it can be imaged ({instance.state}).",
        )  # approximate wording
    _check_name(backend, name)
    attached = {
        device: bdt for device, bdt in instance.block_device_mapping.items()
        if getattr(bdt, "volume_id", None) and bdt.volume_id in backend.volumes
    }
    excluded, delete_override, added = set(), {}, []
    for m in requested:
        device = m.get("DeviceName")
        if "NoDevice" in m:
            excluded.add(device)
        elif device in attached:
            ebs = dict(m.get("Ebs") or {})
            if "DeleteOnTermination" in ebs:
                delete_override[device] = str(ebs.pop("DeleteOnTermination")).lower() == "true"
            if ebs or "VirtualName" in m:
                raise common.error(
                    "InvalidBlockDeviceMapping",
                    f"Only DeleteOnTermination can be changed for the existing device {device} "
                    f"(asked to change: {', '.join(sorted(ebs) or ['VirtualName'])}).",
                )  # approximate wording
        else:
            added.append(_register_mapping(backend, m))
    ami = _new_ami(backend, instance=instance, name=name, description=description)
    ami.root_device_name = instance.root_device_name
    ami.root_device_type = "ebs"
    ami.no_reboot = no_reboot
    ami.add_tags(tags.get("image", {}))
    mappings = []
    for device, bdt in sorted(attached.items()):
        if device in excluded:
            continue
        volume = backend.volumes[bdt.volume_id]
        snapshot = backend.create_snapshot(volume.id, f"Created by CreateImage({instance_id}) for {ami.id}", from_ami=ami.id)
        snapshot.add_tags(tags.get("snapshot", {}))
        delete = delete_override.get(device, bool(bdt.delete_on_termination))
        mappings.append(_ebs_entry(device, snapshot, volume.size, volume.volume_type, delete, volume.iops, volume.throughput))
    ami.__dict__["_emu_bdm"] = mappings + added
    common.start(ami, "image")
    if not no_reboot:
        _reboots[instance_id] = _reboots.get(instance_id, 0) + 1
    return ActionResult({"ImageId": ami.id})


# RegisterImage API reference, valid values of each parameter.
ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
VIRTUALIZATION_TYPES = ("hvm", "paravirtual")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
TPM_SUPPORT = ("v2.0",)
IMDS_SUPPORT = ("v2.0",)


def _check_enum(param: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise common.error(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {param} is invalid. Valid values: {', '.join(allowed)}.",
        )  # approximate wording


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _register_mapping(backend: Any, m: dict[str, Any]) -> dict[str, Any]:
    """One RegisterImage block device mapping, checked as AWS checks it:
      * EbsBlockDevice API reference, Encrypted: for a mapping from an existing snapshot "you must
        omit this parameter. If you include this parameter, the request will fail"; RegisterImage
        API reference: "You can't set the encryption state of the volume using the block device
        mapping" (the snapshot decides). KmsKeyId: "only supported on BlockDeviceMapping objects
        called by RunInstances, RequestSpotFleet, and RequestSpotInstances".
      * the snapshot exists (InvalidSnapshot.NotFound) and is `completed` (IncorrectState; a
        pending snapshot is not offered by the console either);
      * volume type, size, IOPS and throughput within the ranges of the EBS guide "Amazon EBS
        volume types" (the one table in volumes.VOLUME_TYPES).
    """
    ebs = m.get("Ebs")
    device = m.get("DeviceName")
    if "NoDevice" in m or ebs is None:
        return {k: v for k, v in m.items() if k in ("DeviceName", "VirtualName", "NoDevice")}
    snapshot_id = ebs.get("SnapshotId")
    if snapshot_id and ebs.get("Encrypted") is not None:
        raise common.error(
            "InvalidBlockDeviceMapping",
            f"The encrypted flag cannot be specified since device {device} has a snapshot specified.",
        )  # approximate wording
    if ebs.get("KmsKeyId"):
        raise common.error(
            "InvalidParameterCombination",
            "KmsKeyId is not supported in the block device mappings of RegisterImage; the snapshot's key is used.",
        )  # approximate wording
    snapshot = backend.snapshots.get(snapshot_id) if snapshot_id else None
    if snapshot_id and snapshot is None:
        raise common.error("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
    if snapshot is not None and snapshot.status != "completed":
        raise common.error("IncorrectState", f"Snapshot '{snapshot_id}' is not in the 'completed' state: {snapshot.status}.")
    size = _int_or_none(ebs.get("VolumeSize")) or (snapshot.volume_size if snapshot else None)
    if size is None:
        raise common.error("InvalidBlockDeviceMapping", f"The device {device} needs a VolumeSize or a SnapshotId.")
    if snapshot and size < snapshot.volume_size:
        raise common.error(
            "InvalidBlockDeviceMapping",
            f"Volume of size {size}GB is smaller than snapshot '{snapshot_id}', expect size >= {snapshot.volume_size}GB",
        )
    vtype = ebs.get("VolumeType", "gp2")
    iops, throughput = _int_or_none(ebs.get("Iops")), _int_or_none(ebs.get("Throughput"))
    volumes.validate_volume(vtype, size, iops, throughput, None)
    entry = {"DeviceName": device, "Ebs": {
        "SnapshotId": snapshot_id,
        "VolumeSize": size,
        "VolumeType": vtype,
        "DeleteOnTermination": ebs.get("DeleteOnTermination", True),
        "Encrypted": bool(snapshot.encrypted) if snapshot else bool(ebs.get("Encrypted", False)),
    }}
    if iops is not None:
        entry["Ebs"]["Iops"] = iops
    if throughput is not None:
        entry["Ebs"]["Throughput"] = throughput
    entry["Ebs"] = {k: v for k, v in entry["Ebs"].items() if v is not None}
    return entry


def register_image(self: Any) -> ActionResult:
    p = self._get_param
    name = p("Name")
    location = p("ImageLocation")
    root_device_name = p("RootDeviceName")
    tags = common.tag_specs(p("TagSpecifications", []), ("image",))
    self.error_on_dryrun()

    _check_enum("architecture", p("Architecture"), ARCHITECTURES)
    _check_enum("virtualizationType", p("VirtualizationType"), VIRTUALIZATION_TYPES)
    _check_enum("bootMode", p("BootMode"), BOOT_MODES)
    _check_enum("tpmSupport", p("TpmSupport"), TPM_SUPPORT)
    _check_enum("imdsSupport", p("ImdsSupport"), IMDS_SUPPORT)
    if p("TpmSupport") and p("BootMode") != "uefi":
        raise common.error(
            "InvalidParameterCombination",
            f"TpmSupport {p('TpmSupport')} requires BootMode uefi (BootMode: {p('BootMode') or 'not set'}).",
        )  # approximate wording
    if p("UefiData") and len(p("UefiData")) > UEFI_DATA_MAX:
        raise common.error(
            "InvalidParameterValue",
            f"UefiData is {len(p('UefiData'))} characters long; the maximum is {UEFI_DATA_MAX}.",
        )  # approximate wording
    backend = self.ec2_backend
    _check_name(backend, name)
    mappings = [_register_mapping(backend, m) for m in p("BlockDeviceMappings", []) or []]
    if location is None:
        # An EBS-backed AMI boots from a snapshot: its root device needs an EBS mapping with a
        # SnapshotId (RegisterImage API reference, "Register an AMI from a snapshot").
        root = root_device_name or "/dev/sda1"
        if not any(m.get("DeviceName") == root and (m.get("Ebs") or {}).get("SnapshotId") for m in mappings):
            raise common.error(
                "InvalidBlockDeviceMapping",
                f"The device '{root}' (root device name) must have an EBS snapshot mapping.",
            )
    ami = _new_ami(
        backend,
        name=name,
        description=p("Description", ""),
        architecture=p("Architecture") or "i386",
        virtualization_type=p("VirtualizationType") or "paravirtual",
        image_location=location,
        root_device_type="instance-store" if location else "ebs",
        root_device_name=root_device_name or "/dev/sda1",
        boot_mode=p("BootMode"),
    )
    if p("KernelId"):
        ami.kernel_id = p("KernelId")
    _apply_common(ami, p)
    ami.add_tags(tags.get("image", {}))
    ami.__dict__["_emu_bdm"] = mappings
    return ActionResult({"ImageId": ami.id})


def copy_image(self: Any) -> ActionResult:
    p = self._get_param
    source_id = p("SourceImageId")
    source_region = p("SourceRegion")
    name = p("Name")
    description = p("Description")
    raw_encrypted = p("Encrypted")
    encrypted = self._get_bool_param("Encrypted", False)
    explicitly_unencrypted = raw_encrypted is not None and str(raw_encrypted).lower() == "false"
    kms_key_ref = p("KmsKeyId")
    token = p("ClientToken")
    copy_tags = self._get_bool_param("CopyImageTags", False)
    raw_specs = p("TagSpecifications", []) or []
    tags = common.tag_specs(raw_specs, ("image", "snapshot"))
    minutes = _copy_minutes(p("SnapshotCopyCompletionDurationMinutes"))
    self.error_on_dryrun()

    dest = self.ec2_backend
    fingerprint = (source_id, source_region, name, description, encrypted, kms_key_ref, copy_tags, repr(raw_specs), minutes)
    if token:
        if len(token) > 64:
            raise common.error("InvalidParameterValue", "ClientToken must be at most 64 characters")
        seen = _client_tokens.get((dest.account_id, dest.region_name, token))
        if seen:
            if seen[0] != fingerprint:
                raise common.error(
                    "IdempotentParameterMismatch",
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous request(s) for client token {token}.",
                )
            return ActionResult({"ImageId": seen[1]})
    source = access.find_image(snaps.source_backend(self, source_region), source_id)
    if source is None:
        raise InvalidAMIIdError(source_id)
    source_backend = source.ec2_backend  # the owner's: the source may be another account's image
    if source.state != "available":
        raise common.error("IncorrectState", f"Image {source_id} is not in a valid state: {source.state}")
    _check_name(dest, name)
    in_flight = sum(1 for a in dest.amis.values() if a.__dict__.get("_emu_copy") and common.pending(a))
    if in_flight >= CONCURRENT_IMAGE_COPY_LIMIT:
        raise common.error("ResourceLimitExceeded", f"You have reached the limit of {CONCURRENT_IMAGE_COPY_LIMIT} concurrent AMI copies.")
    source_snaps = [source_backend.snapshots.get((m.get("Ebs") or {}).get("SnapshotId") or "") for m in source.block_device_mappings]
    if explicitly_unencrypted:
        for snap in source_snaps:
            if snap is not None and snap.encrypted:
                # What AWS answers (hashicorp/packer#7393, #11741); AMI guide "Use encryption
                # with EBS-backed AMIs": a copy of an encrypted snapshot is always encrypted.
                raise common.error(
                    "InvalidRequest",
                    f"Snapshot {snap.id} is encrypted. Creating unencrypted copy from an encrypted snapshot is not supported.",
                )
    enc_any = any((m.get("Ebs") or {}).get("Encrypted") for m in source.block_device_mappings)
    _, _, fail = snaps.copy_encryption(dest, enc_any, encrypted, kms_key_ref)
    fail_code = None
    injected = lifecycle.take_copy_failure()
    if injected and not fail:
        fail_code, fail = injected

    ami = _new_ami(dest, source_ami=source, name=name, description=description)
    for attr in ("root_device_name", "root_device_type", "boot_mode", "image_location", "sriov"):
        setattr(ami, attr, getattr(source, attr))
    for attr in ("ena_support", "tpm_support", "imds_support", "uefi_data"):
        if hasattr(source, attr):
            setattr(ami, attr, getattr(source, attr))
    ami.__dict__["_emu_copy"] = True
    ami.source_image_id = source.id
    ami.source_image_region = source_backend.region_name
    if copy_tags:
        ami.add_tags({t["key"]: t["value"] for t in source.get_tags() if not t["key"].startswith("aws:")})
    ami.add_tags(tags.get("image", {}))
    mappings = []
    for m in source.block_device_mappings:
        ebs = m.get("Ebs") or {}
        src_snap = source_backend.snapshots.get(ebs.get("SnapshotId") or "")
        if src_snap is None:
            mappings.append(dict(m))
            continue
        if src_snap.encrypted and not kms_key_ref and source_backend is dest:
            # AMI guide "Use encryption with EBS-backed AMIs", image-copying scenarios: "An
            # encrypted snapshot that you own is copied to a snapshot encrypted with the same
            # key" (same account and Region, no KmsKeyId). Elsewhere: the destination default key.
            enc, key_arn, snap_fail = True, src_snap.kms_key_id, None
        else:
            enc, key_arn, snap_fail = snaps.copy_encryption(dest, src_snap.encrypted, encrypted, kms_key_ref)
        snap_fail = snap_fail or fail
        copy = snaps.copy_one(dest, src_snap, f"Copied for DestinationAmi {ami.id} from SourceAmi {source.id} for SourceSnapshot {src_snap.id}", enc, key_arn, snap_fail, "copy-image", from_ami=ami.id)
        copy.__dict__["_emu_copy"] = False  # AMI copies do not count against the snapshot-copy limit
        copy.__dict__["_emu_completion_minutes"] = minutes
        copy.add_tags(tags.get("snapshot", {}))
        mappings.append({"DeviceName": m["DeviceName"], "Ebs": {**ebs, "SnapshotId": copy.id, "Encrypted": enc}})
    ami.__dict__["_emu_bdm"] = mappings
    common.start(ami, "copy-image", fail=fail, fail_code=fail_code)
    if token:
        _client_tokens[(dest.account_id, dest.region_name, token)] = (fingerprint, ami.id)
    return ActionResult({"ImageId": ami.id})


def _copy_minutes(raw: Any) -> int | None:
    """SnapshotCopyCompletionDurationMinutes: None (a standard copy) or 15..2880 in steps of 15."""
    if raw is None or raw == "":
        return None
    try:
        minutes = int(raw)
    except (TypeError, ValueError):
        minutes = None
    if minutes is None or not MIN_COPY_MINUTES <= minutes <= MAX_COPY_MINUTES or minutes % COPY_MINUTES_STEP:
        raise common.error(
            "InvalidParameterValue",
            f"Value ({raw}) for parameter SnapshotCopyCompletionDurationMinutes is invalid. The completion "
            f"duration must be between {MIN_COPY_MINUTES} and {MAX_COPY_MINUTES} minutes, in "
            f"{COPY_MINUTES_STEP} minute increments.",
        )  # approximate wording
    return minutes


def describe_images(self: Any) -> ActionResult:
    """DescribeImages over every image the caller can see (images_access: own, public, shared),
    ImageIds/Owners/ExecutableUsers/Filters together, deprecated images only for their owner
    or with IncludeDeprecated (images_lifecycle), recently deregistered ones for a while,
    key-ordered pages."""
    p = self._get_param
    ami_ids = p("ImageIds", []) or []
    filters = self._filters_from_querystring()
    owners = p("Owners", []) or []
    exec_users = p("ExecutableUsers", []) or []
    include_deprecated = self._get_bool_param("IncludeDeprecated", False)
    max_results = common.check_max_results(p("MaxResults"), 1, 1000, bool(ami_ids), "imageIds")
    next_token = p("NextToken")
    self.error_on_dryrun()

    backend = self.ec2_backend
    gone = _deregistered.get((backend.account_id, backend.region_name), {})
    for ami_id, ami in list(gone.items()):
        if not common.pending(ami):
            del gone[ami_id]
    candidates = access.visible_images(backend) + list(gone.values())
    if ami_ids:  # ids the caller cannot see at all are NotFound (moto: only when none is found)
        access.select(backend, [], ami_ids, [], [])  # InvalidAMIID.Malformed first
        known = {a.id for a in candidates} | set(backend.deleted_amis)
        if not any(i in known for i in ami_ids):
            raise InvalidAMIIdError(ami_ids)
    if not include_deprecated:
        candidates = [a for a in candidates if a.owner_id == backend.account_id or not lifecycle.is_deprecated(a)]
    images = access.select(backend, candidates, ami_ids, owners, exec_users)
    images = _filter_images(images, filters)
    page, token = common.paginate(images, max_results, next_token, "images")
    result: dict[str, Any] = {"Images": page}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


def deregister_image(self: Any) -> ActionResult:
    ami_id = self._get_param("ImageId")
    delete_snapshots = self._get_bool_param("DeleteAssociatedSnapshots", False)
    self.error_on_dryrun()

    backend = self.ec2_backend
    ami = backend.amis.get(ami_id)
    if ami is not None:
        lifecycle.check_deregister(ami)
    backend.deregister_image(ami_id)  # moto's errors for unknown / already deregistered ids
    results = []
    if delete_snapshots and ami is not None:
        for m in ami.block_device_mappings:
            snapshot_id = (m.get("Ebs") or {}).get("SnapshotId")
            if not snapshot_id:
                continue
            if snapshot_id not in backend.snapshots:
                results.append({"SnapshotId": snapshot_id, "ReturnCode": "client-error"})
                continue
            try:
                backend.delete_snapshot(snapshot_id)
                results.append({"SnapshotId": snapshot_id, "ReturnCode": "success"})
            except Exception:  # used by another AMI
                results.append({"SnapshotId": snapshot_id, "ReturnCode": "skipped"})
    if ami is not None:
        ami.__dict__["_emu_deregistered"] = True
        common.start(ami, "deregister")
        _deregistered.setdefault((backend.account_id, backend.region_name), {})[ami_id] = ami
    result: dict[str, Any] = {"Return": True}
    if delete_snapshots:
        result["DeleteSnapshotResults"] = results
    return ActionResult(result)


def _launch_permission_list(self: Any, key: str) -> list[dict[str, str]]:
    out = list((self._get_param("LaunchPermission", {}) or {}).get(key, []) or [])
    op = self._get_param("OperationType")
    if op and (key == "Add") == (op == "add"):
        out += [{"Group": g} for g in self._get_param("UserGroups", []) or []]
        out += [{"UserId": u} for u in self._get_param("UserIds", []) or []]
        out += [{"OrganizationArn": a} for a in self._get_param("OrganizationArns", []) or []]
        out += [{"OrganizationalUnitArn": a} for a in self._get_param("OrganizationalUnitArns", []) or []]
    return out


def modify_image_attribute(self: Any) -> ActionResult:
    ami_id = self._get_param("ImageId")
    attribute = self._get_param("Attribute")
    description = self._get_param("Description")
    self.error_on_dryrun()
    backend = self.ec2_backend
    if ami_id not in backend.amis:
        raise InvalidAMIIdError(ami_id)
    if isinstance(description, dict) and "Value" in description:
        backend.amis[ami_id].description = description["Value"]
        return EmptyResult()
    if attribute == "description":
        backend.amis[ami_id].description = self._get_param("Value")
        return EmptyResult()
    for perm in _launch_permission_list(self, "Add") + _launch_permission_list(self, "Remove"):
        for k in ("OrganizationArn", "OrganizationalUnitArn"):
            if k in perm and not str(perm[k]).startswith("arn:aws:organizations::"):
                raise common.error("InvalidParameterValue", f"Invalid {k}: {perm[k]}")
    backend.validate_permission_targets(_launch_permission_list(self, "Add"))
    access.check_sharing(backend.amis[ami_id], _launch_permission_list(self, "Add"))
    backend.modify_image_attribute(
        ami_id=ami_id,
        launch_permissions_to_add=_launch_permission_list(self, "Add"),
        launch_permissions_to_remove=_launch_permission_list(self, "Remove"),
    )
    return EmptyResult()


# DescribeImageAttribute: attribute name -> (output member, how to read it from the Ami).
IMAGE_ATTRIBUTES = {
    "description": ("Description", lambda a: a.description),
    "kernel": ("KernelId", lambda a: a.kernel_id),
    "ramdisk": ("RamdiskId", lambda a: getattr(a, "ramdisk_id", None)),
    "sriovNetSupport": ("SriovNetSupport", lambda a: a.sriov),
    "bootMode": ("BootMode", lambda a: a.boot_mode),
    "tpmSupport": ("TpmSupport", lambda a: getattr(a, "tpm_support", None)),
    "uefiData": ("UefiData", lambda a: getattr(a, "uefi_data", None)),
    "lastLaunchedTime": ("LastLaunchedTime", lambda a: a.last_launched_time),
    "imdsSupport": ("ImdsSupport", lambda a: getattr(a, "imds_support", None)),
    "deregistrationProtection": ("DeregistrationProtection", lambda a: lifecycle.protection(a)),
}


def describe_image_attribute(self: Any) -> Any:
    """DescribeImageAttribute API reference: every attribute of ImageAttributeName answers
    (moto: HTTP 500 AttributeError for tpmSupport, uefiData, lastLaunchedTime, imdsSupport,
    ramdisk; InvalidRequest for deregistrationProtection). Attributes without a value come back
    empty, as AWS returns them."""
    ami_id = self._get_param("ImageId")
    attribute = self._get_param("Attribute")
    self.error_on_dryrun()
    ami = access.find_image(self.ec2_backend, ami_id)
    if ami is None:
        raise InvalidAMIIdError(ami_id)
    if attribute in IMAGE_ATTRIBUTES:
        member, read = IMAGE_ATTRIBUTES[attribute]
        value = read(ami)
        result: dict[str, Any] = {"ImageId": ami_id}
        if value is not None:
            result[member] = {"Value": value}
        return ActionResult(result)
    if ami.owner_id != self.current_account and attribute in ("launchPermission", "blockDeviceMapping"):
        raise common.error("AuthFailure", f"Not authorized for image:{ami_id}")
    if ami_id not in self.ec2_backend.amis:
        raise InvalidAMIIdError(ami_id)
    return _orig["describe_image_attribute"](self)


def _deprecation_time(self: Ami) -> str | None:
    return lifecycle.deprecation_time(self)


def _deregistration_protection(self: Ami) -> str:
    return lifecycle.protection(self)


def install() -> None:
    _orig["ami_init"] = Ami.__init__
    _orig["ami_filter"] = Ami.get_filter_value
    _orig["describe_image_attribute"] = EC2Response.describe_image_attribute
    Ami.__init__ = _ami_init
    Ami.state = property(_ami_state_get, _ami_state_set)
    Ami.state_reason = property(_ami_state_reason)
    Ami.block_device_mappings = property(_ami_bdm)
    Ami.creation_date = property(_creation_date_get, _creation_date_set)
    Ami.deprecation_time = property(_deprecation_time)
    Ami.deregistration_protection = property(_deregistration_protection)
    Ami.image_owner_alias = property(lambda self: self.owner_alias)
    Ami.get_filter_value = _ami_filter_value
    Ami.last_launched_time = property(_last_launched_time)
    _orig["run_instances"] = InstanceBackend.run_instances
    InstanceBackend.run_instances = _run_instances  # instances.py wraps this one in turn
    EC2Response.create_image = create_image
    EC2Response.register_image = register_image
    EC2Response.copy_image = copy_image
    EC2Response.describe_images = describe_images
    EC2Response.deregister_image = deregister_image
    EC2Response.modify_image_attribute = modify_image_attribute
    EC2Response.describe_image_attribute = describe_image_attribute
