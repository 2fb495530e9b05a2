"""Shared helpers of the snapshot/AMI corrections (images.py and its images_*.py parts).

Pending states follow ec2emu.transitions: a resource records `(started_at, key)` when its
asynchronous work starts, and its state is derived whenever it is read (pending until the
emulator clock reaches started_at + the duration in force *now* for that key). Once seen
finished, a transition stays finished (latched): AWS states only move forwards (`pending` ->
`available`/`completed`, never back), so a longer duration set later does not send a finished
snapshot or image back to `pending`. The moment a transition finished (its start plus the
duration in force when it was first seen finished, never later than that first sighting) is kept
as `completed_at(obj)`: DescribeSnapshots' CompletionTime ("The time stamp when the snapshot was
completed", EC2 API reference, Snapshot data type).

Pagination (DescribeImages, DescribeSnapshots) is key-ordered like volumes.py's: the NextToken
names the last id returned, so resources deregistered or deleted between pages never make the
next page skip one (a bad token is InvalidPaginationToken, as for DescribeVolumes).

TagSpecifications: keys starting with `aws:` are refused and more than 50 tags are
TagLimitExceeded, as everywhere else (EC2 user guide, "Tag restrictions"; volumes.py rule 6).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta
from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidTaggableResourceType

from .. import clock, transitions
from . import volumes

# Durations (seconds) of the pending states this module owns. Small but non-zero, like the
# volume defaults, so a demo shows the states AWS shows; tests set them with
# POST /_emulator/transitions.
DEFAULTS = {
    "snapshot": 1.0,  # CreateSnapshot: pending -> completed
    "copy-snapshot": 1.0,  # CopySnapshot: pending -> completed (or error, see images_snapshots)
    "image": 1.0,  # CreateImage: image pending -> available, its snapshots pending -> completed
    "copy-image": 1.0,  # CopyImage: image pending -> available, its snapshots likewise
    "deregister": 1.0,  # DeregisterImage: the AMI stays visible by id as `deregistered`
    # Not a pending state: how long after RunInstances an image's LastLaunchedTime shows the
    # launch (images_amis). AWS: "When the AMI is used to launch an instance, there is a 24-hour
    # delay before that usage is reported" (Image data type); 0 by default here so that a launch
    # shows at once, 86400 reproduces AWS.
    "last-launched-report": 0.0,
}


def now():
    return clock.now()


def start(obj: Any, key: str, fail: str | None = None, fail_code: str | None = None) -> None:
    """Marks `obj` as entering the pending state `key` now. With `fail` (a message) the work
    ends in failure instead of success (used for KMS keys that do not resolve, and for failures
    a test injects); `fail_code` is the StateReason code shown with it."""
    obj.__dict__["_emu_transition"] = (clock.now(), key)
    obj.__dict__["_emu_transition_done"] = False
    obj.__dict__["_emu_fail"] = fail
    obj.__dict__["_emu_fail_code"] = fail_code


def pending(obj: Any) -> bool:
    t = obj.__dict__.get("_emu_transition")
    if not t or obj.__dict__.get("_emu_transition_done"):
        return False
    if transitions.done(t[0], t[1]):
        obj.__dict__["_emu_transition_done"] = True  # latched: never pending again
        finished = t[0] + timedelta(seconds=transitions.duration(t[1]))
        obj.__dict__["_emu_completed_at"] = min(finished, clock.now())
        return False
    return True


def completed_at(obj: Any) -> datetime | None:
    """When the asynchronous work of `obj` finished successfully (None while pending, after a
    failure, or for objects that never had a transition)."""
    if not obj.__dict__.get("_emu_transition") or pending(obj) or obj.__dict__.get("_emu_fail"):
        return None
    return obj.__dict__.get("_emu_completed_at")


def failure_code(obj: Any, default: str) -> str:
    return obj.__dict__.get("_emu_fail_code") or default


def failure(obj: Any) -> str | None:
    """The failure message once the work has ended in failure, else None."""
    if obj.__dict__.get("_emu_fail") and not pending(obj):
        return obj.__dict__["_emu_fail"]
    return None


def percent(obj: Any) -> int:
    t = obj.__dict__.get("_emu_transition")
    if not t:
        return 100
    return transitions.progress(t[0], t[1])


def error(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def tag_specs(specs: list[dict[str, Any]] | None, allowed: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """TagSpecifications -> {resource_type: {key: value}}; a type the operation cannot tag is
    rejected the way EC2 rejects it (InvalidParameterValue)."""
    out: dict[str, dict[str, str]] = {}
    for spec in specs or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise InvalidTaggableResourceType(str(rtype))
        tags = out.setdefault(rtype, {})
        for tag in spec.get("Tags", spec.get("Tag", [])) or []:
            tags[tag["Key"]] = tag.get("Value", "")
    for tags in out.values():
        volumes._check_tag_keys(tags)
        if len(tags) > volumes.MAX_TAGS:
            raise error("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
    return out


def check_max_results(max_results: Any, lo: int, hi: int, with_ids: bool, ids_param: str) -> int | None:
    """EC2 pagination rules: MaxResults within [lo, hi]; not together with an id list."""
    if max_results is None:
        return None
    if with_ids:
        raise error(
            "InvalidParameterCombination",
            f"The parameter {ids_param} cannot be used with the parameter maxResults",
        )
    value = int(max_results)
    if value < lo or value > hi:
        raise error(
            "InvalidParameterValue",
            f"Value ( {value} ) for parameter maxResults is invalid. "
            f"Expecting a value between {lo} and {hi}.",
        )
    return value


def paginate(items: list[Any], max_results: int | None, next_token: str | None, kind: str) -> tuple[list[Any], str | None]:
    """Pages `items` ordered by id; the token names the last id returned (volumes.paginate)."""
    return volumes.paginate(items, lambda item: item.id, kind, max_results, next_token)


def match_any(values: list[Any], patterns: list[str]) -> bool:
    """EC2 filter semantics for multi-valued attributes: any value matches any pattern
    (`*` and `?` wildcards)."""
    for value in values:
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if any(fnmatch.fnmatchcase(text, p) for p in patterns):
            return True
    return False

