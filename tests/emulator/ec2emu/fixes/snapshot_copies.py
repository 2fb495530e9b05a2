"""CopySnapshot corrections on top of images_snapshots.copy_snapshot (which it wraps, so the
snapshot/AMI corrections stay as they are). Sources: EBS guide "Copy an Amazon EBS snapshot",
CopySnapshot API reference.

 1. The copy's VolumeId. "Snapshots created by the CopySnapshot action have an arbitrary volume
    ID that should not be used for any purpose" (EBS guide, "Copy an Amazon EBS snapshot"); AWS
    shows `vol-ffffffff`. moto (and the layer until now) kept the source's volume, so a
    DescribeSnapshots `volume-id` filter for the original volume also returned its copies. The
    copy keeps its own snapshot id (moto already did that) and its own VolumeSize.
 2. The key of a copy of an encrypted snapshot without KmsKeyId, in the same Region: "If
    KmsKeyId is not specified, the key that is used for encryption depends on the encryption
    state of the source snapshot and its ownership" (same page); the AMI guide's copy scenarios
    ("Use encryption with EBS-backed AMIs"): an encrypted snapshot that you own "is copied to a
    snapshot encrypted with the same key". images_snapshots used the destination's default key
    (aws/ebs). Cross-Region copies keep the destination Region's default key (KMS keys are
    regional). A source key that is no longer enabled fails the copy asynchronously, as an
    unusable KmsKeyId does (`pending` -> `error`).

CopyImage's snapshot copies are left to the AMI corrections (images_amis / images_snapshots).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from moto.ec2.responses import EC2Response

from . import images_common as common
from . import images_snapshots as snaps
from .images_kms import resolve_key_arn

ARBITRARY_VOLUME_ID = "vol-ffffffff"

_orig: dict[str, Any] = {}


def copy_snapshot(self: Any) -> Any:
    result = _orig["copy_snapshot"](self)
    dest = self.ec2_backend
    copy = dest.snapshots[result.result["SnapshotId"]]
    source_region = self._get_param("SourceRegion") or self.region
    source = snaps.source_backend(self, source_region).snapshots.get(self._get_param("SourceSnapshotId"))
    size = copy.volume_size
    copy.volume = SimpleNamespace(id=ARBITRARY_VOLUME_ID, size=size)
    copy.__dict__["_emu_volume_size"] = size
    same_region = source_region == dest.region_name
    if (source is not None and same_region and source.encrypted and source.kms_key_id
            and not self._get_param("KmsKeyId") and not copy.__dict__.get("_emu_fail")):
        copy.kms_key_id = source.kms_key_id
        if resolve_key_arn(dest.account_id, dest.region_name, source.kms_key_id) is None:
            started = copy.__dict__.get("_emu_transition")
            common.start(copy, started[1] if started else "copy-snapshot",
                         fail=f"The KMS key {source.kms_key_id} is not enabled.")  # approximate
    return result


def install() -> None:
    _orig["copy_snapshot"] = EC2Response.copy_snapshot  # images_snapshots.copy_snapshot
    EC2Response.copy_snapshot = copy_snapshot


def reset() -> None:
    """No state of its own."""
