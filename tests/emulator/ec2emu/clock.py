"""The emulator's notion of "now": real UTC time plus an offset a test can advance.

Everything time-based in the corrections (pending-state transitions, modification start and end
times, the rolling 24-hour modification limit) reads `now()`, so a test can jump a day ahead
with `POST /_emulator/clock {"advance_seconds": 86400}` instead of sleeping.

`now()` returns a naive UTC datetime, the same kind moto's own `moto.core.utils.utcnow()`
returns, so the two can be compared and moto serialises it the same way.
"""

import threading
from datetime import datetime, timedelta, timezone

_lock = threading.Lock()
_offset_seconds = 0.0


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=_offset_seconds)


def offset_seconds() -> float:
    return _offset_seconds


def advance(seconds: float) -> None:
    global _offset_seconds
    if seconds < 0:
        raise ValueError("the emulator clock only moves forward")
    with _lock:
        _offset_seconds += float(seconds)


def reset() -> None:
    global _offset_seconds
    with _lock:
        _offset_seconds = 0.0


def isoformat(value: datetime | None = None) -> str:
    value = value or now()
    return value.replace(microsecond=value.microsecond // 1000 * 1000).isoformat(timespec="milliseconds") + "Z"
