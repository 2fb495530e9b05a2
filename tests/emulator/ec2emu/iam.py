"""IAM policy evaluation for EC2 and KMS requests signed by an IAM user's access key.

moto 5.2.5 can enforce IAM (`INITIAL_NO_AUTH_ACTION_COUNT`, moto/core/authorization.py and
moto/iam/access_control.py), but not usefully for a least-privilege policy:
  * it is global: every request must then be signed by an IAM user, so the static test
    credentials the rest of the suite uses would all fail;
  * every EC2 and KMS request is evaluated against the resource `*` only, so a statement
    scoped to `arn:aws:ec2:*:*:volume/*` never allows anything;
  * conditions are evaluated with no request context: only `StringEquals` is known and, with
    no values, always holds; `Null`, `StringLike`, `Bool` are ignored, so every conditional
    statement counts as unconditional (and a failed condition on an Allow would deny).

This module restores what AWS does ("Policy evaluation logic" and "Condition operators" in the
IAM User Guide; "Actions, resources, and condition keys for Amazon EC2" in the Service
Authorization Reference; "Grant permission to tag Amazon EC2 resources during creation" in the
EC2 User Guide), for requests whose SigV4 access key belongs to an IAM user created through
moto's IAM API (or `POST /_emulator/iam-users`). Requests signed by any other key (the static
test credentials, STS sessions) are not evaluated, as before.

What is evaluated:
  * identity-based policies of the user (inline, attached, and its groups'), collected by
    moto; explicit Deny wins, else some Allow must match (implicit deny);
  * Action / NotAction, Resource / NotResource with `*` and `?` wildcards;
  * conditions: String(Not)Equals(IgnoreCase), String(Not)Like, Bool, Null, each with
    `IfExists`, and the ForAnyValue: / ForAllValues: set forms; an unknown operator never
    holds (fail closed);
  * per action, each resource AWS authorizes (RESOURCES below): a resource the call creates is
    evaluated with `aws:RequestTag/<key>` and `aws:TagKeys` from the TagSpecifications for its
    resource type; an existing resource with `ec2:ResourceTag/<key>` and
    `aws:ResourceTag/<key>` from its current tags; CreateTags/DeleteTags with the request's
    tags on each resource named;
  * tag-on-create: a create call with TagSpecifications also needs `ec2:CreateTags` on each
    new resource with `ec2:CreateAction` = the create action;
  * KMS calls (X-Amz-Target) on the key ARN, an alias resolved to its key.

KMS through EBS: creating an encrypted volume needs kms:GenerateDataKeyWithoutPlaintext and
kms:Decrypt on its key with `kms:ViaService` = `ec2.<region>.amazonaws.com`
(`may_use_key_through_ebs`, called by fixes/volumes.py); without them the volume vanishes
after `creating`, as for a disabled key (rule 3d).

Not evaluated: resource-based policies (KMS key policies), permission boundaries, SCPs,
session policies, `aws:SourceIp` and other global keys, and the other KMS calls EBS makes for
the caller (kms:CreateGrant with `kms:GrantIsForAWSResource` at attach and start, the copies'
re-encryption): moto's EBS never calls KMS.

A refusal is answered as AWS does: EC2 HTTP 403 `UnauthorizedOperation` ("You are not
authorized to perform this operation. User: <arn> is not authorized to perform: ec2:<Action>
on resource: <arn> because no identity-based policy allows the ec2:<Action> action", without
AWS's encoded authorization message); KMS HTTP 400 `AccessDeniedException` with the same
sentence. The request is not applied, and it is counted (`GET /_emulator/iam-refusals`).
"""

import json
import logging
import re
import threading
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID

log = logging.getLogger("ec2emu.iam")

PARTITION = "aws"

_lock = threading.Lock()
# IAM action -> how many requests were refused for it (GET /_emulator/iam-refusals).
_refusals: dict[str, int] = {}

# The create actions whose new resources carry TagSpecifications: action -> new resource types.
CREATES = {
    "CreateVolume": ["volume"],
    "CreateSnapshot": ["snapshot"],
    "CopySnapshot": ["snapshot"],
    "CreateImage": ["image", "snapshot"],
    "RegisterImage": ["image"],
    "CopyImage": ["image"],
}

# Existing resources each action is authorized on: action -> [(resource type, parameter)].
# A parameter ending in ".N" is a list (InstanceId.1, InstanceId.2, ...).
EXISTING = {
    "CreateVolume": [("snapshot", "SnapshotId")],
    "CreateSnapshot": [("volume", "VolumeId")],
    "CopySnapshot": [("snapshot", "SourceSnapshotId")],
    "CreateImage": [("instance", "InstanceId")],
    "RegisterImage": [("snapshot", "BlockDeviceMapping.N.Ebs.SnapshotId")],
    "ModifyVolume": [("volume", "VolumeId")],
    "DeleteVolume": [("volume", "VolumeId")],
    "AttachVolume": [("volume", "VolumeId"), ("instance", "InstanceId")],
    "DetachVolume": [("volume", "VolumeId"), ("instance", "InstanceId")],
    "DeleteSnapshot": [("snapshot", "SnapshotId")],
    "ModifySnapshotAttribute": [("snapshot", "SnapshotId")],
    "DeregisterImage": [("image", "ImageId")],
    "ModifyImageAttribute": [("image", "ImageId")],
    "EnableImageDeprecation": [("image", "ImageId")],
    "DisableImageDeprecation": [("image", "ImageId")],
    "EnableImageDeregistrationProtection": [("image", "ImageId")],
    "DisableImageDeregistrationProtection": [("image", "ImageId")],
    "StopInstances": [("instance", "InstanceId.N")],
    "StartInstances": [("instance", "InstanceId.N")],
    "RebootInstances": [("instance", "InstanceId.N")],
    "TerminateInstances": [("instance", "InstanceId.N")],
    "ModifyInstanceAttribute": [("instance", "InstanceId")],
}

# CreateTags/DeleteTags name resources of any type by id prefix.
ID_PREFIXES = {"vol-": "volume", "snap-": "snapshot", "ami-": "image", "i-": "instance"}


def _user_access_key(access_key_id: str):
    """The moto IAM user owning this access key (None: not an IAM user's key)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID][PARTITION]
    for user in backend.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status == "Active":
                return backend, user
    return None


def _documents(backend, user) -> list[dict]:
    """Every identity-based policy document of the user: inline, attached, groups'."""
    texts = [user.policies[name] for name in user.policies]
    texts += [_default_version(p) for p in user.managed_policies.values()]
    for group in backend.get_groups_for_user(user.name):
        texts += [group.policies[name] for name in group.policies]
        texts += [_default_version(p) for p in group.managed_policies.values()]
    return [json.loads(text) if isinstance(text, str) else text for text in texts]


def _default_version(policy) -> str:
    return next(v.document for v in policy.versions if v.is_default)


# ---- matching ----------------------------------------------------------------------------

def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _element_matches(statement: dict, name: str, value: str, ignore_case: bool) -> bool | None:
    """Whether `value` is covered by Action/Resource (or not covered by NotAction/...).
    None when the statement has neither form."""
    if name in statement:
        return any(_glob(p, value, ignore_case) for p in _as_list(statement[name]))
    if f"Not{name}" in statement:
        return not any(_glob(p, value, ignore_case) for p in _as_list(statement[f"Not{name}"]))
    return None


def _lookup(context: dict, key: str):
    """A context value by case-insensitive key (None: absent)."""
    lowered = key.lower()
    for k, v in context.items():
        if k.lower() == lowered:
            return v
    return None


def _string_op(base: str):
    """(negated, compare(expected, actual)) for a string or Bool operator, None if unknown."""
    ops = {
        "StringEquals": (False, lambda e, a: e == a),
        "StringNotEquals": (True, lambda e, a: e == a),
        "StringEqualsIgnoreCase": (False, lambda e, a: e.lower() == a.lower()),
        "StringNotEqualsIgnoreCase": (True, lambda e, a: e.lower() == a.lower()),
        "StringLike": (False, lambda e, a: _glob(e, a)),
        "StringNotLike": (True, lambda e, a: _glob(e, a)),
        "Bool": (False, lambda e, a: e.lower() == a.lower()),
    }
    return ops.get(base)


def condition_holds(operator: str, key: str, expected, context: dict) -> bool:
    """One condition key of one operator, as the IAM User Guide's "Condition operators" and
    "Multivalued context keys" describe it."""
    expected = [str(e).lower() if isinstance(e, bool) else str(e) for e in _as_list(expected)]
    actual = _lookup(context, key)
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    if base == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    op = _string_op(base)
    if op is None:
        log.warning("IAM condition operator %s is not evaluated by the emulator: it does not hold", operator)
        return False
    negated, compare = op
    if actual is None:
        return if_exists or negated or qualifier == "ForAllValues"
    values = [str(v) for v in _as_list(actual)]

    def matches(value: str) -> bool:
        return any(compare(e, value) for e in expected)

    if qualifier == "ForAllValues":
        return all((not matches(v)) if negated else matches(v) for v in values)
    hit = any(matches(v) for v in values)
    return not hit if negated else hit


def _conditions_hold(conditions: dict | None, context: dict) -> bool:
    for operator, keys in (conditions or {}).items():
        for key, expected in keys.items():
            if not condition_holds(operator, key, expected, context):
                return False
    return True


def decide(documents: list[dict], action: str, resource: str, context: dict) -> str:
    """"allow", "explicit" (an explicit Deny) or "implicit" (no Allow matched)."""
    allowed = False
    for doc in documents:
        for st in _as_list(doc.get("Statement", [])):
            if not _element_matches(st, "Action", action, ignore_case=True):
                continue
            if not _element_matches(st, "Resource", resource, ignore_case=False):
                continue
            if not _conditions_hold(st.get("Condition"), context):
                continue
            if st.get("Effect") == "Deny":
                return "explicit"
            if st.get("Effect") == "Allow":
                allowed = True
    return "allow" if allowed else "implicit"


# ---- request context ---------------------------------------------------------------------

def _arn(region: str, rtype: str, rid: str) -> str:
    # Snapshot and image ARNs carry no account (Service Authorization Reference).
    account = "" if rtype in ("snapshot", "image") else DEFAULT_ACCOUNT_ID
    return f"arn:{PARTITION}:ec2:{region}:{account}:{rtype}/{rid}"


def _list_param(form: dict, name: str) -> list[str]:
    if ".N" not in name:
        return [form[name]] if form.get(name) else []
    pattern = re.compile("^" + re.escape(name).replace(r"\.N", r"\.\d+") + "$")
    return [v for k, v in sorted(form.items()) if pattern.match(k) and v]


def _tag_specs(form: dict) -> dict[str, dict[str, str]]:
    """TagSpecification.N: resource type -> tags."""
    specs: dict[str, dict[str, str]] = {}
    n = 1
    while f"TagSpecification.{n}.ResourceType" in form:
        rtype = form[f"TagSpecification.{n}.ResourceType"]
        tags = specs.setdefault(rtype, {})
        m = 1
        while f"TagSpecification.{n}.Tag.{m}.Key" in form:
            tags[form[f"TagSpecification.{n}.Tag.{m}.Key"]] = form.get(f"TagSpecification.{n}.Tag.{m}.Value", "")
            m += 1
        n += 1
    return specs


def _request_tags(form: dict) -> dict[str, str]:
    """Tag.N (CreateTags, DeleteTags)."""
    tags, n = {}, 1
    while f"Tag.{n}.Key" in form:
        tags[form[f"Tag.{n}.Key"]] = form.get(f"Tag.{n}.Value", "")
        n += 1
    return tags


def _request_context(tags: dict[str, str]) -> dict:
    context = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        context["aws:TagKeys"] = list(tags)
    return context


def _existing_context(backend, rid: str) -> dict:
    tags = dict(backend.tags.get(rid, {})) if backend is not None else {}
    context = {}
    for k, v in tags.items():
        context[f"ec2:ResourceTag/{k}"] = v
        context[f"aws:ResourceTag/{k}"] = v
    return context


def _detach_instance(backend, volume_id: str) -> str | None:
    volume = backend.volumes.get(volume_id) if backend is not None else None
    attachment = getattr(volume, "attachment", None) if volume is not None else None
    instance = getattr(attachment, "instance", None) if attachment is not None else None
    return getattr(instance, "id", None)


def ec2_checks(region: str, action: str, form: dict) -> list[tuple[str, str, dict]]:
    """(IAM action, resource ARN, context) for every authorization the call needs."""
    from moto.ec2.models import ec2_backends

    try:
        backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    except KeyError:
        backend = None
    iam_action = f"ec2:{action}"
    checks: list[tuple[str, str, dict]] = []
    if action in ("CreateTags", "DeleteTags"):
        request = _request_context(_request_tags(form))
        for rid in _list_param(form, "ResourceId.N"):
            rtype = next((t for p, t in ID_PREFIXES.items() if rid.startswith(p)), "resource")
            context = {**_existing_context(backend, rid), **request}
            checks.append((iam_action, _arn(region, rtype, rid), context))
        return checks
    if action not in CREATES and action not in EXISTING:
        return [(iam_action, "*", {})]
    specs = _tag_specs(form)
    for rtype in CREATES.get(action, []):
        arn = _arn(region, rtype, "*")
        tags = specs.get(rtype, {})
        checks.append((iam_action, arn, _request_context(tags)))
        if tags:
            context = {**_request_context(tags), "ec2:CreateAction": action}
            checks.append(("ec2:CreateTags", arn, context))
    for rtype, param in EXISTING.get(action, []):
        ids = _list_param(form, param)
        if action == "DetachVolume" and rtype == "instance" and not ids:
            found = _detach_instance(backend, form.get("VolumeId", ""))
            ids = [found] if found else []
        # A snapshot copy's source may be in another Region.
        where, where_backend = region, backend
        if action == "CopySnapshot" and form.get("SourceRegion"):
            where = form["SourceRegion"]
            where_backend = ec2_backends[DEFAULT_ACCOUNT_ID].get(where)
        for rid in ids:
            checks.append((iam_action, _arn(where, rtype, rid), _existing_context(where_backend, rid)))
    return checks


def kms_checks(region: str, action: str, body: bytes) -> list[tuple[str, str, dict]]:
    from moto.kms.models import kms_backends

    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        payload = {}
    key_ref = payload.get("KeyId") if isinstance(payload, dict) else None
    if not key_ref:
        return [(action, "*", {})]
    try:
        key = kms_backends[DEFAULT_ACCOUNT_ID][region].describe_key(key_ref)
        arn = key.arn
    except Exception:  # unknown key or alias: authorize on the name given, KMS answers NotFound
        arn = key_ref if key_ref.startswith("arn:") else f"arn:{PARTITION}:kms:{region}:{DEFAULT_ACCOUNT_ID}:key/{key_ref}"
    return [(action, arn, {})]


# ---- the middleware's entry point --------------------------------------------------------

def _credential(environ) -> tuple[str, str, str] | None:
    """(access key id, region, service) from the SigV4 Authorization header."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/", auth)
    return match.groups() if match else None


def refusal(environ, action: str, body: bytes) -> tuple[int, str, str] | None:
    """None when the request may go on; else (HTTP status, error code, message). Call with
    moto's lock held (it reads moto's IAM, EC2 and KMS state)."""
    credential = _credential(environ)
    if credential is None:
        return None
    key_id, region, service = credential
    if service not in ("ec2", "kms"):
        return None
    found = _user_access_key(key_id)
    if found is None:
        return None
    backend, user = found
    documents = _documents(backend, user)
    if service == "kms":
        checks = kms_checks(region, action, body)
    else:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        checks = ec2_checks(region, action, form)
    for iam_action, resource, context in checks:
        decision = decide(documents, iam_action, resource, context)
        if decision == "allow":
            continue
        why = (
            "with an explicit deny in an identity-based policy"
            if decision == "explicit"
            else f"because no identity-based policy allows the {iam_action} action"
        )
        sentence = f"User: {user.arn} is not authorized to perform: {iam_action} on resource: {resource} {why}"
        log.info("IAM refused %s on %s for %s (%s)", iam_action, resource, user.name, decision)
        with _lock:
            _refusals[iam_action] = _refusals.get(iam_action, 0) + 1
        if service == "kms":
            return 400, "AccessDeniedException", sentence
        return 403, "UnauthorizedOperation", f"You are not authorized to perform this operation. {sentence}"
    return None


# ---- KMS through EBS --------------------------------------------------------------------

# What EBS asks KMS for, with the caller's permissions, to create an encrypted volume
# (kubernetes/kubernetes#62171: these two suffice to create one).
EBS_KMS_ACTIONS = ("kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt")


def may_use_key_through_ebs(authorization: str, region: str, key_arn: str) -> bool:
    """Whether EBS, acting for the signer of `authorization`, may use `key_arn` to create an
    encrypted volume: EBS_KMS_ACTIONS on the key with `kms:ViaService` =
    `ec2.<region>.amazonaws.com` ("How Amazon EBS uses AWS KMS"; "kms:ViaService" in the KMS
    Developer Guide). True for keys no IAM user owns. A refusal is counted like any other;
    AWS accepts the CreateVolume and the volume vanishes (volumes.py rule 3d)."""
    match = re.search(r"Credential=([^/,\s]+)/", authorization or "")
    found = _user_access_key(match.group(1)) if match else None
    if found is None:
        return True
    backend, user = found
    documents = _documents(backend, user)
    context = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    for action in EBS_KMS_ACTIONS:
        if decide(documents, action, key_arn, context) != "allow":
            log.info("IAM refused %s through EBS on %s for %s", action, key_arn, user.name)
            with _lock:
                _refusals[action] = _refusals.get(action, 0) + 1
            return False
    return True


# ---- control endpoint --------------------------------------------------------------------

def _users_endpoint(method: str, payload):
    """POST /_emulator/iam-users {"name": "controller", "policy": {...}}: an IAM user with that
    inline policy and a new access key; returns {"arn", "access_key_id", "secret_access_key"}
    (iam:CreateUser, iam:PutUserPolicy, iam:CreateAccessKey). PUT with the same body replaces
    the policy of an existing user (iam:PutUserPolicy); returns {"arn"}."""
    from moto.iam.models import iam_backends

    if method not in ("POST", "PUT"):
        raise ValueError("POST a new user or PUT a user's policy")
    name = payload["name"]
    policy = payload["policy"]
    text = policy if isinstance(policy, str) else json.dumps(policy)
    backend = iam_backends[DEFAULT_ACCOUNT_ID][PARTITION]
    if method == "PUT":
        if name not in backend.users:
            raise LookupError(f"no IAM user {name}")
        backend.put_user_policy(name, "policy", text)
        return {"arn": backend.users[name].arn}
    user = backend.create_user(region_name="us-east-1", user_name=name)
    backend.put_user_policy(name, "policy", text)
    key = backend.create_access_key(name)
    return {"arn": user.arn, "access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}


def _refusals_endpoint(method: str, payload):
    """GET /_emulator/iam-refusals: {"refusals": {"ec2:ModifyVolume": 1}}, refused requests by
    the IAM action refused (the first one a request failed on)."""
    if method != "GET":
        raise ValueError("GET the refusals")
    with _lock:
        return {"refusals": dict(_refusals)}


def reset() -> None:
    with _lock:
        _refusals.clear()


def install() -> None:
    from . import control

    control.register("iam-users", _users_endpoint)
    control.register("iam-refusals", _refusals_endpoint)
