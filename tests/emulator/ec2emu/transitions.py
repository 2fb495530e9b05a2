"""How long each pending state lasts, in seconds, evaluated lazily at read time.

A resource records when its transition started (an emulator-clock datetime) and its state is
derived whenever it is read: `done(started_at, "volume-create")` is true once the emulator clock
has moved `duration("volume-create")` seconds past `started_at`. Because the duration is looked
up at read time, a test can hold a resource pending with a huge duration and release it later by
setting the duration to 0 (or by advancing the clock).

The store is generic: any fixes module reads any key, and may register its own defaults with
`register_defaults()` (the images module adds `snapshot`, `image`, `copy-image`, ...).
Settings are changed with `POST /_emulator/transitions {"key": seconds, ...}`.
"""

import threading
from datetime import datetime

from . import clock

# Small but non-zero, so a demo against the emulator shows the same states AWS shows.
DEFAULTS: dict[str, float] = {
    "volume-create": 1.0,
    "volume-attach": 0.5,
    "volume-detach": 0.5,
    "volume-delete": 0.5,
    "volume-modify": 1.0,
    "volume-optimize": 1.0,
}
FALLBACK_SECONDS = 0.5

_lock = threading.Lock()
_settings: dict[str, float] = {}


def register_defaults(defaults: dict[str, float]) -> None:
    """Adds default durations for keys a module owns (does not override settings in force)."""
    with _lock:
        for key, value in defaults.items():
            DEFAULTS.setdefault(key, float(value))


def duration(key: str, default: float | None = None) -> float:
    """Seconds the pending state `key` lasts: the setting in force, else the registered default,
    else `default`, else FALLBACK_SECONDS."""
    with _lock:
        if key in _settings:
            return _settings[key]
        if key in DEFAULTS:
            return DEFAULTS[key]
    return FALLBACK_SECONDS if default is None else float(default)


def elapsed(started_at: datetime) -> float:
    """Seconds of emulator time since `started_at` (a naive UTC datetime)."""
    return (clock.now() - started_at).total_seconds()


def done(started_at: datetime, key: str, default: float | None = None) -> bool:
    return elapsed(started_at) >= duration(key, default)


def progress(started_at: datetime, key: str, default: float | None = None) -> int:
    """Percent of the transition that has elapsed, 0..100."""
    total = duration(key, default)
    if total <= 0:
        return 100
    return max(0, min(100, int(elapsed(started_at) * 100 / total)))


def update(values: dict[str, float]) -> None:
    clean = {}
    for key, value in values.items():
        seconds = float(value)
        if seconds < 0:
            raise ValueError(f"duration for {key!r} must be >= 0")
        clean[str(key)] = seconds
    with _lock:
        _settings.update(clean)


def settings() -> dict[str, float]:
    with _lock:
        return {**DEFAULTS, **_settings}


def reset() -> None:
    with _lock:
        _settings.clear()
