"""The control API under /_emulator/ (JSON in, JSON out; never counted as an AWS call).

    POST   /_emulator/reset        moto reset + counters, faults, clock, transitions, fixes state
    GET    /_emulator/calls        {"calls": {...}, "faulted": {...}}
    DELETE /_emulator/calls        zero the counters
    POST   /_emulator/faults       add a fault rule (see faults.py); GET lists; DELETE clears
    POST   /_emulator/clock        {"advance_seconds": n}; GET {"now", "offset_seconds"}
    POST   /_emulator/transitions  {"volume-create": 1.0, ...}; GET lists the durations in force
    GET    /_emulator/health       {"status": "ok"}
    GET/POST /_emulator/<name>     endpoints that fixes modules add with register() (e.g.
                                   instance-store, fixes/instances.py); GET takes query parameters
"""

import json
from collections.abc import Callable
from urllib.parse import parse_qs

from . import clock, faults, transitions

# Endpoints added by fixes modules: name -> handler(method, payload) -> JSON-able answer.
_handlers: dict[str, Callable[[str, dict], object]] = {}


def register(name: str, handler: Callable[[str, dict], object]) -> None:
    """Adds GET/POST /_emulator/<name>. The handler gets the method and the JSON body merged with
    the query parameters; ValueError/TypeError/KeyError from it become HTTP 400."""
    _handlers[name] = handler


def _json(start_response, status: int, body) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def handle(environ, start_response, body: bytes, reset_all: Callable[[], None]) -> list[bytes]:
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
        if name in _handlers and method in ("GET", "POST"):
            query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            body = payload if isinstance(payload, dict) else {}
            return _json(start_response, 200, _handlers[name](method, {**query, **body}))
    except (ValueError, TypeError, KeyError) as e:
        return _json(start_response, 400, {"error": str(e)})
    return _json(start_response, 404, {"error": f"no such control endpoint: {method} {path}"})
