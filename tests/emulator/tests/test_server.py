"""The server layer: ready file, control API, call counting, faults, clock, transitions."""

import signal
import time
import urllib.error

import botocore.exceptions
import pytest

from conftest import error_code, start_emulator


def create(ec2, **kw):
    return ec2.create_volume(AvailabilityZone="us-east-1a", Size=kw.pop("Size", 10), **kw)


def test_counts_ec2_and_kms_calls_but_not_control_calls(emu, ec2):
    create(ec2)
    ec2.describe_volumes()
    ec2.describe_volumes()
    emu.client("kms").list_keys()
    emu.control("GET", "clock")
    assert emu.calls() == {"CreateVolume": 1, "DescribeVolumes": 2, "kms:ListKeys": 1}
    emu.control("DELETE", "calls")
    assert emu.calls() == {}


def test_describe_calls_naming_ids_are_counted_apart_from_filtered_reads(emu, ec2):
    volume = create(ec2)["VolumeId"]
    ec2.describe_volumes(VolumeIds=[volume])
    ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume]}])
    ec2.describe_volumes(Filters=[{"Name": "tag:volume-id", "Values": ["x"]}])
    ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["available"]}])
    ec2.describe_volumes()
    ec2.describe_images(Owners=["self"], Filters=[{"Name": "owner-id", "Values": ["123456789012"]}])
    state = emu.control("GET", "calls")
    assert state["calls"] == {"CreateVolume": 1, "DescribeVolumes": 5, "DescribeImages": 1}
    assert state["by_ids"] == {"DescribeVolumes": 2}
    emu.control("DELETE", "calls")
    assert emu.control("GET", "calls")["by_ids"] == {}


def test_throttle_fault_is_ec2_request_limit_exceeded_with_503(emu, ec2):
    emu.fault(action="CreateVolume", fault="throttle", count=2)
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(ec2)
        assert error_code(e) == "RequestLimitExceeded"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert e.value.response["Error"]["Message"] == "Request limit exceeded."
    create(ec2)
    ec2.describe_volumes()  # other actions are not affected
    state = emu.control("GET", "calls")
    assert state["calls"]["CreateVolume"] == 3 and state["faulted"] == {"CreateVolume": 2}
    assert len(ec2.describe_volumes()["Volumes"]) == 1


def test_skip_then_server_error_and_wildcard(emu, ec2):
    emu.fault(action="*", fault="server_error", skip=1, count=1)
    ec2.describe_volumes()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(ec2)
    assert error_code(e) == "InternalError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert emu.control("GET", "faults")["faults"] == []


def test_error_fault_returns_the_chosen_terminal_error_and_applies_nothing(emu, ec2, instance):
    volume = create(ec2, Size=1)["VolumeId"]
    emu.fault(action="AttachVolume", fault="error", code="IncorrectState", status=400,
              message="The volume is not in a valid state.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")
    assert error_code(e) == "IncorrectState"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Message"] == "The volume is not in a valid state."
    assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available"
    assert emu.control("GET", "calls")["faulted"] == {"AttachVolume": 1}


def test_error_fault_needs_a_code(emu):
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.fault(action="AttachVolume", fault="error")
    assert e.value.code == 400


def test_a_request_faulted_by_one_rule_does_not_use_another_rules_skip(emu, ec2):
    emu.control("POST", "faults", [
        {"action": "DescribeVolumes", "fault": "throttle", "skip": 2},
        {"action": "DescribeVolumes", "fault": "server_error"},
    ])
    codes = []
    for _ in range(4):
        try:
            ec2.describe_volumes()
            codes.append("ok")
        except botocore.exceptions.ClientError as e:
            codes.append(e.response["Error"]["Code"])
    assert codes == ["InternalError", "ok", "ok", "RequestLimitExceeded"]


def test_kms_throttle_uses_the_json_error_shape(emu):
    emu.fault(action="kms:ListKeys", fault="throttle")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        emu.client("kms").list_keys()
    assert error_code(e) == "ThrottlingException"


def test_slow_fault_delays_then_serves(emu, ec2):
    emu.fault(action="DescribeVolumes", fault="slow", delay_ms=400)
    start = time.monotonic()
    ec2.describe_volumes()
    assert time.monotonic() - start >= 0.4


def test_drop_closes_the_connection_without_applying(emu, ec2):
    emu.fault(action="CreateVolume", fault="drop")
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        create(ec2)
    assert ec2.describe_volumes()["Volumes"] == []


def test_drop_after_applies_then_loses_the_response(emu, ec2):
    emu.fault(action="CreateVolume", fault="drop_after")
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        create(ec2)
    assert len(ec2.describe_volumes()["Volumes"]) == 1


def test_fault_list_and_clear(emu):
    emu.fault(action="CreateVolume", fault="throttle", count=3)
    assert emu.control("GET", "faults")["faults"][0]["count"] == 3
    emu.control("DELETE", "faults")
    assert emu.control("GET", "faults")["faults"] == []


def test_bad_fault_is_rejected(emu):
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.fault(action="CreateVolume", fault="explode")
    assert e.value.code == 400


def test_clock_advances_and_reset_clears_everything(emu, ec2):
    before = emu.control("GET", "clock")
    emu.advance(86400)
    after = emu.control("GET", "clock")
    assert after["offset_seconds"] == 86400 and after["now"] > before["now"]
    emu.transitions(volume_create=123)
    emu.fault(action="CreateVolume", fault="throttle")
    emu.control("POST", "reset")
    assert emu.control("GET", "clock")["offset_seconds"] == 0
    assert emu.control("GET", "faults")["faults"] == []
    assert emu.control("GET", "transitions")["transitions"]["volume-create"] == 1.0
    assert emu.calls() == {}


def test_unimplemented_call_is_an_ec2_error_not_html(emu, ec2):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_volume_status()
    assert error_code(e) == "UnsupportedOperation"


def test_sigterm_exits_cleanly(tmp_path):
    proc, port = start_emulator(tmp_path)
    assert port > 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "stopped" in (tmp_path / "emulator.log").read_text()


def test_concurrent_clients_are_served(emu):
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        c = emu.client()
        c.create_volume(AvailabilityZone="us-east-1a", Size=1 + i)
        return len(c.describe_volumes()["Volumes"])

    with ThreadPoolExecutor(8) as pool:
        assert all(n >= 1 for n in pool.map(work, range(16)))
    assert emu.calls()["CreateVolume"] == 16
