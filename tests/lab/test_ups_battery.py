"""UPS physics: mains fail behind a UPS, its battery drains, LB, then its
output goes off and its load loses power; mains back, OL CHRG.  The rack
alone first, then as NUT's real upsd serves it (upsc, NUT's own client)."""

import subprocess
import time

import pytest

from infrapower.lab.core import wait_until
from infrapower.lab.rack import Rack, default_topology, next_due, powered_servers, ups_charge, ups_status


@pytest.fixture
def bare_rack(tmp_path):
    rack = Rack(tmp_path)
    topology = default_topology()
    topology["upses"]["ups2"].update(runtime=1.0, low_battery=40)
    rack.create(topology)
    return rack


def _events(rack, name):
    return [(e["kind"], e["state"], e["t"]) for e in rack.power_log() if e["name"] == name]


def test_the_battery_drains_to_low_then_empty_and_the_load_loses_power(bare_rack):
    bare_rack.set_fault("clc:psu1", "failed")  # clc hangs on ups2 alone
    cut = time.time()
    bare_rack.set_mains("ups2", False)
    slot = bare_rack.read()["upses"]["ups2"]
    assert ups_status(slot, time.time()) == "OB DISCHRG"
    wait_until(lambda: not bare_rack.read()["upses"]["ups2"]["on"], time.monotonic() + 5, "ups2 empty")
    log = _events(bare_rack, "ups2")
    low = next(t for kind, state, t in log if (kind, state) == ("battery", "low"))
    empty = next(t for kind, state, t in log if (kind, state) == ("battery", "empty"))
    off = next(t for kind, state, t in log if (kind, state) == ("ups", "off"))
    # Stamped when they happened (60% of a 1 s battery, then all of it),
    # not when somebody read the rack.
    assert low - cut == pytest.approx(0.6, abs=0.05)
    assert off == empty and off - cut == pytest.approx(1.0, abs=0.05)
    state = bare_rack.read()
    assert powered_servers(bare_rack.topology(), state)["clc"] is False
    server_off = [t for kind, state_, t in _events(bare_rack, "clc") if (kind, state_) == ("server", "off")]
    assert server_off == [off]

    bare_rack.set_mains("ups2", True)
    state = bare_rack.read()
    slot = state["upses"]["ups2"]
    assert ups_status(slot, time.time()) == "OL CHRG" and ups_charge(slot, time.time()) < 5
    assert powered_servers(bare_rack.topology(), state)["clc"] is True


def test_load_off_stays_off_when_mains_return(bare_rack):
    """A UPS turned off by a command (fence_nut's load.off) does not come
    back with the mains: only a battery cut restarts by itself."""
    bare_rack.set_mains("ups2", False)
    bare_rack.set_ups("ups2", False)
    bare_rack.set_mains("ups2", True)
    assert bare_rack.read()["upses"]["ups2"]["on"] is False


def test_runtime_given_when_mains_fail(bare_rack):
    bare_rack.set_mains("ups1", False, runtime=1000)
    slot = bare_rack.read()["upses"]["ups1"]
    assert ups_status(slot, time.time()) == "OB DISCHRG" and slot["runtime"] == 1000


def test_load_off_delay_cuts_the_output_when_its_countdown_ends(bare_rack):
    start = time.time()
    bare_rack.schedule_ups_off("ups2", 0.3)
    state = bare_rack.read()
    assert state["upses"]["ups2"]["on"] is True and next_due(state) == pytest.approx(start + 0.3, abs=0.05)
    wait_until(lambda: not bare_rack.read()["upses"]["ups2"]["on"], time.monotonic() + 5, "ups2 off")
    off = [t for kind, state_, t in _events(bare_rack, "ups2") if (kind, state_) == ("ups", "off")]
    # Stamped when the countdown ended, not when the rack was read.
    assert len(off) == 1 and off[0] - start == pytest.approx(0.3, abs=0.05)
    slot = bare_rack.read()["upses"]["ups2"]
    assert slot["off_at"] is None and slot["off_by"] == "command"


def test_shutdown_stop_and_reset_cancel_the_countdown(bare_rack):
    bare_rack.schedule_ups_off("ups2", 30)
    bare_rack.schedule_ups_off("ups2", None)  # shutdown.stop
    assert bare_rack.read()["upses"]["ups2"]["off_at"] is None
    bare_rack.schedule_ups_off("ups1", 30)
    bare_rack.reset()
    state = bare_rack.read()
    assert state["upses"]["ups1"]["off_at"] is None and next_due(state) == float("inf")


# -- through upsd ------------------------------------------------------------


def _upsc(lab, device):
    result = subprocess.run(
        ["upsc", f"{device}@127.0.0.1:{lab.port('upsd')}"], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)


def _wait_upsc(lab, device, check, what, seconds=10.0):
    return wait_until(lambda: (lambda v: v if check(v) else None)(_upsc(lab, device)), time.monotonic() + seconds, what)


def test_upsc_sees_the_battery_drain_then_the_output_off(rack):
    lab = rack
    rack.rack.set_mains("ups2", False, runtime=4.0)
    first = _wait_upsc(lab, "ups2", lambda v: v["ups.status"] == "OB DISCHRG", "ups2 OB DISCHRG")
    assert first["input.voltage"] == "0.0"
    later = _wait_upsc(
        lab,
        "ups2",
        lambda v: int(v["battery.charge"]) < int(first["battery.charge"])
        and int(v["battery.runtime"]) < int(first["battery.runtime"]),
        "battery.charge and battery.runtime falling",
    )
    assert later["ups.status"].startswith("OB DISCHRG")
    _wait_upsc(lab, "ups2", lambda v: v["ups.status"] == "OB DISCHRG LB", "ups2 LB")
    _wait_upsc(lab, "ups2", lambda v: v["ups.status"] == "OFF", "ups2 OFF")
    derived = rack.rack.read()["derived"]
    assert derived["psu clc:psu2"] == "input_lost" and derived["server clc"] == "on"

    rack.rack.set_mains("ups2", True)
    back = _wait_upsc(lab, "ups2", lambda v: v["ups.status"] == "OL CHRG", "ups2 OL CHRG")
    assert back["input.voltage"] == "230.0" and int(back["battery.charge"]) < 100
    assert rack.rack.read()["derived"]["psu clc:psu2"] == "ok"


def test_upsc_sees_the_load_off_delay_countdown(rack):
    """NUT's ups.timer.shutdown: -1 idle, counting down after
    load.off.delay (upscmd, NUT's own client), -1 again after
    shutdown.stop; the output never went off."""
    from infrapower.lab import nut

    def upscmd(command):
        argv = ["upscmd", "-u", nut.ADMIN_USER, "-p", nut.ADMIN_PASSWORD, f"ups2@127.0.0.1:{rack.port('upsd')}", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, result.stderr

    idle = _upsc(rack, "ups2")
    assert idle["ups.timer.shutdown"] == "-1" and float(idle["ups.delay.shutdown"]) >= 10
    try:
        upscmd("load.off.delay")
        counting = _wait_upsc(rack, "ups2", lambda v: int(v["ups.timer.shutdown"]) > 0, "ups.timer.shutdown running")
        assert int(counting["ups.timer.shutdown"]) <= float(idle["ups.delay.shutdown"])
        assert counting["ups.status"].startswith("OL")
    finally:
        upscmd("shutdown.stop")
    _wait_upsc(rack, "ups2", lambda v: v["ups.timer.shutdown"] == "-1", "ups.timer.shutdown idle again")
    assert rack.rack.read()["upses"]["ups2"]["on"] is True
