"""`infrapower lab` as an admin uses it: up, status, fault, log, down."""

import json
import os
import subprocess
import sys
import time

import pytest

from infrapower.lab.core import wait_until


def infrapower(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "infrapower.cli.main", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def lab_dir(tmp_path):
    yield str(tmp_path)
    infrapower("lab", "down", "--dir", str(tmp_path), check=False)


def test_up_status_fault_log_down(lab_dir):
    up = infrapower("lab", "up", "--dir", lab_dir)
    assert "clc" in up.stdout and "lab up in" in up.stderr
    again = infrapower("lab", "up", "--dir", lab_dir, check=False)
    assert again.returncode == 1 and "already up" in again.stderr and "Traceback" not in again.stderr

    report = json.loads(infrapower("lab", "status", "--dir", lab_dir, "--json").stdout)
    assert [s["server"] for s in report["servers"]] == ["clc", "nc1", "nc2"]
    assert all(report["processes"].values())

    infrapower("lab", "fault", "--dir", lab_dir, "outlet", "pdu1:1", "stuck_on")
    assert "[stuck_on]" in infrapower("lab", "status", "--dir", lab_dir).stdout
    # Mains gone: on battery, then (a 1 s battery) the output goes off.
    infrapower("lab", "power", "--dir", lab_dir, "ups2", "off", "--runtime", "1")
    assert "OB DISCHRG" in infrapower("lab", "status", "--dir", lab_dir).stdout
    wait_until(
        lambda: "input_lost" in infrapower("lab", "status", "--dir", lab_dir).stdout,
        time.monotonic() + 10,
        "ups2's battery empty",
    )
    log = infrapower("lab", "log", "--dir", lab_dir).stdout
    assert "mains  ups2       off" in log and "ups    ups2       off" in log

    pids = [int(p) for p in (open(os.path.join(lab_dir, "pids", name)).read() for name in os.listdir(os.path.join(lab_dir, "pids")))]
    stopped = infrapower("lab", "down", "--dir", lab_dir)
    assert "upsd" in stopped.stderr
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_status_without_a_lab_is_one_line(tmp_path):
    result = infrapower("lab", "status", "--dir", str(tmp_path / "none"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "infrapower lab up" in result.stderr
