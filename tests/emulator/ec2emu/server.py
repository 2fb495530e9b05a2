"""The HTTP server: moto's own WSGI dispatcher wrapped by a thin middleware.

The middleware
  * answers the control API under /_emulator/ (control.py),
  * names and counts every AWS request, and applies scripted faults (faults.py),
  * refuses what an IAM user's policies do not allow (iam.py; other credentials unchecked),
  * serialises calls into moto with one lock: moto's backends are not thread-safe, and the
    corrections do check-then-act work (ClientToken replay, attachment limits) that must not
    interleave. moto serves about 150-180 requests/s in one process either way; `slow` faults
    sleep outside the lock so they do not hold other clients up.

moto reads MOTO_EC2_LOAD_DEFAULT_AMIS when it is imported: without `false`, every Region
preloads about 1,300 fake AMIs and their snapshots. It is forced here, before moto's import.
"""

import importlib
import io
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"

from moto.moto_api._internal.models import moto_api_backend  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

from . import clock, control, faults, iam, principals, transitions  # noqa: E402
from .fixes import MODULES  # noqa: E402

log = logging.getLogger("ec2emu")

# One lock around everything that touches moto's state (requests, reset).
MOTO_LOCK = threading.RLock()

# X-Amz-Target prefixes of JSON-protocol services, for requests without a SigV4 scope.
TARGET_PREFIXES = {"TrentService": "kms"}

_fix_modules: list = []


def load_fixes() -> None:
    """Imports ec2emu.fixes.<name> for each name in fixes.MODULES and installs it once, and
    the IAM evaluation's control endpoint (iam.py)."""
    iam.install()
    for name in MODULES:
        module = importlib.import_module(f"ec2emu.fixes.{name}")
        module.install()
        _fix_modules.append(module)


def reset_all() -> None:
    with MOTO_LOCK:
        moto_api_backend.reset()
        faults.reset()
        principals.reset()
        iam.reset()
        clock.reset()
        transitions.reset()
        for module in _fix_modules:
            module.reset()


def _scope_service(environ) -> str | None:
    """The service named in the SigV4 credential scope: Credential=AKID/date/region/SERVICE/aws4_request."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return None
    parts = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return parts[3] if len(parts) >= 5 else None


def action_name(environ, body: bytes) -> str:
    """`CreateVolume` for EC2 (Query API `Action`), `service:Operation` for anything else."""
    service = _scope_service(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target and "." in target:
        prefix, operation = target.rsplit(".", 1)
        return f"{service or TARGET_PREFIXES.get(prefix, prefix)}:{operation}"
    action = None
    if body and b"Action=" in body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    if not action:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
    if not action:
        return f"{service or 'unknown'}:{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
    return action if service in (None, "ec2") else f"{service}:{action}"


# A Describe request names the resources it reads by id in one of two ways: a list of ids
# (`VolumeId.1=`, `ImageId.1=`, `SnapshotId.1=`, `InstanceId.1=`), or a filter on the id
# (`Filter.1.Name=volume-id`, which answers a missing id by its absence instead of an error).
_ID_LIST = re.compile(r"(?:^|&)(?:Volume|Image|Snapshot|Instance)Id\.1=")
_ID_FILTER = re.compile(r"(?:^|&)Filter\.\d+\.Name=(?:volume|image|snapshot|instance)-id(?:&|$)")


def names_ids(action: str, environ, body: bytes) -> bool:
    """Whether a Describe request names the resources it reads by id, rather than reading
    them by another filter (a tag, a state) or all at once."""
    if not action.startswith("Describe"):
        return False
    text = body.decode("utf-8", "replace") if body else environ.get("QUERY_STRING", "")
    return _ID_LIST.search(text) is not None or _ID_FILTER.search(text) is not None


def error_response(start_response, json_protocol: bool, status: int, code: str, message: str) -> list[bytes]:
    """An error in the shape the service really uses: EC2's XML, or the JSON protocol's body
    (services called with X-Amz-Target, such as KMS)."""
    request_id = str(uuid.uuid4())
    if json_protocol:
        body = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/x-amz-json-1.1"
    else:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        ctype = "text/xml;charset=UTF-8"
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", ctype), ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)],
    )
    return [body]


# The errors a fault produces, per protocol: (status, code, message).
EC2_FAULTS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "server_error": (500, "InternalError", "An internal error has occurred"),
}
JSON_FAULTS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "server_error": (500, "KMSInternalException", "An internal error has occurred"),
}


class Dropped(ConnectionAbortedError):
    """Raised after closing the client's socket: werkzeug treats it as a dropped connection
    and writes nothing more."""


def _drop(environ) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise Dropped("ec2emu: connection dropped by a fault")


def _read_body(environ) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


class EmulatorApp:
    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)

    def call_moto(self, environ):
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        with MOTO_LOCK:
            try:
                result = self.moto(environ, start_response)
            except Exception as e:  # moto bug or unimplemented call: answer in the service's shape
                if isinstance(e, NotImplementedError):
                    log.warning("not implemented by moto: %s", e)
                else:
                    log.exception("moto raised on %s", environ.get("ec2emu.action"))
                return self.crash_response(environ, e)
            try:
                chunks = captured.pop("written", []) + [bytes(c) for c in result]
            finally:
                if hasattr(result, "close"):
                    result.close()
        return captured["status"], captured["headers"], chunks

    @staticmethod
    def crash_response(environ, error: Exception):
        """moto raises instead of answering for unimplemented calls (NotImplementedError) and its
        own bugs; werkzeug would send an HTML 500 the AWS SDKs cannot parse. Answer with the
        service's error shape instead: 400 UnsupportedOperation for what moto does not implement
        (not retried), 500 InternalError otherwise (retried, as AWS 500s are)."""
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        json_protocol = "HTTP_X_AMZ_TARGET" in environ
        if isinstance(error, NotImplementedError):
            chunks = error_response(start_response, json_protocol, 400, "UnsupportedOperation",
                                    f"The emulator (moto) does not implement this: {error}")
        else:
            chunks = error_response(start_response, json_protocol, 500, "InternalError",
                                    f"The emulator (moto) failed: {type(error).__name__}: {error}")
        return captured["status"], captured["headers"], chunks

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        body = _read_body(environ)
        if path.startswith("/_emulator/"):
            return control.handle(environ, start_response, body, reset_all, MOTO_LOCK)
        if path.startswith("/moto-api"):
            status, headers, chunks = self.call_moto(environ)
            start_response(status, headers)
            return chunks

        action = action_name(environ, body)
        environ["ec2emu.action"] = action
        rule = faults.take(action, names_ids(action, environ, body))
        fault = rule.fault if rule else None
        if fault:
            log.info("fault %s on %s", fault, action)
        if fault in ("throttle", "server_error"):
            json_protocol = "HTTP_X_AMZ_TARGET" in environ
            table = JSON_FAULTS if json_protocol else EC2_FAULTS
            return error_response(start_response, json_protocol, *table[fault])
        if fault == "error":
            return error_response(start_response, "HTTP_X_AMZ_TARGET" in environ, rule.status, rule.code, rule.message)
        if fault == "slow":
            time.sleep(rule.delay_ms / 1000.0)
        if fault == "drop":
            _drop(environ)
        principals.record(environ, action)
        with MOTO_LOCK:
            refused = iam.refusal(environ, action, body)
        if refused:
            return error_response(start_response, "HTTP_X_AMZ_TARGET" in environ, *refused)
        status, headers, chunks = self.call_moto(environ)
        if action == "sts:AssumeRole" and status.startswith("200"):
            principals.record_session(body, chunks)
        if fault == "drop_after":
            _drop(environ)
        start_response(status, headers)
        return chunks


class Handler(MotoRequestHandler):
    verbose = False

    def log_request(self, code="-", size="-"):
        if self.verbose:
            super().log_request(code, size)


def serve(host: str, port: int, ready_file: str | None, verbose: bool = False) -> None:
    import signal

    load_fixes()
    Handler.verbose = verbose
    server = make_server(host, port, EmulatorApp(), threaded=True, request_handler=Handler)
    actual_port = server.socket.getsockname()[1]

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready_file:
        tmp = ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{actual_port}\n")
        os.replace(tmp, ready_file)
    print(f"ec2emu: serving moto on http://{host}:{actual_port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        print("ec2emu: stopped", file=sys.stderr, flush=True)
