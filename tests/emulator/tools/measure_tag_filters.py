"""Times one tag-filtered DescribeVolumes sweep against a fresh emulator (run by hand, never by
the test suite: it asserts nothing and its numbers depend on the machine).

    cd tests/emulator && PYTHONPATH=. "$(../../hack/emulator-venv.sh)" tools/measure_tag_filters.py 500 3000

For each N: starts `python -m ec2emu` on a free port, creates N volumes tagged as the controller
tags them (`ec2.reconciler.dev/cluster` = `bench`, plus a `Name` per volume), then reads every
volume with DescribeVolumes at MaxResults=500 (NextToken pages) under each filter form:
`tag-key`, `tag:<key>=<value>` (both match all N), and `tag:Name=<one volume's name>` (one
match). Prints seconds per sweep and the pages read.
"""

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

EMULATOR_DIR = Path(__file__).resolve().parents[1]
CLUSTER_TAG = "ec2.reconciler.dev/cluster"


def start(tmp: Path) -> tuple[subprocess.Popen, str]:
    ready = tmp / "port"
    env = {**os.environ, "PYTHONPATH": str(EMULATOR_DIR)}
    proc = subprocess.Popen([sys.executable, "-m", "ec2emu", "--port", "0", "--ready-file", str(ready)],
                            env=env, stderr=open(tmp / "log", "w"))
    while not ready.exists():
        if proc.poll() is not None:
            raise SystemExit((tmp / "log").read_text())
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{ready.read_text().strip()}"


def client(url: str):
    return boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=600))


def sweep(ec2, filters: list) -> tuple[float, int, int]:
    started, pages, seen, token = time.monotonic(), 0, 0, None
    while True:
        kwargs = {"Filters": filters, "MaxResults": 500, **({"NextToken": token} if token else {})}
        page = ec2.describe_volumes(**kwargs)
        pages, seen = pages + 1, seen + len(page["Volumes"])
        token = page.get("NextToken")
        if not token:
            return time.monotonic() - started, pages, seen


def measure(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(Path(tmp))
        try:
            ec2 = client(url)

            def create(i: int) -> None:
                client(url).create_volume(Size=1, AvailabilityZone="us-east-1a", VolumeType="gp3",
                    TagSpecifications=[{"ResourceType": "volume", "Tags": [
                        {"Key": CLUSTER_TAG, "Value": "bench"}, {"Key": "Name", "Value": f"bench-{i}"}]}])

            t0 = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(create, range(n)))
            print(f"N={n}: created in {time.monotonic() - t0:.1f} s", flush=True)
            forms = [("tag-key", [{"Name": "tag-key", "Values": [CLUSTER_TAG]}]),
                     (f"tag:{CLUSTER_TAG}=bench", [{"Name": f"tag:{CLUSTER_TAG}", "Values": ["bench"]}]),
                     ("tag:Name=bench-7 (one match)", [{"Name": "tag:Name", "Values": ["bench-7"]}])]
            for label, filters in forms:
                secs, pages, seen = sweep(ec2, filters)
                print(f"N={n}: {label}: {secs:.2f} s, {pages} pages, {seen} volumes", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["500", "3000"]:
        measure(int(arg))
