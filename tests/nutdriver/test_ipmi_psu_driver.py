"""ipmi-psu, the installed NUT driver (/lib/nut/ipmi-psu, `make
install-driver`), against NUT 2.8.0's own upsdrvctl, upsd, upsc and upscmd
and the lab's ipmi_sim BMCs: the whole rack (tests/conftest.py `lab`),
whose upsd serves every PSU as `<server>-psu<N>` (infrapower.lab.nut).

Faults go into the simulators: PSU faults into the BMC's sensors
(bmc.set_psu_fault), a feed cut at the rack, the BMC stopped (SIGSTOP)."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infrapower.ipmi.chassis import chassis_power, open_session
from infrapower.ipmi.psu import read_power_supplies
from infrapower.ipmi.session import IpmiSettings
from infrapower import lab as lab_module
from infrapower.lab import bmc, nut
from infrapower.lab.core import wait_until
from infrapower.nut.client import NutError

DRIVER = Path(os.environ.get("INFRAPOWER_NUT_DRIVERPATH") or "/lib/nut") / "ipmi-psu"
FENCE_NUT = Path("/usr/sbin/fence_nut")
POLL = nut.PSU_POLLINTERVAL

pytestmark = pytest.mark.skipif(not (DRIVER.exists() and shutil.which(nut.UPSDRVCTL)),
                                reason="needs the installed driver (make install-driver) and NUT's upsdrvctl")


@pytest.fixture
def psulab(rack):
    """The session's rack, reset, with every PSU device fresh in upsd."""
    wait_fresh(rack)
    yield rack
    # What the test changed, undone before the next one waits for OL.
    bmc.set_bmc_down(rack, "clc", False)
    lab_module.reset(rack)
    bmc.sync_sensors(rack, list(rack.rack.topology()["servers"]))
    wait_fresh(rack)


def session(lab):
    return nut.NutSession(lab.port("upsd"))


def wait_fresh(lab, deadline=15):
    """Every PSU device OL in upsd again (the driver polled since the reset)."""
    devices = [d for d in nut.device_names(lab) if "-psu" in d]

    def fresh():
        with session(lab) as upsd:
            return all(upsd.get_var(d, "ups.status") == "OL" for d in devices)

    wait_until(fresh, time.monotonic() + deadline, "every PSU device OL in upsd")


def upsd_vars(lab, device):
    with session(lab) as upsd:
        return upsd.list_var(device)


def wait_var(lab, device, name, value, seconds=3 * POLL + 2):
    def seen():
        with session(lab) as upsd:
            return upsd.get_var(device, name) == value

    wait_until(seen, time.monotonic() + seconds, f"{device} {name} = {value}")


def bmc_session(lab, server):
    return open_session(IpmiSettings("127.0.0.1", lab.port(f"bmc:{server}"), bmc.ADMIN_USER, bmc.ADMIN_PASSWORD))


# -- what the driver publishes --------------------------------------------------------


def test_every_variable_is_what_the_bmc_holds(psulab):
    with bmc_session(psulab, "clc") as ipmi:
        supplies = read_power_supplies(ipmi)
        power = chassis_power(ipmi)
    for number, psu in enumerate(supplies, start=1):
        device = f"clc-psu{number}"
        variables = upsd_vars(psulab, device)
        expected = {
            "device.type": "psu",
            "device.mfr": psu.maker,
            "device.model": psu.model,
            "device.part": psu.part,
            "device.serial": psu.serial,
            "device.mfr.date": psu.mfr_date,
            "ups.id": str(psu.fru_id),
            "ups.realpower.nominal": str(bmc.PSU_RATING_WATTS),
            "input.voltage": "230",
            "input.current": "1.2",
            "input.voltage.minimum": "90",
            "input.voltage.maximum": "264",
            "input.frequency.low": "47",
            "input.frequency.high": "63",
            "chassis.power": power,
            "ups.status": "OL",
            "driver.name": "ipmi-psu",
            "driver.parameter.psu": str(number),
            "driver.parameter.pollinterval": str(POLL),
            "driver.parameter.port": f"127.0.0.1:{psulab.port('bmc:clc')}",
        }
        assert {name: variables.get(name) for name in expected} == expected
        assert psu.maker == "Delta Electronics" and psu.mfr_date == "2023-03-01"
        assert psu.serial.startswith("DSN") and variables["device.serial"] != upsd_vars(psulab, "nc1-psu1")["device.serial"]
        assert "ups.alarm" not in variables
        assert not any("password" in name for name in variables)
    with session(psulab) as upsd:
        assert set(upsd.list_cmd("clc-psu1")) == {"load.off", "load.on", "shutdown.reboot", "load.cycle"}


@pytest.mark.parametrize("fault, alarm", [("failed", "PSU failed"), ("absent", "PSU absent")])
def test_failed_or_absent_supply_is_never_ol(psulab, fault, alarm):
    bmc.set_psu_fault(psulab, "clc", "psu1", fault)
    wait_var(psulab, "clc-psu1", "ups.alarm", alarm)
    variables = upsd_vars(psulab, "clc-psu1")
    # The server runs on psu2: on, without OL for psu1.
    assert variables["ups.status"] == "ALARM" and variables["chassis.power"] == "on"
    assert upsd_vars(psulab, "clc-psu2")["ups.status"] == "OL"
    bmc.set_psu_fault(psulab, "clc", "psu1", None)
    wait_var(psulab, "clc-psu1", "ups.status", "OL")
    assert "ups.alarm" not in upsd_vars(psulab, "clc-psu1")


def test_input_lost_when_the_feed_is_cut(psulab):
    psu1_outlet = psulab.rack.topology()["servers"]["clc"]["psus"]["psu1"]
    psulab.rack.switch_outlet(psu1_outlet, False)
    bmc.sync_sensors(psulab, ["clc"])
    wait_var(psulab, "clc-psu1", "ups.alarm", "PSU input lost")
    variables = upsd_vars(psulab, "clc-psu1")
    assert (variables["ups.status"], variables["input.voltage"], variables["input.current"]) == ("ALARM", "0", "0")
    assert upsd_vars(psulab, "clc-psu2")["ups.status"] == "OL"


def test_bmc_gone_is_data_stale_within_two_polls_then_back(psulab):
    bmc.set_bmc_down(psulab, "clc", True)
    gone = time.monotonic()

    def stale():
        with session(psulab) as upsd:
            try:
                upsd.get_var("clc-psu1", "ups.status")
            except NutError as error:
                return error.code == "DATA-STALE"
        return False

    wait_until(stale, gone + 2 * POLL + 1, "clc-psu1 DATA-STALE")
    assert time.monotonic() - gone <= 2 * POLL + 0.5
    bmc.set_bmc_down(psulab, "clc", False)
    back = time.monotonic()
    wait_var(psulab, "clc-psu1", "ups.status", "OL", seconds=2 * POLL + 3)
    assert time.monotonic() - back <= 2 * POLL + 2.5


# -- commands ---------------------------------------------------------------------------


def tracked(lab, device, command, seconds=15):
    """INSTCMD with TRACKING; (result, upsd's ups.status and the BMC's chassis
    power read right when upsd first answered something else than PENDING)."""
    with session(lab) as upsd:
        upsd.login(nut.ADMIN_USER, nut.ADMIN_PASSWORD)
        upsd.set_tracking(True)
        tracking_id = upsd.instcmd(device, command)
        deadline = time.monotonic() + seconds
        while (result := upsd.tracking(tracking_id)) == "PENDING" and time.monotonic() < deadline:
            time.sleep(0.05)
        status = upsd.get_var(device, "ups.status")
    with bmc_session(lab, device.split("-")[0]) as ipmi:
        return result, status, chassis_power(ipmi)


def test_tracking_success_only_after_the_chassis_reads_back(psulab):
    assert tracked(psulab, "clc-psu1", "load.off") == ("SUCCESS", "OFF", "off")
    assert psulab.rack.read()["chassis"]["clc"] is False
    assert upsd_vars(psulab, "clc-psu2")["chassis.power"] in ("on", "off")  # its own poll, its own pace
    assert tracked(psulab, "clc-psu1", "load.on") == ("SUCCESS", "OL", "on")
    log_before = len(psulab.rack.read().get("log", []))
    assert tracked(psulab, "clc-psu2", "shutdown.reboot") == ("SUCCESS", "OL", "on")
    assert len(psulab.rack.read().get("log", [])) >= log_before


def test_tracking_failed_when_the_chassis_never_reads_back(psulab):
    # Both feeds cut: the BMC takes "on" but the server cannot run.
    for outlet in psulab.rack.topology()["servers"]["nc1"]["psus"].values():
        psulab.rack.switch_outlet(outlet, False)
    bmc.sync_sensors(psulab, ["nc1"])
    started = time.monotonic()
    result, status, power = tracked(psulab, "nc1-psu1", "load.on")
    assert (result, power) == ("FAILED", "off") and "OL" not in status.split()
    assert time.monotonic() - started < 5 + 2 * POLL + 3  # power_timeout 5 in the lab's ups.conf


def test_fence_nut_fences_a_server_through_its_psu_device(psulab):
    if not FENCE_NUT.exists():
        pytest.skip("needs the installed fence_nut")
    base = {"ip": nut.HOST, "ipport": psulab.port("upsd"), "username": nut.FENCER_USER,
            "password": nut.FENCER_PASSWORD, "plug": "nc2-psu1", "power_timeout": 10}

    def agent(action):
        text = "".join(f"{k}={v}\n" for k, v in dict(base, action=action).items())
        return subprocess.run([str(FENCE_NUT)], input=text, capture_output=True, text=True, timeout=60)

    off = agent("off")
    assert off.returncode == 0, off.stderr
    assert psulab.rack.read()["chassis"]["nc2"] is False
    assert agent("status").returncode == 2
    on = agent("on")
    assert on.returncode == 0, on.stderr
    assert psulab.rack.read()["chassis"]["nc2"] is True and agent("status").returncode == 0


# -- the program under upsdrvctl ------------------------------------------------------------


def private_nut(tmp_path, section):
    """A NUT configuration of its own (one ups.conf section) for upsdrvctl."""
    conf, state = tmp_path / "conf", tmp_path / "state"
    conf.mkdir()
    state.mkdir(mode=0o770)
    head = f"driverpath = {DRIVER.parent}\n" if str(DRIVER.parent) != "/lib/nut" else ""
    (conf / "ups.conf").write_text(head + section)
    return {**os.environ, "NUT_CONFPATH": str(conf), "NUT_STATEPATH": str(state), "NUT_ALTPIDPATH": str(state)}


def upsdrvctl(env, *args):
    return subprocess.run([nut.UPSDRVCTL, "-u", "root", *args], env=env, capture_output=True, text=True, timeout=60)


def driver_lines(result):
    """What the driver said (upsdrvctl adds its banner and verdict)."""
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("ipmi-psu")]


def section(port, username, password, psu="1"):
    return (f'[psu]\n\tdriver = ipmi-psu\n\tport = 127.0.0.1:{port}\n\tusername = {username}\n'
            f'\tpassword = "{password}"\n\tpsu = {psu}\n\tprivilege = operator\n\tparent = pdu1:1@localhost\n')


def test_wrong_password_exits_with_one_line(psulab, tmp_path):
    env = private_nut(tmp_path, section(psulab.port("bmc:clc"), bmc.OPERATOR_USER, "not the password"))
    result = upsdrvctl(env, "start", "psu")
    assert result.returncode != 0
    lines = driver_lines(result)
    assert len(lines) == 1 and "rejected the credentials" in lines[0], result.stdout + result.stderr
    assert "not the password" not in result.stdout + result.stderr


def test_a_password_with_spaces_reaches_the_bmc(tmp_path):
    """ipmi_sim 1.0.13 takes no password with blanks: the Python RMCP+ BMC
    does.  It has no SDR repository, so the login succeeding shows as the
    driver failing one step later, at Get SDR."""
    from infrapower.lab.rmcp_bmc import OPERATOR, RmcpBmc

    with RmcpBmc({"psu user": ("psu pass word", OPERATOR)}) as peer:
        env = private_nut(tmp_path, section(peer.port, "psu user", "psu pass word"))
        result = upsdrvctl(env, "start", "psu")
        assert peer.logins == 1, result.stdout + result.stderr
        assert result.returncode != 0 and "Get SDR" in driver_lines(result)[0]
        (tmp_path / "conf" / "ups.conf").write_text(section(peer.port, "psu user", "psu pass wore"))
        wrong = upsdrvctl(env, "start", "psu")
        assert "rejected the credentials" in driver_lines(wrong)[0] and peer.logins == 1


def test_upsdrvctl_starts_and_stops_it_password_never_in_argv(psulab, tmp_path):
    env = private_nut(tmp_path, section(psulab.port("bmc:nc2"), bmc.OPERATOR_USER, bmc.OPERATOR_PASSWORD, psu="2"))
    started = time.monotonic()
    result = upsdrvctl(env, "start", "psu")
    assert result.returncode == 0, result.stdout + result.stderr
    startup = time.monotonic() - started
    state = Path(env["NUT_STATEPATH"])
    pid = int((state / "ipmi-psu-psu.pid").read_text())
    try:
        assert (state / "ipmi-psu-psu").is_socket()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"-a" in cmdline and b"psu" in cmdline
        assert not any(bmc.OPERATOR_PASSWORD.encode() in arg for arg in cmdline)
        assert startup < 5
        stop = upsdrvctl(env, "stop", "psu")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z",
                   time.monotonic() + 5, "the driver gone after SIGTERM")
        assert not (state / "ipmi-psu-psu").exists() and not (state / "ipmi-psu-psu.pid").exists()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- NUT's own clients ------------------------------------------------------------------


def test_nuts_own_upsc_and_upscmd_see_and_drive_it(psulab):
    """The reference clients, not the pack's: upsc reads the PSU device,
    upscmd -w (TRACKING) switches the server off and on through it."""
    where = f"nc2-psu1@{nut.HOST}:{psulab.port('upsd')}"
    upsc = subprocess.run(["upsc", where], capture_output=True, text=True, timeout=30)
    assert upsc.returncode == 0, upsc.stderr
    seen = dict(line.split(": ", 1) for line in upsc.stdout.splitlines() if ": " in line)
    assert (seen["device.type"], seen["driver.name"], seen["ups.status"], seen["chassis.power"]) == ("psu", "ipmi-psu", "OL", "on")
    for command, chassis in (("load.off", False), ("load.on", True)):
        upscmd = subprocess.run(["upscmd", "-u", nut.ADMIN_USER, "-p", nut.ADMIN_PASSWORD, "-w", where, command],
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert upscmd.returncode == 0 and "SUCCESS" in upscmd.stdout + upscmd.stderr, upscmd
        # TRACKING's SUCCESS came only after the driver read the chassis back.
        assert psulab.rack.read()["chassis"]["nc2"] is chassis
