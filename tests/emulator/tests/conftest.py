"""Fixtures: one emulator process per test session (python -m ec2emu on a free port), reset
before every test. Transitions are instant unless a test sets them, so tests are fast; tests of
pending states set the durations they need."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

EMULATOR_DIR = Path(__file__).resolve().parents[1]
INSTANT = {k: 0 for k in ("volume-create", "volume-attach", "volume-detach", "volume-delete",
                          "volume-modify", "volume-optimize", "instance-stop", "instance-start")}


def start_emulator(tmp: Path) -> tuple[subprocess.Popen, int]:
    ready = tmp / "port"
    env = {**os.environ, "PYTHONPATH": str(EMULATOR_DIR)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ec2emu", "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready)],
        env=env, stderr=open(tmp / "emulator.log", "w"),
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited: {(tmp / 'emulator.log').read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("emulator did not become ready in 60 s")
        time.sleep(0.05)
    return proc, int(ready.read_text())


class Emulator:
    def __init__(self, port: int, proc: subprocess.Popen):
        self.port, self.proc = port, proc
        self.url = f"http://127.0.0.1:{port}"

    def control(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def calls(self) -> dict:
        return self.control("GET", "calls")["calls"]

    def transitions(self, **durations) -> None:
        self.control("POST", "transitions", {k.replace("_", "-"): v for k, v in durations.items()})

    def advance(self, seconds: float) -> None:
        self.control("POST", "clock", {"advance_seconds": seconds})

    def fault(self, **rule) -> None:
        self.control("POST", "faults", rule)

    def client(self, service: str = "ec2", region: str = "us-east-1", retries: int = 1):
        return boto3.client(
            service, endpoint_url=self.url, region_name=region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": retries, "mode": "standard"}, read_timeout=15),
        )


@pytest.fixture(scope="session")
def emulator_server():
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_emulator(Path(tmp))
        yield Emulator(port, proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture
def emu(emulator_server):
    emulator_server.control("POST", "reset")
    emulator_server.transitions(**INSTANT)
    return emulator_server


@pytest.fixture
def ec2(emu):
    return emu.client("ec2")


@pytest.fixture
def instance(ec2):
    """An instance in us-east-1a."""
    r = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1a"})
    return r["Instances"][0]["InstanceId"]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]
