"""The lab's BMCs are real ipmi_sim processes: real clients (ipmitool,
pyghmi, fence-agents' fence_ipmilan) see chassis power and PSU sensors that
follow the rack's physics."""

import shutil
import subprocess
import time

import pytest

from infrapower.lab import bmc
from infrapower.lab.core import Lab, LabError, wait_until
from infrapower.lab.rack import default_topology, powered_servers

pytestmark = pytest.mark.skipif(
    not (shutil.which("ipmi_sim") and shutil.which("ipmitool")), reason="needs openipmi and ipmitool"
)

FENCE_IPMILAN = "/usr/sbin/fence_ipmilan"


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    lab.rack.create(default_topology())
    started = time.monotonic()
    bmc.start(lab)
    bmc.wait_ready(lab, time.monotonic() + 10)
    lab.ready_seconds = time.monotonic() - started
    yield lab
    lab.stop_all()


def ipmitool(lab, server, *args, user=bmc.ADMIN_USER, password=None, check=True):
    result = subprocess.run(
        bmc.ipmitool_argv(lab, server, user=user, password=password) + list(args),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def power_status(lab, server, **kw):
    out = ipmitool(lab, server, "chassis", "power", "status", **kw).stdout
    return out.strip().rsplit(" ", 1)[-1]


def psu_sdr(lab, server):
    """{'PSU1 Status': 'Presence detected, ...'} from `sdr type "Power Supply"`."""
    out = ipmitool(lab, server, "sdr", "type", "Power Supply").stdout
    rows = [[cell.strip() for cell in line.split("|")] for line in out.splitlines() if "|" in line]
    return {row[0]: row[-1] for row in rows}


def sdr_values(lab, server, sensor_type):
    """{'PSU1 Vin': '230 Volts'} from `sdr type Voltage` (or Current)."""
    out = ipmitool(lab, server, "sdr", "type", sensor_type).stdout
    rows = [[cell.strip() for cell in line.split("|")] for line in out.splitlines() if "|" in line]
    return {row[0]: row[-1] for row in rows}


def sensor_table(lab, server):
    """{'PSU1 Vin': ('230.000', 'Volts')} from `ipmitool sensor`."""
    out = ipmitool(lab, server, "sensor").stdout
    rows = [[cell.strip() for cell in line.split("|")] for line in out.splitlines() if "|" in line]
    return {row[0]: (row[1], row[2]) for row in rows}


def powered(lab):
    return powered_servers(lab.rack.topology(), lab.rack.read())


def server_events(lab, server):
    return [e["state"] for e in lab.rack.power_log() if e["kind"] == "server" and e["name"] == server]


def test_all_bmcs_come_up_fast_and_report_the_rack(lab):
    assert lab.ready_seconds < 2.0, f"BMCs took {lab.ready_seconds:.2f} s"
    status = bmc.status(lab)
    assert set(status) == {"clc", "nc1", "nc2"}
    for server, entry in status.items():
        assert entry["bmc"] == "up"
        assert entry["power"] == "on"
        assert entry["psus"] == {"psu1": "ok", "psu2": "ok"}
        assert entry["port"] == lab.port(f"bmc:{server}")
        assert entry["users"]["operator"]["level"] == 3
    assert len({entry["port"] for entry in status.values()}) == 3


def test_ipmitool_power_off_on_cycle_moves_the_rack(lab):
    assert power_status(lab, "nc1") == "on"

    ipmitool(lab, "nc1", "chassis", "power", "off")
    assert lab.rack.read()["chassis"]["nc1"] is False
    assert powered(lab) == {"clc": True, "nc1": False, "nc2": True}
    assert power_status(lab, "nc1") == "off"

    ipmitool(lab, "nc1", "chassis", "power", "on")
    assert powered(lab)["nc1"] is True
    assert power_status(lab, "nc1") == "on"

    ipmitool(lab, "nc1", "chassis", "power", "cycle")
    # ipmi_sim turns the chassis off at once and on again ~1 s later.
    wait_until(lambda: server_events(lab, "nc1")[-2:] == ["off", "on"] and len(server_events(lab, "nc1")) >= 5,
               time.monotonic() + 5, "power cycle completes")
    assert server_events(lab, "nc1") == ["on", "off", "on", "off", "on"]
    assert power_status(lab, "nc1") == "on"
    assert server_events(lab, "nc2") == ["on"]


def test_cut_feeds_read_as_power_off_and_input_lost(lab):
    lab.rack.switch_outlet("pdu1:1", False)
    # One feed left: still on; the BMC's sensor shows the lost input.
    assert power_status(lab, "clc") == "on"
    wait_until(lambda: "AC lost" in psu_sdr(lab, "clc")["PSU1 Status"], time.monotonic() + 3, "PSU1 input lost")
    assert "AC lost" not in psu_sdr(lab, "clc")["PSU2 Status"]

    lab.rack.switch_outlet("pdu2:1", False)
    assert power_status(lab, "clc") == "off"
    wait_until(lambda: "AC lost" in psu_sdr(lab, "clc")["PSU2 Status"], time.monotonic() + 3, "PSU2 input lost")
    assert lab.rack.read()["chassis"]["clc"] is True  # nobody pressed a button

    lab.rack.switch_outlet("pdu1:1", True)
    lab.rack.switch_outlet("pdu2:1", True)
    assert power_status(lab, "clc") == "on"
    wait_until(
        lambda: all(reading == "Presence detected" for reading in psu_sdr(lab, "clc").values()),
        time.monotonic() + 3,
        "inputs restored",
    )


def test_psu_input_voltage_and_current_follow_the_feeds(lab):
    fed = {"PSU1 Vin": "230 Volts", "PSU2 Vin": "230 Volts"}
    drawing = {"PSU1 Iin": "1.20 Amps", "PSU2 Iin": "1.20 Amps"}
    for server in ("clc", "nc1", "nc2"):
        assert sdr_values(lab, server, "Voltage") == fed
        assert sdr_values(lab, server, "Current") == drawing
    table = sensor_table(lab, "clc")
    assert table["PSU1 Vin"] == ("230.000", "Volts") and table["PSU2 Iin"] == ("1.200", "Amps")

    # The SDRs say what they measure: the PSU's input, entity 10.N (power supply N).
    verbose = ipmitool(lab, "clc", "sdr", "get", "PSU1 Vin").stdout
    assert "Entity ID" in verbose and "10.1" in verbose
    assert "Sensor Type (Threshold)  : Voltage" in verbose

    lab.rack.switch_outlet("pdu1:1", False)  # clc's psu1 feed
    wait_until(lambda: sdr_values(lab, "clc", "Voltage")["PSU1 Vin"] == "0 Volts", time.monotonic() + 3,
               "PSU1 input voltage drops")
    assert sdr_values(lab, "clc", "Current") == {"PSU1 Iin": "0 Amps", "PSU2 Iin": "1.20 Amps"}
    assert sdr_values(lab, "clc", "Voltage")["PSU2 Vin"] == "230 Volts"
    assert sensor_table(lab, "clc")["PSU1 Vin"] == ("0.000", "Volts")
    assert sdr_values(lab, "nc1", "Voltage") == fed  # other servers' feeds are live

    # A failed PSU still senses its live input but draws nothing.
    bmc.set_psu_fault(lab, "clc", "psu2", "failed")
    assert sdr_values(lab, "clc", "Voltage")["PSU2 Vin"] == "230 Volts"
    assert sdr_values(lab, "clc", "Current")["PSU2 Iin"] == "0 Amps"
    bmc.set_psu_fault(lab, "clc", "psu2", None)

    lab.rack.switch_outlet("pdu1:1", True)
    wait_until(lambda: sdr_values(lab, "clc", "Voltage") == fed and sdr_values(lab, "clc", "Current") == drawing,
               time.monotonic() + 3, "PSU1 input restored")


def test_delayed_outlet_switch_reaches_the_sensors_unasked(lab):
    # pdu2 switches after a delay; nobody reads the rack meanwhile, the
    # watcher settles the pending change when it falls due.
    lab.rack.switch_outlet("pdu2:2", False, delay=0.3)
    assert "AC lost" not in psu_sdr(lab, "nc1")["PSU2 Status"]
    wait_until(lambda: "AC lost" in psu_sdr(lab, "nc1")["PSU2 Status"], time.monotonic() + 3, "delayed input loss")


def test_operator_reads_and_controls_power_and_a_wrong_password_fails(lab):
    op = dict(user=bmc.OPERATOR_USER)
    assert power_status(lab, "nc2", **op) == "on"
    ipmitool(lab, "nc2", "chassis", "power", "off", **op)
    assert powered(lab)["nc2"] is False
    ipmitool(lab, "nc2", "chassis", "power", "on", **op)
    assert powered(lab)["nc2"] is True

    wrong = ipmitool(lab, "nc2", "chassis", "power", "status", password="not-the-password", check=False)
    assert wrong.returncode != 0
    assert "Chassis Power" not in wrong.stdout


def test_fru_print_shows_both_psus_with_rating(lab):
    out = ipmitool(lab, "nc1", "fru", "print").stdout
    assert "Lab Server nc1" in out
    # Board (with its manufacturing date: device.mfr.date) and product area of each PSU.
    assert out.count("Delta Electronics") == 4 and out.count("Board Mfg Date") == 3
    assert "Power Supply 1 (ID 1)" in out and "Power Supply 2 (ID 2)" in out
    assert "Rating 800W" in out
    serials = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Product Serial" in line]
    assert len(set(serials)) == 3  # board + two PSUs, all distinct

    verbose = ipmitool(lab, "nc1", "-v", "fru", "print", "1").stdout
    assert "Power Supply Record" in verbose
    assert "Capacity                   : 800 W" in verbose


def test_pyghmi_power_and_sensors(lab):
    command = pytest.importorskip("pyghmi.ipmi.command")
    ipmi = command.Command(
        bmc="127.0.0.1", port=lab.port("bmc:nc2"), userid=bmc.ADMIN_USER, password=bmc.ADMIN_PASSWORD
    )
    try:
        assert ipmi.get_power()["powerstate"] == "on"
        ipmi.set_power("off", wait=True)
        assert ipmi.get_power()["powerstate"] == "off"
        assert powered(lab)["nc2"] is False

        bmc.set_psu_fault(lab, "nc2", "psu1", "failed")
        readings = {reading.name: reading for reading in ipmi.get_sensor_data()}
        assert {"PSU1 Status", "PSU2 Status"} <= set(readings)
        assert any("fail" in state.lower() for state in readings["PSU1 Status"].states)
        assert readings["PSU1 Status"].health != 0  # not ok
        assert not any("fail" in state.lower() for state in readings["PSU2 Status"].states)

        ipmi.set_power("on", wait=True)
        assert powered(lab)["nc2"] is True
    finally:
        ipmi.ipmi_session.logout()


def test_psu_fault_shows_in_sensors_and_repair_clears_it(lab):
    bmc.set_psu_fault(lab, "nc1", "psu2", "failed")
    assert "Failure detected" in psu_sdr(lab, "nc1")["PSU2 Status"]
    assert bmc.status(lab)["nc1"]["psus"]["psu2"] == "failed"

    bmc.set_psu_fault(lab, "nc1", "psu1", "absent")
    assert "Presence detected" not in psu_sdr(lab, "nc1")["PSU1 Status"]
    # No healthy PSU left: the server is down, and its BMC says so.
    assert power_status(lab, "nc1") == "off"

    bmc.set_psu_fault(lab, "nc1", "psu1", None)
    bmc.set_psu_fault(lab, "nc1", "psu2", None)
    assert set(psu_sdr(lab, "nc1").values()) == {"Presence detected"}
    assert power_status(lab, "nc1") == "on"

    with pytest.raises(LabError):
        bmc.set_psu_fault(lab, "nc1", "psu1", "melted")


def test_bmc_down_is_a_black_hole_and_recovers_in_step_with_the_rack(lab):
    bmc.set_bmc_down(lab, "nc2", True)
    started = time.monotonic()
    lost = ipmitool(lab, "nc2", "chassis", "power", "status", check=False)
    assert lost.returncode != 0
    assert time.monotonic() - started < 10
    assert bmc.status(lab)["nc2"]["bmc"] == "down"
    assert lab.rack.read()["faults"]["bmc:nc2"]["kind"] == "down"
    assert power_status(lab, "nc1") == "on"  # the others are unaffected

    # The rack changes while the BMC is away: it catches up on return.
    lab.rack.switch_outlet("pdu1:3", False)
    bmc.set_bmc_down(lab, "nc2", False)
    assert "bmc:nc2" not in lab.rack.read()["faults"]
    assert power_status(lab, "nc2") == "on"
    assert "AC lost" in psu_sdr(lab, "nc2")["PSU1 Status"]


@pytest.mark.skipif(not shutil.which(FENCE_IPMILAN), reason="needs fence-agents")
def test_fence_ipmilan_drives_the_lab_like_hardware(lab):
    base = [FENCE_IPMILAN, "--ip", "127.0.0.1", "--ipport", str(lab.port("bmc:clc")), "--lanplus", "-C", "3"]
    admin = base + ["--username", bmc.ADMIN_USER, "--password", bmc.ADMIN_PASSWORD]
    # ipmitool asks for ADMINISTRATOR unless told otherwise.
    operator = base + ["--username", bmc.OPERATOR_USER, "--password", bmc.OPERATOR_PASSWORD, "--privlvl", "operator"]

    status = subprocess.run(admin + ["-o", "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "Status: ON" in status.stdout

    off = subprocess.run(operator + ["-o", "off"], capture_output=True, text=True, timeout=60)
    assert off.returncode == 0, off.stderr
    assert powered(lab)["clc"] is False
    status = subprocess.run(admin + ["-o", "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 2 and "Status: OFF" in status.stdout

    on = subprocess.run(operator + ["-o", "on"], capture_output=True, text=True, timeout=60)
    assert on.returncode == 0, on.stderr
    assert powered(lab)["clc"] is True

    wrong = subprocess.run(base + ["--username", "admin", "--password", "nope", "-o", "status"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1
