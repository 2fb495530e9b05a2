"""The control API under /_emulator/ (JSON in, JSON out; never counted as an AWS call).

    POST   /_emulator/reset        moto reset + counters, faults, clock, transitions, fixes state
    GET    /_emulator/calls        {"calls": {...}, "faulted": {...}}
    DELETE /_emulator/calls        zero the counters
    POST   /_emulator/faults       add a fault rule (see faults.py); GET lists; DELETE clears
    POST   /_emulator/clock        {"advance_seconds": n}; GET {"now", "offset_seconds"}
    POST   /_emulator/transitions  {"volume-create": 1.0, ...}; GET lists the durations in force
    GET    /_emulator/principals   {"principals": {ACCESS_KEY_ID: {"session": {...} or null, "calls": {...}}}}
    GET    /_emulator/health       {"status": "ok"}
    GET/POST /_emulator/<name>     endpoints that fixes modules add with register() (images,
                                   image-copy-failures, instance-store)

Fixes modules add their own endpoints with `register(name, handler)`: `handler(method, payload)`
runs under the moto lock and returns a JSON-able body (HTTP 200); a JSON-object payload has the
query parameters merged in (a GET carries its arguments there). It raises ValueError, TypeError
or KeyError for a bad request (400) and LookupError for an unknown resource (404).
"""

import json
from collections.abc import Callable
from urllib.parse import parse_qs

from . import clock, faults, principals, transitions

# name (the path after /_emulator/) -> handler(method, payload) -> body; see register().
_extensions: dict[str, Callable[[str, object], object]] = {}


def register(name: str, handler: Callable[[str, object], object]) -> None:
    """Adds the control endpoint /_emulator/<name> (for fixes modules, at install time)."""
    _extensions[name] = handler


def _json(start_response, status: int, body) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def handle(environ, start_response, body: bytes, reset_all: Callable[[], None], lock=None) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "").rstrip("/")
    name = path[len("/_emulator/"):]
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError as e:
        return _json(start_response, 400, {"error": f"invalid JSON: {e}"})
    try:
        if name == "health" and method == "GET":
            return _json(start_response, 200, {"status": "ok"})
        if name == "reset" and method == "POST":
            reset_all()
            return _json(start_response, 200, {"status": "ok"})
        if name == "principals" and method == "GET":
            return _json(start_response, 200, principals.snapshot())
        if name == "calls":
            if method == "GET":
                return _json(start_response, 200, faults.calls())
            if method == "DELETE":
                faults.clear_calls()
                return _json(start_response, 200, faults.calls())
        if name == "faults":
            if method == "POST":
                rules = payload if isinstance(payload, list) else [payload]
                for rule in [faults.parse_rule(r) for r in rules]:
                    faults.add(rule)
                return _json(start_response, 200, {"faults": faults.pending()})
            if method == "GET":
                return _json(start_response, 200, {"faults": faults.pending()})
            if method == "DELETE":
                faults.clear_faults()
                return _json(start_response, 200, {"faults": []})
        if name == "clock":
            if method == "POST":
                clock.advance(float(payload.get("advance_seconds", 0)))
            if method in ("GET", "POST"):
                return _json(start_response, 200, {"now": clock.isoformat(), "offset_seconds": clock.offset_seconds()})
        if name == "transitions":
            if method == "POST":
                if not isinstance(payload, dict):
                    raise ValueError("expected a JSON object of key -> seconds")
                transitions.update(payload)
            if method in ("GET", "POST"):
                return _json(start_response, 200, {"transitions": transitions.settings()})
        if name in _extensions:
            if isinstance(payload, dict):
                query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
                payload = {**query, **payload}
            if lock is None:
                return _json(start_response, 200, _extensions[name](method, payload))
            with lock:
                return _json(start_response, 200, _extensions[name](method, payload))
    except (ValueError, TypeError, KeyError) as e:
        return _json(start_response, 400, {"error": str(e)})
    except LookupError as e:
        return _json(start_response, 404, {"error": str(e.args[0] if e.args else e)})
    return _json(start_response, 404, {"error": f"no such control endpoint: {method} {path}"})
