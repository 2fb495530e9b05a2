"""Who can see and launch an AMI: images of other accounts, sharing rules, image block public
access, and the control endpoint that seeds other accounts' images.

AWS behaviour restored, with sources:
  * DescribeImages (API reference) sees every image the caller may launch, not only its own:
    its own images, public images of any account, and images whose launch permissions name the
    caller's account. `Owners` takes account ids and `self`, `amazon`, `aws-marketplace`,
    `aws-backup-vault` (matched against the owner's alias); `ExecutableUsers` takes account ids,
    `self` and `all` ("all (public AMIs)") and keeps images with an explicit launch permission
    for one of them. ImageIds, Owners, ExecutableUsers and Filters all apply together.
    moto: only the caller's own account, public images returned for any ExecutableUsers, and
    ExecutableUsers ignored when ImageIds is given. CopyImage can copy such a visible image.
  * "You can't share AMIs that are backed by snapshots that are encrypted with the default AWS
    managed key" (AMI guide, "Share an AMI with organizations or OUs" > Considerations, and
    "Share an AMI with specific AWS accounts"). AWS answers `InvalidParameter: Snapshots
    encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.`
    (hashicorp/packer#7410). moto: accepted.
  * "AMIs with encrypted volumes cannot be made public" (AMI guide, "Share an AMI publicly" >
    Considerations): `UnsupportedOperation: Encrypted snapshots can't be shared publicly.
    Specify another snapshot.` (opendevstack/ods-core#1062). moto: accepted.
  * Image block public access (AMI guide, "Understand block public access for AMIs";
    GetImageBlockPublicAccessState, EnableImageBlockPublicAccess, DisableImageBlockPublicAccess
    API references): a per-Region account setting, `block-new-sharing` by default for new
    accounts (so for every account of the emulator), `unblocked` once disabled. While it is on,
    adding the `all` group is refused: `OperationNotPermitted: You can't publicly share this
    image because block public access for AMIs is enabled for this account. To publicly share
    the image, you must call the DisableImageBlockPublicAccess API.` (hortonworks/
    cloudbreak-images#926, aws-deepracer-community/deepracer-on-the-spot#106). Images already
    public stay public. moto: not implemented (HTTP 400 UnsupportedOperation from the layer).
    AWS applies a change within 10 minutes; here at once.

Control endpoint (see README): POST /_emulator/images seeds an image owned by another account
or an AWS alias, public or shared with given accounts, with its snapshot, in that owner's
backend, so that tests can have "a public base image of amazon" or "another account's shared
image".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import MalformedAMIIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.responses import EC2Response

from .. import control
from . import images_common as common
from .images_kms import EBS_ALIAS, _kms, resolve_key_arn

# Owner aliases of DescribeImages `Owners` and the account ids the seeded images get.
# 137112412989 and 679593333241 are the ids AWS's own public AMIs show for `amazon` and
# `aws-marketplace`; the `aws-backup-vault` id is a placeholder.
ALIAS_ACCOUNTS = {"amazon": "137112412989", "aws-marketplace": "679593333241", "aws-backup-vault": "000000000001"}

BPA_ON, BPA_OFF = "block-new-sharing", "unblocked"
_bpa: dict[tuple[str, str], str] = {}  # (account, Region) -> state; absent = BPA_ON


def reset() -> None:
    _bpa.clear()


# --- visibility ------------------------------------------------------------------------------


def _region_backends(region: str) -> list[Any]:
    """The EC2 backends of every account that exists in `region` (none is created here)."""
    out = []
    for _account, per_region in list(dict.items(ec2_backends)):
        backend = dict.get(per_region, region)
        if backend is not None:
            out.append(backend)
    return out


def launchable_by(ami: Any, account: str) -> bool:
    """The caller may see and launch `ami`: owner, public, or named in a launch permission."""
    if ami.owner_id == account or ami.is_public:
        return True
    return any(lp.get("UserId") == account for lp in ami.launch_permissions)


def visible_images(backend: Any) -> list[Any]:
    """Every image the caller (`backend`'s account) can see in `backend`'s Region."""
    account = backend.account_id
    images = list(backend.amis.values())
    for other in _region_backends(backend.region_name):
        if other is backend:
            continue
        images += [a for a in other.amis.values() if launchable_by(a, account)]
    return images


def find_image(backend: Any, ami_id: str) -> Any | None:
    for ami in visible_images(backend):
        if ami.id == ami_id:
            return ami
    return None


def select(backend: Any, images: list[Any], ami_ids: list[str], owners: list[str], exec_users: list[str]) -> list[Any]:
    """DescribeImages' ImageIds, Owners and ExecutableUsers, applied together."""
    account = backend.account_id
    if ami_ids:
        malformed = [i for i in ami_ids if not str(i).startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [a for a in images if a.id in ami_ids]
    if owners:
        wanted = {account if o == "self" else o for o in owners}
        images = [a for a in images if a.owner_id in wanted or (a.owner_alias and a.owner_alias in wanted)]
    if exec_users:
        users = {account if u == "self" else u for u in exec_users}
        images = [
            a for a in images
            if ("all" in users and a.is_public) or any(lp.get("UserId") in users for lp in a.launch_permissions)
        ]
    return images


# --- sharing rules ---------------------------------------------------------------------------


def _aws_managed_key_arn(account: str, region: str) -> str | None:
    kms = _kms(account, region)
    if not kms.alias_exists(EBS_ALIAS):
        return None
    return kms.describe_key(EBS_ALIAS).arn


def _snapshots_of(ami: Any) -> list[Snapshot]:
    owner = ami.ec2_backend
    out = []
    for m in ami.block_device_mappings:
        snapshot = owner.snapshots.get((m.get("Ebs") or {}).get("SnapshotId") or "")
        if snapshot is not None:
            out.append(snapshot)
    return out


def check_sharing(ami: Any, adding: list[dict[str, str]]) -> None:
    """Refuses the launch permissions AWS refuses (see the module docstring)."""
    if not adding:
        return
    backend = ami.ec2_backend
    snapshots = _snapshots_of(ami)
    if any(p.get("Group") == "all" for p in adding) and not ami.is_public:
        if any(s.encrypted for s in snapshots):
            raise common.error("UnsupportedOperation", "Encrypted snapshots can't be shared publicly. Specify another snapshot.")
        if block_public_access(backend.account_id, backend.region_name) == BPA_ON:
            raise common.error(
                "OperationNotPermitted",
                "You can't publicly share this image because block public access for AMIs is enabled for this "
                "account. To publicly share the image, you must call the DisableImageBlockPublicAccess API.",
            )
    if any(k in p for p in adding for k in ("UserId", "OrganizationArn", "OrganizationalUnitArn")):
        managed = _aws_managed_key_arn(backend.account_id, backend.region_name)
        if managed and any(s.encrypted and s.kms_key_id == managed for s in snapshots):
            raise common.error(
                "InvalidParameter",
                "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.",
            )


# --- image block public access ---------------------------------------------------------------


def block_public_access(account: str, region: str) -> str:
    return _bpa.get((account, region), BPA_ON)


def get_image_block_public_access_state(self: Any) -> ActionResult:
    self.error_on_dryrun()
    state = block_public_access(self.current_account, self.region)
    return ActionResult({"ImageBlockPublicAccessState": state, "ManagedBy": "account"})


def enable_image_block_public_access(self: Any) -> ActionResult:
    state = self._get_param("ImageBlockPublicAccessState")
    self.error_on_dryrun()
    if state != BPA_ON:
        raise common.error(
            "InvalidParameterValue",
            f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid. Valid values: {BPA_ON}.",
        )  # approximate wording
    _bpa[(self.current_account, self.region)] = BPA_ON
    return ActionResult({"ImageBlockPublicAccessState": BPA_ON})


def disable_image_block_public_access(self: Any) -> ActionResult:
    self.error_on_dryrun()
    _bpa[(self.current_account, self.region)] = BPA_OFF
    return ActionResult({"ImageBlockPublicAccessState": BPA_OFF})


# --- control endpoint: seed another account's image -----------------------------------------


def seed_image(payload: dict[str, Any]) -> dict[str, Any]:
    """POST /_emulator/images: an `available` image owned by `owner` (an account id or an alias
    of ALIAS_ACCOUNTS), with one completed snapshot per mapping, in that owner's backend."""
    from .images_amis import _new_ami  # images_amis imports this module

    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    owner = str(payload.get("owner", "amazon"))
    alias = owner if owner in ALIAS_ACCOUNTS else None
    account = ALIAS_ACCOUNTS.get(owner, owner)
    if not (account.isdigit() and len(account) == 12):
        raise ValueError(f"'owner' must be a 12-digit account id or one of {', '.join(ALIAS_ACCOUNTS)}")
    region = str(payload.get("region", "us-east-1"))
    name = payload.get("name")
    if not name:
        raise ValueError("'name' is required")
    shared_with = [str(a) for a in payload.get("shared_with", [])]
    backend = ec2_backends[account][region]
    root = str(payload.get("root_device_name", "/dev/xvda"))
    created = payload.get("creation_date")
    if created is not None:
        datetime.fromisoformat(str(created).replace("Z", "+00:00"))  # ValueError -> 400
    ami = _new_ami(
        backend,
        name=name,
        description=payload.get("description", ""),
        owner_alias=alias,
        architecture=payload.get("architecture", "x86_64"),
        virtualization_type=payload.get("virtualization_type", "hvm"),
        root_device_type="ebs",
        root_device_name=root,
        boot_mode=payload.get("boot_mode", "uefi-preferred"),
        public=bool(payload.get("public", not shared_with)),
    )
    if created is not None:
        ami.creation_date = str(created)
    ami.ena_support = True
    ami.launch_permissions += [{"UserId": a} for a in shared_with]
    if payload.get("deprecation_time"):
        from .images_lifecycle import set_deprecation

        set_deprecation(ami, str(payload["deprecation_time"]))
    ami.add_tags({str(k): str(v) for k, v in (payload.get("tags") or {}).items()})
    encrypted = bool(payload.get("encrypted", False))
    key_arn = None
    if encrypted:
        key_ref = payload.get("kms_key_id")
        if key_ref:
            key_arn = resolve_key_arn(account, region, str(key_ref)) or str(key_ref)
        else:
            from .images_kms import aws_managed_ebs_key_arn

            key_arn = aws_managed_ebs_key_arn(account, region)
    size = int(payload.get("volume_size", 8))
    volume = backend.create_volume(size=size, zone_name=f"{region}a")
    snapshot = backend.create_snapshot(volume.id, f"Created for {ami.id}", owner_id=account, from_ami=ami.id)
    snapshot.__dict__["_emu_transition"] = None  # completed at once
    snapshot.encrypted, snapshot.kms_key_id = encrypted, key_arn
    if payload.get("public_snapshot", ami.is_public):
        snapshot.create_volume_permission_groups.add("all")
    for a in shared_with:
        snapshot.create_volume_permission_userids.add(a)
    backend.volumes.pop(volume.id, None)
    ami.__dict__["_emu_bdm"] = [{"DeviceName": root, "Ebs": {
        "SnapshotId": snapshot.id, "VolumeSize": size, "VolumeType": str(payload.get("volume_type", "gp3")),
        "DeleteOnTermination": True, "Encrypted": encrypted,
    }}]
    return {"image_id": ami.id, "snapshot_id": snapshot.id, "owner_id": account, "region": region}


def _images_endpoint(method: str, payload: Any) -> Any:
    if method != "POST":
        raise ValueError("use POST /_emulator/images")
    seeds = payload if isinstance(payload, list) else [payload]
    try:
        results = [seed_image(p) for p in seeds]
    except common.EC2ClientError as e:  # e.g. a duplicate name in that account
        raise ValueError(getattr(e, "message", None) or str(e))
    return results if isinstance(payload, list) else results[0]


def install() -> None:
    EC2Response.get_image_block_public_access_state = get_image_block_public_access_state
    EC2Response.enable_image_block_public_access = enable_image_block_public_access
    EC2Response.disable_image_block_public_access = disable_image_block_public_access
    control.register("images", _images_endpoint)

