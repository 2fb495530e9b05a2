"""Request counters and scripted faults.

Counters: every AWS request (not /_emulator/ or /moto-api/) is counted by action name, faulted
or not; faulted requests are also counted in `faulted`, and Describe requests that name their
resources by id (`VolumeId.1=...` or a `volume-id` filter: a controller's on-demand read, as
opposed to a sweep) in `by_ids`. EC2 actions are named as in the Query API
(`DescribeVolumes`); JSON-protocol services by service and operation (`kms:DescribeKey`).

Faults: a rule `{"action", "fault", "count", "skip", "delay_ms"}` applies to the next `count`
requests for `action` (or `"*"`) after letting `skip` of them through. Rules are consumed in the
order they were added; one request takes at most one fault, and only requests that no rule
faults count as "let through" for `skip` (a request faulted by one rule does not use up another
rule's skip).

The `error` kind answers with a chosen AWS error instead of a transport fault, for terminal
errors a test needs on demand: `{"action": "AttachVolume", "fault": "error", "code":
"IncorrectState", "status": 400, "message": "..."}` (`status` defaults to 400, `message` to the code).
The request is not applied.
"""

import threading
from collections import Counter
from dataclasses import asdict, dataclass

KINDS = ("throttle", "server_error", "slow", "drop", "drop_after", "error")

_lock = threading.Lock()
_calls: Counter = Counter()
_faulted: Counter = Counter()
_by_ids: Counter = Counter()
_rules: list["Rule"] = []


@dataclass
class Rule:
    action: str
    fault: str
    count: int = 1
    skip: int = 0
    delay_ms: int = 2000
    code: str = ""
    status: int = 400
    message: str = ""

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
        code=str(body.get("code", "")),
        status=int(body.get("status", 400)),
        # The code doubles as the message when none is given.
        message=str(body.get("message", body.get("code", ""))),
    )
    if rule.count < 1 or rule.skip < 0 or rule.delay_ms < 0:
        raise ValueError("'count' must be >= 1, 'skip' and 'delay_ms' >= 0")
    if rule.fault == "error" and not rule.code:
        raise ValueError("an 'error' fault needs a 'code' (the AWS error code to return)")
    if not 400 <= rule.status <= 599:
        raise ValueError("'status' must be an HTTP error status (400..599)")
    return rule


def add(rule: Rule) -> None:
    with _lock:
        _rules.append(rule)


def take(action: str, names_ids: bool = False) -> Rule | None:
    """Counts one request for `action` (`names_ids`: a Describe request naming its resources
    by id) and returns the fault it gets, if any."""
    with _lock:
        _calls[action] += 1
        if names_ids:
            _by_ids[action] += 1
        matching = [rule for rule in _rules if rule.matches(action)]
        for rule in matching:
            if rule.skip > 0:
                continue
            rule.count -= 1
            if rule.count <= 0:
                _rules.remove(rule)
            _faulted[action] += 1
            return Rule(action=action, fault=rule.fault, delay_ms=rule.delay_ms,
                        code=rule.code, status=rule.status, message=rule.message)
        for rule in matching:  # the request goes through: it counts against every skip
            rule.skip -= 1
    return None


def pending() -> list[dict]:
    with _lock:
        return [asdict(rule) for rule in _rules]


def clear_faults() -> None:
    with _lock:
        _rules.clear()


def calls() -> dict:
    with _lock:
        return {"calls": dict(_calls), "faulted": dict(_faulted), "by_ids": dict(_by_ids)}


def clear_calls() -> None:
    with _lock:
        _calls.clear()
        _faulted.clear()
        _by_ids.clear()


def reset() -> None:
    clear_faults()
    clear_calls()
