"""The lab's SNMP PDUs answer real clients the way hardware does:
net-snmp's tools, and fence-agents' own fence_apc_snmp."""

import subprocess
import time

import pytest

from infrapower import lab as lab_module
from infrapower.lab import pdus

APC_STATUS = ".1.3.6.1.4.1.318.1.1.4.4.2.1.3"  # sPDUOutletCtl: status and switch
APC_RPDU_STATUS = ".1.3.6.1.4.1.318.1.1.12.3.5.1.1.4"  # rPDUOutletStatusOutletState
MARLIN_STATUS = ".1.3.6.1.4.1.534.6.6.7.6.6.1.2.0"  # outletControlStatus, unit 0
MARLIN_OFF = ".1.3.6.1.4.1.534.6.6.7.6.6.1.3.0"  # outletControlOffCmd


@pytest.fixture(scope="module")
def pdu_lab(tmp_path_factory):
    running = lab_module.up(tmp_path_factory.mktemp("pdulab"), components=("pdus",))
    yield running
    lab_module.down(running.dir)


@pytest.fixture
def pdu_rack(pdu_lab):
    yield pdu_lab
    lab_module.reset(pdu_lab)


def snmp(tool, lab, pdu, *args, community="private"):
    port = lab.port(f"snmp:{pdu}")
    return subprocess.run(
        [tool, "-v2c", "-c", community, "-t", "1", "-r", "0", "-Oqv", f"127.0.0.1:{port}", *args],
        capture_output=True,
        text=True,
        timeout=10,
    )


def outlet_on(lab, outlet):
    return lab.rack.read()["outlets"][outlet]["on"]


def test_net_snmp_switches_an_apc_outlet_and_both_tables_agree(pdu_rack):
    assert snmp("snmpget", pdu_rack, "pdu1", f"{APC_STATUS}.4").stdout.strip() == "1"
    assert snmp("snmpset", pdu_rack, "pdu1", f"{APC_STATUS}.4", "i", "2").returncode == 0
    assert outlet_on(pdu_rack, "pdu1:4") is False
    assert snmp("snmpget", pdu_rack, "pdu1", f"{APC_RPDU_STATUS}.4").stdout.strip() == "2"


def test_wrong_values_and_read_only_objects_are_refused(pdu_rack):
    wrong = snmp("snmpset", pdu_rack, "pdu1", f"{APC_STATUS}.4", "i", "9")
    assert "wrongValue" in wrong.stderr
    read_only = snmp("snmpset", pdu_rack, "pdu1", ".1.3.6.1.2.1.1.5.0", "s", "x")
    assert "notWritable" in read_only.stderr
    assert outlet_on(pdu_rack, "pdu1:4") is True


def test_an_unknown_community_gets_no_answer(pdu_rack):
    result = snmp("snmpget", pdu_rack, "pdu1", ".1.3.6.1.2.1.1.2.0", community="nope")
    assert result.returncode != 0 and "Timeout" in result.stderr


def test_marlin_switches_through_its_pending_state(pdu_rack):
    assert snmp("snmpset", pdu_rack, "pdu2", f"{MARLIN_OFF}.5", "i", "0").returncode == 0
    assert snmp("snmpget", pdu_rack, "pdu2", f"{MARLIN_STATUS}.5").stdout.strip() == "2"  # pendingOff
    deadline = time.monotonic() + 2
    while snmp("snmpget", pdu_rack, "pdu2", f"{MARLIN_STATUS}.5").stdout.strip() != "0":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert outlet_on(pdu_rack, "pdu2:5") is False


def test_a_stuck_outlet_accepts_the_command_and_stays_on(pdu_rack):
    pdu_rack.rack.set_fault("pdu1:6", "stuck_on")
    assert snmp("snmpset", pdu_rack, "pdu1", f"{APC_STATUS}.6", "i", "2").returncode == 0
    assert snmp("snmpget", pdu_rack, "pdu1", f"{APC_STATUS}.6").stdout.strip() == "1"


def test_a_silent_outlet_and_a_silent_pdu_get_no_answer(pdu_rack):
    pdu_rack.rack.set_fault("pdu1:7", "silent")
    assert "Timeout" in snmp("snmpget", pdu_rack, "pdu1", f"{APC_STATUS}.7").stderr
    pdu_rack.rack.set_fault("pdu1:7", None)
    pdus.set_silent(pdu_rack, "pdu2", True)
    assert "Timeout" in snmp("snmpget", pdu_rack, "pdu2", ".1.3.6.1.2.1.1.2.0").stderr
    pdus.set_silent(pdu_rack, "pdu2", False)
    assert snmp("snmpget", pdu_rack, "pdu2", ".1.3.6.1.2.1.1.2.0").returncode == 0


def fence_apc_snmp(lab, *args):
    port = lab.port("snmp:pdu1")
    return subprocess.run(
        ["fence_apc_snmp", "--ip=127.0.0.1", f"--ipport={port}", "--community=private", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_fence_apc_snmp_from_fence_agents_fences_a_lab_outlet(pdu_rack):
    started = time.time()
    assert fence_apc_snmp(pdu_rack, "--plug=2", "--action=status").returncode == 0
    off = fence_apc_snmp(pdu_rack, "--plug=2", "--action=off")
    assert off.returncode == 0, off.stderr
    assert fence_apc_snmp(pdu_rack, "--plug=2", "--action=status").returncode == 2
    assert fence_apc_snmp(pdu_rack, "--plug=2", "--action=reboot").returncode == 0
    assert outlet_on(pdu_rack, "pdu1:2") is True
    states = [e["state"] for e in pdu_rack.rack.power_log() if e["t"] >= started and e["name"] == "pdu1:2"]
    assert states == ["off", "on"]
