"""Request counters and scripted faults.

Counters: every AWS request (not /_emulator/ or /moto-api/) is counted by action name, faulted
or not; faulted requests are also counted in `faulted`. EC2 actions are named as in the Query
API (`DescribeVolumes`); JSON-protocol services by service and operation (`kms:DescribeKey`).

Faults: a rule `{"action", "fault", "count", "skip", "delay_ms"}` applies to the next `count`
requests for `action` (or `"*"`) after letting `skip` of them through. Rules are consumed in the
order they were added; one request takes at most one fault.
"""

import threading
from collections import Counter
from dataclasses import asdict, dataclass

KINDS = ("throttle", "server_error", "slow", "drop", "drop_after")

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
    )
    if rule.count < 1 or rule.skip < 0 or rule.delay_ms < 0:
        raise ValueError("'count' must be >= 1, 'skip' and 'delay_ms' >= 0")
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
            return Rule(action=action, fault=rule.fault, delay_ms=rule.delay_ms)
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
