"""Who made each call: requests counted by the access key that signed them, and the STS
sessions those keys belong to.

moto serves STS AssumeRole (new temporary credentials per session) but enforces no IAM
policy, so a test cannot prove a boundary by being refused. What it can prove is *which
identity* the controller used: every request is counted under its SigV4 access key id, and
each AssumeRole is remembered with its role, session name and session tags, keyed by the
access key id it returned. `GET /_emulator/principals` shows both.
"""

import re
import threading
from urllib.parse import parse_qs

_lock = threading.Lock()
# access key id -> action -> count
_calls: dict[str, dict[str, int]] = {}
# access key id -> {"role_arn", "session_name", "tags"}
_sessions: dict[str, dict] = {}

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_ACCESS_KEY = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")


def access_key(environ) -> str:
    """The access key id of the request's SigV4 signature ("anonymous" without one)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "anonymous"


def record(environ, action: str) -> None:
    key = access_key(environ)
    with _lock:
        per_key = _calls.setdefault(key, {})
        per_key[action] = per_key.get(action, 0) + 1


def record_session(request_body: bytes, response_chunks: list[bytes]) -> None:
    """Remembers a successful AssumeRole: the role, session name and session tags asked
    for (Query API form), under the access key id the response carries."""
    match = _ACCESS_KEY.search(b"".join(response_chunks))
    if not match:
        return
    form = {k: v[0] for k, v in parse_qs(request_body.decode(errors="replace")).items()}
    tags = {}
    n = 1
    while f"Tags.member.{n}.Key" in form:
        tags[form[f"Tags.member.{n}.Key"]] = form.get(f"Tags.member.{n}.Value", "")
        n += 1
    with _lock:
        _sessions[match.group(1).decode()] = {
            "role_arn": form.get("RoleArn", ""),
            "session_name": form.get("RoleSessionName", ""),
            "tags": tags,
        }


def snapshot() -> dict:
    with _lock:
        return {
            "principals": {
                key: {"session": _sessions.get(key), "calls": dict(calls)}
                for key, calls in _calls.items()
            }
        }


def reset() -> None:
    with _lock:
        _calls.clear()
        _sessions.clear()
