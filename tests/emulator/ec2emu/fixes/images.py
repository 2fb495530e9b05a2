"""Corrections for EBS snapshots, AMIs and the EBS default KMS key (moto 5.2.5).

The work is split by area; each part documents the AWS behaviour it restores and where AWS
documents it:
  * images_kms.py        GetEbsDefaultKmsKeyId / ModifyEbsDefaultKmsKeyId /
                         ResetEbsDefaultKmsKeyId, KMS key resolution (id, ARN, alias, alias ARN)
  * images_snapshots.py  CreateSnapshot (pending -> completed, KmsKeyId, per-volume limit),
                         DescribeSnapshots (OwnerIds, MaxResults/NextToken, CompletionTime,
                         TransferType), CopySnapshot (encryption, default key, async KMS
                         failure, 20 concurrent copies), Modify/DescribeSnapshotAttribute
                         (create volume permissions and their sharing rules)
  * images_amis.py       CreateImage, RegisterImage, CopyImage (time-based copies),
                         DescribeImages, DeregisterImage, launch permissions,
                         DescribeImageAttribute, LastLaunchedTime (recorded by RunInstances)
  * images_access.py     images of other accounts and public images (DescribeImages Owners,
                         ExecutableUsers), sharing rules, image block public access,
                         POST /_emulator/images (seed another account's image)
  * images_lifecycle.py  deprecation, deregistration protection (24 h cooldown on the emulator
                         clock), POST /_emulator/image-copy-failures
  * images_common.py     pending-state bookkeeping on ec2emu.transitions, pagination, errors

Pending-state durations (seconds, ec2emu.transitions keys): `snapshot`, `copy-snapshot`,
`image`, `copy-image`, `deregister`; and `last-launched-report`, the delay before a launch shows
as the image's LastLaunchedTime.

Python API for other modules:
  * default_ebs_kms_key_arn(region, account_id=DEFAULT_ACCOUNT_ID) -> the default EBS KMS key
    ARN of that account and Region (the AWS managed alias/aws/ebs key unless changed; created in
    KMS on first use).
  * resolve_key_arn(account_id, region, key_ref) -> key ARN or None.
  * reboots(instance_id) -> how many reboots CreateImage (without NoReboot) caused.
"""

from __future__ import annotations

from .. import transitions
from . import images_access, images_amis, images_common, images_kms, images_lifecycle, images_snapshots
from .images_amis import reboots
from .images_kms import default_ebs_kms_key_arn, resolve_key_arn

__all__ = ["install", "reset", "default_ebs_kms_key_arn", "resolve_key_arn", "reboots"]

_installed = False


def install() -> None:
    """Patches moto once (idempotent)."""
    global _installed
    if _installed:
        return
    transitions.register_defaults(images_common.DEFAULTS)
    images_kms.install()
    images_snapshots.install()
    images_amis.install()
    images_access.install()
    images_lifecycle.install()
    _installed = True


def reset() -> None:
    """Forgets the state this module keeps outside moto's backends (ClientTokens, reboot counts,
    recently deregistered AMIs, image block public access settings, injected copy failures).
    moto's own reset clears snapshots, images (seeded ones too) and keys."""
    images_amis.reset()
    images_access.reset()
    images_lifecycle.reset()
