"""Request counters and scripted faults.

Counters: every AWS request (not /_emulator/ or /moto-api/) is counted by action name, faulted
or not; faulted requests are also counted in `faulted`. EC2 actions are named as in the Query
API (`DescribeVolumes`); JSON-protocol services by service and operation (`kms:DescribeKey`).

Faults: a rule `{"action", "fault", "count", "skip", "delay_ms"}` applies to the next `count`
requests for `action` (or `"*"`) after letting `skip` of them through. Rules are consumed in the
order they were added; one request takes at most one fault.

The `error` kind returns a chosen terminal AWS error instead of serving the request (nothing is
applied): `{"action": "AttachVolume", "fault": "error", "code": "IncorrectState", "status": 400,
"message": "..."}`; `code` is required, `status` defaults to 400 and `message` to the code. It
is answered in the service's own error shape (EC2 XML, or JSON for KMS).
"""

import threading
from collections import Counter
from dataclasses import asdict, dataclass

KINDS = ("throttle", "server_error", "slow", "drop", "drop_after", "error")

_lock = threading.Lock()
_calls: Counter = Counter()
_faulted: Counter = Counter()
_rules: list["Rule"] = []


@dataclass
class Rule:
    action: str
    fault: str
    count: int = 1
    skip: int = 0
    delay_ms: int = 2000
    code: str | None = None  # `error` only
    status: int = 400
    message: str | None = None

    def matches(self, action: str) -> bool:
        return self.action == "*" or self.action == action


def parse_rule(body: dict) -> Rule:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    action = body.get("action")
    fault = body.get("fault")
    if not isinstance(action, str) or not action:
        raise ValueError("'action' is required (an action name or '*')")
    if fault not in KINDS:
        raise ValueError(f"'fault' must be one of {', '.join(KINDS)}")
    rule = Rule(
        action=action,
        fault=fault,
        count=int(body.get("count", 1)),
        skip=int(body.get("skip", 0)),
        delay_ms=int(body.get("delay_ms", 2000)),
        code=body.get("code"),
        status=int(body.get("status", 400)),
        message=body.get("message"),
    )
    if rule.count < 1 or rule.skip < 0 or rule.delay_ms < 0:
        raise ValueError("'count' must be >= 1, 'skip' and 'delay_ms' >= 0")
    if fault == "error":
        if not isinstance(rule.code, str) or not rule.code:
            raise ValueError("an 'error' fault needs 'code' (the AWS error code to return)")
        if not 400 <= rule.status <= 599:
            raise ValueError("'status' must be an HTTP error status (400..599)")
        if rule.message is None:
            rule.message = rule.code
    return rule


def add(rule: Rule) -> None:
    with _lock:
        _rules.append(rule)


def take(action: str) -> Rule | None:
    """Counts one request for `action` and returns the fault it gets, if any."""
    with _lock:
        _calls[action] += 1
        for rule in _rules:
            if not rule.matches(action):
                continue
            if rule.skip > 0:
                rule.skip -= 1
                continue
            rule.count -= 1
            if rule.count <= 0:
                _rules.remove(rule)
            _faulted[action] += 1
            return Rule(action=action, fault=rule.fault, delay_ms=rule.delay_ms, code=rule.code,
                        status=rule.status, message=rule.message)
    return None


def pending() -> list[dict]:
    with _lock:
        return [asdict(rule) for rule in _rules]


def clear_faults() -> None:
    with _lock:
        _rules.clear()


def calls() -> dict:
    with _lock:
        return {"calls": dict(_calls), "faulted": dict(_faulted)}


def clear_calls() -> None:
    with _lock:
        _calls.clear()
        _faulted.clear()


def reset() -> None:
    clear_faults()
    clear_calls()
