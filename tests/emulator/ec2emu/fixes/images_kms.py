"""EBS default KMS key: GetEbsDefaultKmsKeyId, ModifyEbsDefaultKmsKeyId, ResetEbsDefaultKmsKeyId,
and KMS key resolution shared by the snapshot and AMI corrections.

AWS behaviour restored (EC2 API reference: GetEbsDefaultKmsKeyId, ModifyEbsDefaultKmsKeyId,
ResetEbsDefaultKmsKeyId; EBS user guide, "Amazon EBS encryption" > "Default KMS key"):
  * each account and Region has a default KMS key for EBS encryption; until it is changed it is
    the AWS managed key `alias/aws/ebs`, which AWS creates the first time it is needed;
  * GetEbsDefaultKmsKeyId returns its ARN (moto 5.2.5: HTTP 500, not implemented);
  * ModifyEbsDefaultKmsKeyId accepts a key id, key ARN, alias name or alias ARN and returns the
    key ARN. "Amazon Web Services authenticates the KMS key asynchronously": a key that does not
    exist is accepted, and encryption with it fails later (moto: HTTP 500 on an unknown key);
  * ResetEbsDefaultKmsKeyId goes back to the AWS managed key (moto: HTTP 500).
The default key is used by CopySnapshot/CopyImage with Encrypted=true and no KmsKeyId, by
encryption by default, and (volumes.py) by CreateVolume with Encrypted=true and no KmsKeyId.
"""

from __future__ import annotations

from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.responses import EC2Response

EBS_ALIAS = "alias/aws/ebs"


def _kms(account_id: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account_id][region]


def aws_managed_ebs_key_arn(account_id: str, region: str) -> str:
    """ARN of the AWS managed `alias/aws/ebs` key, created in KMS on first use (so that KMS
    DescribeKey/ListAliases resolve it, with KeyManager AWS as on AWS)."""
    kms = _kms(account_id, region)
    if not kms.alias_exists(EBS_ALIAS):
        key = kms.create_key(
            policy=None,
            key_usage="ENCRYPT_DECRYPT",
            key_spec="SYMMETRIC_DEFAULT",
            description="Default key that protects my EBS volumes when no other key is defined",
            tags=None,
        )
        kms.create_alias(key.id, EBS_ALIAS)
    key = kms.describe_key(EBS_ALIAS)
    key.key_manager = "AWS"
    return key.arn


def resolve_key_arn(account_id: str, region: str, key_ref: str) -> str | None:
    """Key id, key ARN, alias name or alias ARN -> the key ARN; None when no enabled key of that
    name exists in the Region (AWS then fails the encryption asynchronously)."""
    if not key_ref:
        return None
    if key_ref in (EBS_ALIAS, f"arn:aws:kms:{region}:{account_id}:{EBS_ALIAS}"):
        return aws_managed_ebs_key_arn(account_id, region)
    if key_ref.startswith("arn:") and f":kms:{region}:" not in key_ref:
        return None  # a key of another Region: EBS keys are regional
    kms = _kms(account_id, region)
    try:
        key = kms.describe_key(key_ref)
    except Exception:
        return None
    if getattr(key, "key_state", "Enabled") != "Enabled" or not getattr(key, "enabled", True):
        return None
    return key.arn


def _arn_form(account_id: str, region: str, key_ref: str) -> str:
    if key_ref.startswith("arn:"):
        return key_ref
    if key_ref.startswith("alias/"):
        return f"arn:aws:kms:{region}:{account_id}:{key_ref}"
    return f"arn:aws:kms:{region}:{account_id}:key/{key_ref}"


def default_ebs_kms_key_arn(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    """The default EBS KMS key ARN of the account in `region` (what GetEbsDefaultKmsKeyId
    returns). For volumes.py: CreateVolume with Encrypted=true (or encryption by default) and
    no KmsKeyId uses this key."""
    backend = ec2_backends[account_id][region]
    configured = backend.default_kms_key_id
    if configured:
        return configured
    arn = aws_managed_ebs_key_arn(account_id, region)
    backend.default_kms_key_id = arn
    return arn


# --- EC2 Query API actions -------------------------------------------------------------------


def get_ebs_default_kms_key_id(self: Any) -> ActionResult:
    self.error_on_dryrun()
    return ActionResult({"KmsKeyId": default_ebs_kms_key_arn(self.region, self.current_account)})


def modify_ebs_default_kms_key_id(self: Any) -> ActionResult:
    self.error_on_dryrun()
    key_ref = self._get_param("KmsKeyId")
    if not key_ref:
        from moto.ec2.exceptions import MissingParameterError

        raise MissingParameterError("KmsKeyId")
    account, region = self.current_account, self.region
    arn = resolve_key_arn(account, region, key_ref) or _arn_form(account, region, key_ref)
    self.ec2_backend.default_kms_key_id = arn
    return ActionResult({"KmsKeyId": arn})


def reset_ebs_default_kms_key_id(self: Any) -> ActionResult:
    self.error_on_dryrun()
    arn = aws_managed_ebs_key_arn(self.current_account, self.region)
    self.ec2_backend.default_kms_key_id = arn
    return ActionResult({"KmsKeyId": arn})


def install() -> None:
    EC2Response.get_ebs_default_kms_key_id = get_ebs_default_kms_key_id
    EC2Response.modify_ebs_default_kms_key_id = modify_ebs_default_kms_key_id
    EC2Response.reset_ebs_default_kms_key_id = reset_ebs_default_kms_key_id
