"""AMI lifecycle settings: deprecation, deregistration protection, and injected CopyImage failures.

AWS behaviour restored, with sources (moto 5.2.5 implements none of these actions: the layer
answered HTTP 400 UnsupportedOperation):
  * EnableImageDeprecation / DisableImageDeprecation (API references; AMI guide "Deprecate an
    Amazon EC2 AMI"): DeprecateAt is rounded to the nearest minute, cannot be in the past, and is
    at most 10 years ahead (2 years after CreationDate for a public AMI). DescribeImages shows
    DeprecationTime (`2021-10-15T13:17:00.000Z`). Once that time has passed on the emulator
    clock the image is deprecated: "By default, deprecated AMIs are not included in the
    response. If you are the AMI owner, all deprecated AMIs appear in the response regardless"
    (DescribeImages `IncludeDeprecated`). Only the owner may change it (InvalidAMIID.NotFound
    otherwise, as for any image the caller does not own).
  * EnableImageDeregistrationProtection (API reference; AMI guide "Protect an Amazon EC2 AMI
    from deregistration"): DeregisterImage is refused while protection is on. `WithCooldown`:
    "enforces deregistration protection for 24 hours after deregistration protection is
    disabled" (DisableImageDeregistrationProtection: "you won't immediately be able to
    deregister the AMI"); the 24 hours run on the emulator clock (POST /_emulator/clock).
    DescribeImages and DescribeImageAttribute `deregistrationProtection` show `disabled`,
    `enabled-without-cooldown`, `enabled-with-cooldown`, or during the cooldown
    `disabled-until <time>` (the last one's exact wording is approximate). The refusal is
    `OperationNotPermitted` (approximate: AWS documents no code).
  * A CopyImage that ends `failed` with a StateReason (DescribeImages `State`, `StateReason`)
    for reasons other than a KMS key: POST /_emulator/image-copy-failures makes the next
    CopyImage calls end that way (their snapshots end `error`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.responses import EC2Response

from .. import clock, control
from . import images_common as common

COOLDOWN = timedelta(hours=24)
MAX_DEPRECATION_AHEAD = timedelta(days=3652)  # 10 years
MAX_PUBLIC_DEPRECATION_AFTER_CREATION = timedelta(days=730)  # 2 years

_copy_failures: list[dict[str, Any]] = []


def reset() -> None:
    _copy_failures.clear()


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _own_image(self: Any) -> Any:
    ami_id = self._get_param("ImageId")
    ami = self.ec2_backend.amis.get(ami_id)
    if ami is None:
        raise InvalidAMIIdError(ami_id)
    return ami


# --- deprecation -----------------------------------------------------------------------------


def set_deprecation(ami: Any, when: Any) -> None:
    at = _parse_time(when)
    at = (at + timedelta(seconds=30)).replace(second=0, microsecond=0)  # nearest minute
    ami.__dict__["_emu_deprecate_at"] = at


def deprecation_time(ami: Any) -> str | None:
    at = ami.__dict__.get("_emu_deprecate_at")
    return clock.isoformat(at) if at else None


def is_deprecated(ami: Any) -> bool:
    at = ami.__dict__.get("_emu_deprecate_at")
    return at is not None and at <= clock.now()


def enable_image_deprecation(self: Any) -> ActionResult:
    raw = self._get_param("DeprecateAt")
    self.error_on_dryrun()
    ami = _own_image(self)
    try:
        at = _parse_time(raw)
    except (TypeError, ValueError):
        raise common.error("InvalidParameterValue", f"Invalid value '{raw}' for DeprecateAt")
    now = clock.now()
    if at < now - timedelta(seconds=30):
        raise common.error("InvalidParameterValue", "The deprecation time can't be in the past.")  # approximate
    limit = now + MAX_DEPRECATION_AHEAD
    if ami.is_public:
        limit = min(limit, ami.creation_date + MAX_PUBLIC_DEPRECATION_AFTER_CREATION)
    if at > limit:
        raise common.error(
            "InvalidParameterValue",
            f"The deprecation time can't be later than {clock.isoformat(limit)}.",
        )  # approximate
    set_deprecation(ami, at)
    return ActionResult({"Return": True})


def disable_image_deprecation(self: Any) -> ActionResult:
    self.error_on_dryrun()
    _own_image(self).__dict__.pop("_emu_deprecate_at", None)
    return ActionResult({"Return": True})


# --- deregistration protection ---------------------------------------------------------------


def protection(ami: Any) -> str:
    """The DeregistrationProtection value DescribeImages shows."""
    state = ami.__dict__.get("_emu_protection")
    if state is None:
        return "disabled"
    if state["enabled"]:
        return "enabled-with-cooldown" if state["cooldown"] else "enabled-without-cooldown"
    until = state.get("until")
    if until and clock.now() < until:
        return f"disabled-until {clock.isoformat(until)}"
    return "disabled"


def check_deregister(ami: Any) -> None:
    """DeregisterImage is refused while protection (or its cooldown) is in force."""
    if protection(ami) != "disabled":
        raise common.error(
            "OperationNotPermitted",
            f"The image {ami.id} has deregistration protection enabled ({protection(ami)}); "
            "disable it with DisableImageDeregistrationProtection first.",
        )  # approximate


def enable_image_deregistration_protection(self: Any) -> ActionResult:
    cooldown = self._get_bool_param("WithCooldown", False)
    self.error_on_dryrun()
    ami = _own_image(self)
    ami.__dict__["_emu_protection"] = {"enabled": True, "cooldown": cooldown, "until": None}
    return ActionResult({"Return": "true"})


def disable_image_deregistration_protection(self: Any) -> ActionResult:
    self.error_on_dryrun()
    ami = _own_image(self)
    state = ami.__dict__.get("_emu_protection")
    if state and state["enabled"]:
        until = clock.now() + COOLDOWN if state["cooldown"] else None
        ami.__dict__["_emu_protection"] = {"enabled": False, "cooldown": False, "until": until}
    return ActionResult({"Return": "true"})


# --- injected CopyImage failures -------------------------------------------------------------


def take_copy_failure() -> tuple[str, str] | None:
    """(StateReason code, message) for the CopyImage being made, if a failure was requested."""
    if not _copy_failures:
        return None
    rule = _copy_failures[0]
    rule["count"] -= 1
    if rule["count"] <= 0:
        _copy_failures.pop(0)
    return rule["code"], rule["message"]


def _copy_failures_endpoint(method: str, payload: Any) -> Any:
    if method == "POST":
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object")
        rule = {
            "count": int(payload.get("count", 1)),
            "code": str(payload.get("code", "Server.InternalError")),
            "message": str(payload.get("message", "Server.InternalError: the image copy failed (injected by the emulator)")),
        }
        if rule["count"] < 1:
            raise ValueError("'count' must be >= 1")
        _copy_failures.append(rule)
    elif method == "DELETE":
        _copy_failures.clear()
    elif method != "GET":
        raise ValueError("use GET, POST or DELETE")
    return {"image_copy_failures": list(_copy_failures)}


def install() -> None:
    EC2Response.enable_image_deprecation = enable_image_deprecation
    EC2Response.disable_image_deprecation = disable_image_deprecation
    EC2Response.enable_image_deregistration_protection = enable_image_deregistration_protection
    EC2Response.disable_image_deregistration_protection = disable_image_deregistration_protection
    control.register("image-copy-failures", _copy_failures_endpoint)
