"""The lab's NUT: a real upsd 2.8.0 over the Python test driver.

Every test talks to real processes: upsd on 127.0.0.1, one
infrapower.lab.nut_driver process per device, NUT's own upsc/upscmd CLIs
and a protocol session (NutSession, infrapower.nut's client) where the CLIs cannot go (the
fencer's password has a space; TRACKING).
"""

import shutil
import subprocess
import time

import pytest

from infrapower.lab import nut
from infrapower.lab.core import Lab, wait_until
from infrapower.lab.rack import default_topology

pytestmark = pytest.mark.skipif(
    not (shutil.which("upsc") and shutil.which("upscmd") and shutil.which(nut.UPSD)),
    reason="needs Debian's nut-server and nut-client",
)

UPSES = ("ups1", "ups2")


def _start_lab(directory, topology):
    lab = Lab(directory)
    lab.rack.create(topology)
    started = time.monotonic()
    nut.start(lab)
    nut.wait_ready(lab, time.monotonic() + 15)
    lab.ready_seconds = time.monotonic() - started
    return lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = _start_lab(tmp_path_factory.mktemp("nutlab"), default_topology())
    try:
        yield lab
    finally:
        lab.stop_all()


@pytest.fixture(autouse=True)
def healthy(request):
    """Every test starts with no fault, everything on, tpdu outlets on."""
    if "lab" not in request.fixturenames:
        yield
        return
    lab = request.getfixturevalue("lab")
    _restore(lab)
    yield
    _restore(lab)


def _restore(lab):
    for device in nut.test_driver_devices(lab.rack.topology()):
        nut.set_nut_fault(lab, device, None)
    for ups in UPSES:
        lab.rack.set_ups(ups, True)
    nut.wait_ready(lab, time.monotonic() + 10)
    for number in (1, 2, 3):
        if _var(lab, "tpdu", f"outlet.{number}.status") != "on":
            _admin_cmd(lab, "tpdu", f"outlet.{number}.load.on")
    for number in (1, 2, 3):
        _wait_var(lab, "tpdu", f"outlet.{number}.status", "on")


# -- helpers ------------------------------------------------------------------


def _target(lab, device):
    return f"{device}@127.0.0.1:{lab.port('upsd')}"


def _upsc(lab, device, var=None):
    argv = ["upsc", _target(lab, device)] + ([var] if var else [])
    return subprocess.run(argv, capture_output=True, text=True, timeout=10)


def _upscmd(lab, user, password, device, command):
    argv = ["upscmd", "-u", user, "-p", password, _target(lab, device), command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10)


def _admin_cmd(lab, device, command):
    result = _upscmd(lab, nut.ADMIN_USER, nut.ADMIN_PASSWORD, device, command)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _var(lab, device, var):
    with nut.NutSession(lab.port("upsd")) as session:
        return session.get_var(device, var)


def _wait_var(lab, device, var, value, seconds=5.0):
    wait_until(lambda: _var(lab, device, var) == value, time.monotonic() + seconds, f"{device} {var} == {value}")


def _fencer(lab):
    session = nut.NutSession(lab.port("upsd"))
    session.login(nut.FENCER_USER, nut.FENCER_PASSWORD)
    return session


def _error_code(call):
    """The ERR code upsd answers to `call`, or None if it answered OK."""
    try:
        call()
    except nut.NutError as exc:
        return exc.code
    return None


# -- upsd and the UPSes -----------------------------------------------------------


def test_ready_quickly_and_status_lists_users(lab):
    assert lab.ready_seconds < 5
    status = nut.status(lab)
    assert status["running"]
    assert status["users"][nut.FENCER_USER] == "fence me now"
    assert status["users"][nut.SET_FENCER_USER] == nut.SET_FENCER_PASSWORD
    assert set(status["devices"]) == {"ups1", "ups2", "tpdu"}
    assert status["devices"]["ups1"]["ups.status"] == "OL"


def test_upsc_shows_ups_online(lab):
    result = _upsc(lab, "ups1")
    assert result.returncode == 0, result.stderr
    assert "ups.status: OL" in result.stdout
    assert "device.type: ups" in result.stdout


def test_ups_load_off_cuts_the_feeds_of_its_pdu(lab):
    _admin_cmd(lab, "ups2", "load.off")
    wait_until(lambda: not lab.rack.read()["upses"]["ups2"]["on"], time.monotonic() + 3, "rack ups2 off")
    derived = lab.rack.read()["derived"]
    # PDU2 hangs off UPS2: every PSU2 lost input, every PSU1 did not.
    for server in default_topology()["servers"]:
        assert derived[f"psu {server}:psu2"] == "input_lost"
        assert derived[f"psu {server}:psu1"] == "ok"
        assert derived[f"server {server}"] == "on"
    _wait_var(lab, "ups2", "ups.status", "OFF")
    assert _var(lab, "ups1", "ups.status") == "OL"

    _admin_cmd(lab, "ups2", "load.on")
    _wait_var(lab, "ups2", "ups.status", "OL")
    assert lab.rack.read()["derived"]["psu clc:psu2"] == "ok"


def test_rack_change_is_pushed_without_a_command(lab):
    """The driver watches the rack: a change made by anyone shows in upsd."""
    lab.rack.set_ups("ups1", False)
    _wait_var(lab, "ups1", "ups.status", "OFF", seconds=2)


def test_battery_faults_drive_ups_status(lab):
    nut.set_nut_fault(lab, "ups2", "on_battery", charge=40)
    _wait_var(lab, "ups2", "ups.status", "OB DISCHRG")
    assert _var(lab, "ups2", "battery.charge") == "40"
    nut.set_nut_fault(lab, "ups2", "low_battery")
    _wait_var(lab, "ups2", "ups.status", "OB DISCHRG LB")
    assert int(_var(lab, "ups2", "battery.charge")) < 10
    nut.set_nut_fault(lab, "ups2", None)
    _wait_var(lab, "ups2", "ups.status", "OL")


# -- the test PDU ------------------------------------------------------------------


def test_tpdu_outlet_off_with_upscmd(lab):
    assert _upsc(lab, "tpdu", "outlet.2.status").stdout.strip() == "on"
    _admin_cmd(lab, "tpdu", "outlet.2.load.off")
    wait_until(
        lambda: _upsc(lab, "tpdu", "outlet.2.status").stdout.strip() == "off",
        time.monotonic() + 3,
        "upsc tpdu outlet.2.status off",
    )
    assert _var(lab, "tpdu", "outlet.1.status") == "on"


def test_tpdu_describes_its_outlets(lab):
    assert _var(lab, "tpdu", "device.type") == "pdu"
    assert _var(lab, "tpdu", "outlet.count") == "4"
    assert _var(lab, "tpdu", "outlet.1.switchable") == "yes"
    assert _var(lab, "tpdu", "outlet.4.switchable") == "no"
    listing = subprocess.run(["upscmd", "-l", _target(lab, "tpdu")], capture_output=True, text=True, timeout=10)
    assert "outlet.1.load.cycle" in listing.stdout
    assert "outlet.4.load.off" not in listing.stdout  # not switchable
    result = _upscmd(lab, nut.ADMIN_USER, nut.ADMIN_PASSWORD, "tpdu", "outlet.4.load.off")
    assert "CMD-NOT-SUPPORTED" in result.stdout + result.stderr


def test_tpdu_cycle_goes_off_then_back_on(lab):
    with _fencer(lab) as session:
        session.instcmd("tpdu", "outlet.3.load.cycle")
    _wait_var(lab, "tpdu", "outlet.3.status", "off", seconds=1)
    _wait_var(lab, "tpdu", "outlet.3.status", "on", seconds=3)


def test_tracking_success_then_status(lab):
    with _fencer(lab) as session:
        assert session.set_tracking(True)
        tracking_id = session.instcmd("tpdu", "outlet.1.load.off")
        assert tracking_id  # the reply was OK TRACKING <id>
        wait_until(lambda: session.tracking(tracking_id) == "SUCCESS", time.monotonic() + 3, "tracking SUCCESS")
        # The test driver publishes the new status as it reports success.
        _wait_var(lab, "tpdu", "outlet.1.status", "off", seconds=1)


def test_tracking_failed_fault(lab):
    nut.set_nut_fault(lab, "tpdu", "tracking_failed")
    with _fencer(lab) as session:
        session.request("SET TRACKING ON")
        tracking_id = session.instcmd("tpdu", "outlet.1.load.off")
        wait_until(lambda: session.tracking(tracking_id) != "PENDING", time.monotonic() + 3, "tracking answer")
        assert session.tracking(tracking_id) == "FAILED"
    assert _var(lab, "tpdu", "outlet.1.status") == "on"


def test_no_reply_fault_stays_pending(lab):
    nut.set_nut_fault(lab, "tpdu", "no_reply")
    with _fencer(lab) as session:
        session.request("SET TRACKING ON")
        tracking_id = session.instcmd("tpdu", "outlet.1.load.off")
        time.sleep(0.5)  # an absence can only be observed over time
        assert session.tracking(tracking_id) == "PENDING"
    assert _var(lab, "tpdu", "outlet.1.status") == "on"


def test_ignore_commands_reports_success_but_nothing_moves(lab):
    nut.set_nut_fault(lab, "tpdu", "ignore_commands")
    with _fencer(lab) as session:
        session.request("SET TRACKING ON")
        tracking_id = session.instcmd("tpdu", "outlet.2.load.off")
        wait_until(lambda: session.tracking(tracking_id) == "SUCCESS", time.monotonic() + 3, "tracking SUCCESS")
    time.sleep(0.3)
    assert _var(lab, "tpdu", "outlet.2.status") == "on"


def test_slow_fault_delays_the_change(lab):
    nut.set_nut_fault(lab, "tpdu", "slow", seconds=1.5)
    with _fencer(lab) as session:
        sent = time.monotonic()
        session.instcmd("tpdu", "outlet.2.load.off")
    _wait_var(lab, "tpdu", "outlet.2.status", "off", seconds=4)
    assert time.monotonic() - sent >= 1.4


def test_cmd_not_supported_fault(lab):
    nut.set_nut_fault(lab, "tpdu", "cmd_not_supported")
    with _fencer(lab) as session:
        wait_until(
            lambda: _error_code(lambda: session.instcmd("tpdu", "outlet.1.load.off")) == "CMD-NOT-SUPPORTED",
            time.monotonic() + 3,
            "CMD-NOT-SUPPORTED",
        )
    nut.set_nut_fault(lab, "tpdu", None)
    with _fencer(lab) as session:
        wait_until(lambda: session.instcmd("tpdu", "outlet.1.load.on") is None, time.monotonic() + 3, "commands back")


# -- faults of the driver and access control ----------------------------------------


def test_stale_fault(lab):
    nut.set_nut_fault(lab, "ups1", "stale")
    wait_until(lambda: "stale" in _upsc(lab, "ups1").stderr.lower(), time.monotonic() + 3, "upsc: data stale")
    with nut.NutSession(lab.port("upsd")) as session:
        assert _error_code(lambda: session.get_var("ups1", "ups.status")) == "DATA-STALE"
    nut.set_nut_fault(lab, "ups1", None)
    _wait_var(lab, "ups1", "ups.status", "OL", seconds=3)


def test_gone_fault_then_back(lab):
    nut.set_nut_fault(lab, "ups2", "gone")
    with nut.NutSession(lab.port("upsd")) as session:
        wait_until(
            lambda: _error_code(lambda: session.get_var("ups2", "ups.status")) == "DRIVER-NOT-CONNECTED",
            time.monotonic() + 5,
            "DRIVER-NOT-CONNECTED",
        )
    assert "not connected" in _upsc(lab, "ups2").stderr.lower()
    nut.set_nut_fault(lab, "ups2", None)
    # upsd retries a lost driver on its own, every ~2 s.
    _wait_var(lab, "ups2", "ups.status", "OL", seconds=6)


def test_monitor_user_is_denied_commands(lab):
    result = _upscmd(lab, nut.MONITOR_USER, nut.MONITOR_PASSWORD, "tpdu", "outlet.1.load.off")
    assert "ACCESS-DENIED" in result.stdout + result.stderr
    assert _var(lab, "tpdu", "outlet.1.status") == "on"


def test_fencer_has_only_fencing_commands(lab):
    with _fencer(lab) as session:
        assert _error_code(lambda: session.instcmd("ups1", "beeper.disable")) == "ACCESS-DENIED"
        assert _error_code(lambda: session.request('SET VAR ups1 ups.id "x"')) == "ACCESS-DENIED"
        assert session.instcmd("ups1", "load.off") is None  # OK, no TRACKING asked
    _wait_var(lab, "ups1", "ups.status", "OFF")
    _admin_cmd(lab, "ups1", "beeper.disable")
    _wait_var(lab, "ups1", "ups.beeper.status", "disabled")


def test_wrong_password_shows_at_the_command(lab):
    with nut.NutSession(lab.port("upsd")) as session:
        session.login(nut.FENCER_USER, "wrong")  # upsd answers OK here
        assert _error_code(lambda: session.instcmd("tpdu", "outlet.1.load.off")) == "ACCESS-DENIED"


def test_unknown_ups(lab):
    with nut.NutSession(lab.port("upsd")) as session:
        assert _error_code(lambda: session.get_var("nosuch", "ups.status")) == "UNKNOWN-UPS"
    assert "unknown ups" in _upsc(lab, "nosuch").stderr.lower()


# -- a rack that models tpdu ---------------------------------------------------------


def test_tpdu_in_the_rack_switches_rack_outlets(tmp_path):
    topology = default_topology()
    topology["pdus"]["tpdu"] = {"mapping": "lab", "outlets": 4, "units": 1, "ups": "ups1", "switch_delay": 0.0}
    topology["servers"]["nc1"]["psus"]["psu3"] = "tpdu:2"
    lab = _start_lab(tmp_path, topology)
    try:
        assert _var(lab, "tpdu", "outlet.2.desc") == "nc1"
        _admin_cmd(lab, "tpdu", "outlet.2.load.off")
        wait_until(lambda: not lab.rack.read()["outlets"]["tpdu:2"]["on"], time.monotonic() + 3, "rack tpdu:2 off")
        _wait_var(lab, "tpdu", "outlet.2.status", "off")
        # ...and a change made in the rack shows up in upsd.
        lab.rack.switch_outlet("tpdu:2", True)
        _wait_var(lab, "tpdu", "outlet.2.status", "on", seconds=2)
    finally:
        lab.stop_all()


# -- snmp-ups over the lab's simulated SNMP PDUs ---------------------------------------


def _snmpsim_missing():
    try:
        import snmpsim  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.skipif(_snmpsim_missing(), reason="needs the lab extra (snmpsim)")
def test_snmp_ups_serves_the_simulated_pdus(tmp_path):
    from infrapower.lab import pdus

    lab = Lab(tmp_path)
    lab.rack.create(default_topology())
    try:
        pdus.start(lab)
        pdus.wait_ready(lab, time.monotonic() + 20)
        nut.start(lab)
        nut.wait_ready(lab, time.monotonic() + 20)
        assert _var(lab, "pdu2", "driver.name") == "snmp-ups"
        assert _var(lab, "pdu2", "driver.version.data").startswith("eaton_epdu")
        assert _var(lab, "pdu2", "outlet.2.desc") == "nc1"
        with _fencer(lab) as session:
            session.request("SET TRACKING ON")
            tracking_id = session.instcmd("pdu2", "outlet.2.load.off")
            wait_until(lambda: session.tracking(tracking_id) == "SUCCESS", time.monotonic() + 5, "tracking SUCCESS")
            # APC rack PDUs have no outlet commands in NUT 2.8.0.
            assert _error_code(lambda: session.instcmd("pdu1", "outlet.2.load.off")) == "CMD-NOT-SUPPORTED"
        wait_until(lambda: not lab.rack.read()["outlets"]["pdu2:2"]["on"], time.monotonic() + 3, "rack pdu2:2 off")
        # pollinterval 1 + pollfreq 0: a full walk every second.
        _wait_var(lab, "pdu2", "outlet.2.status", "off", seconds=4)
        assert lab.rack.read()["derived"]["psu nc1:psu2"] == "input_lost"
    finally:
        lab.stop_all()
