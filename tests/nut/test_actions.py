"""Every action of fence_nut against the lab's upsd, and every refusal a
user can act on (one ERROR line saying what to change, exit 1)."""

import time

import pytest
from nut_helpers import fencer, run_agent

from infrapower.lab import nut
from infrapower.lab.core import wait_until


def _tpdu_status(lab, number):
    with nut.NutSession(lab.port("upsd")) as session:
        return session.get_var("tpdu", f"outlet.{number}.status")


def _no_traceback(run):
    assert "Traceback" not in run.err, run


# -- the actions ------------------------------------------------------------------


def test_status_on_then_off_exit_codes(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="status"))
    assert (run.rc, run.out.strip()) == (0, "Status: ON"), run
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off"))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered OFF"), run
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="status"))
    assert (run.rc, run.out.strip()) == (2, "Status: OFF"), run


def test_off_on_by_outlet_description_on_the_default_ups(nutlab):
    # tpdu's outlets are described "Outlet N" when the rack does not model it.
    run = run_agent(fencer(nutlab, ups="tpdu", plug="Outlet 2", action="off"))
    assert run.rc == 0, run
    assert _tpdu_status(nutlab, 2) == "off"
    run = run_agent(fencer(nutlab, ups="tpdu", plug="2", action="on"))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered ON"), run
    assert _tpdu_status(nutlab, 2) == "on"
    # upsd's ON may predate the request: the command goes out anyway, so
    # fence_nut never says "Already" (see test_hardening).
    run = run_agent(fencer(nutlab, ups="tpdu", plug="2", action="on"))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered ON"), run


def test_reboot_tpdu_outlet(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:3", action="reboot"))
    assert (run.rc, run.out.strip()) == (0, "Success: Rebooted"), run
    assert _tpdu_status(nutlab, 3) == "on"


def test_reboot_through_snmp_ups_power_log_order(nutlab):
    """pdu2 (eaton_epdu via the real snmp-ups): off verified before on."""
    since = time.time()
    run = run_agent(fencer(nutlab, plug="pdu2:nc2", action="reboot"))
    assert (run.rc, run.out.strip()) == (0, "Success: Rebooted"), run
    states = [e["state"] for e in nutlab.rack.power_log() if e["t"] >= since and e["name"] == "pdu2:3"]
    assert states == ["off", "on"], states


def test_whole_ups_load_off_and_on(nutlab):
    run = run_agent(fencer(nutlab, plug="ups2", action="off"))
    assert run.rc == 0, run
    assert not nutlab.rack.read()["upses"]["ups2"]["on"]
    run = run_agent(fencer(nutlab, plug="ups2", action="status"))
    assert run.rc == 2, run
    run = run_agent(fencer(nutlab, plug="ups2", action="on"))
    assert run.rc == 0, run
    assert nutlab.rack.read()["upses"]["ups2"]["on"]


def test_list_and_list_status(nutlab):
    run = run_agent(fencer(nutlab, action="list-status"))
    assert run.rc == 0, run
    lines = run.out.splitlines()
    assert "pdu1:2,nc1,ON" in lines and "pdu2:2,nc1,ON" in lines and "tpdu:1,Outlet 1,ON" in lines
    run = run_agent(fencer(nutlab, ups="pdu2", action="list"))
    assert run.out.splitlines()[:3] == ["1,clc", "2,nc1", "3,nc2"], run


def test_monitor_ok(nutlab):
    assert run_agent(fencer(nutlab, action="monitor")).rc == 0
    assert run_agent(fencer(nutlab, ups="pdu2", action="monitor")).rc == 0


def test_dual_fed_node_through_one_device_refused_clearly_for_apc(nutlab):
    """pdu1 is an APC rack PDU: snmp-ups 2.8.0 offers no outlet commands and
    writes outlet.N.status as an SNMP string, which the PDU rejects; the
    agent says so in one line and exits 1, before touching either feed."""
    run = run_agent(_set_fencer(nutlab, plug="pdu2:nc1,pdu1:nc1", action="off"))
    assert run.rc == 1, run
    assert "snmp-ups" in run.err and "fence_snmp_pdu" in run.err, run
    assert nutlab.rack.read()["outlets"]["pdu1:2"]["on"]
    assert nutlab.rack.read()["outlets"]["pdu2:2"]["on"], "the other feed must not be cut"
    _no_traceback(run)


# -- outlets switched by writing outlet.N.status (SET VAR) ----------------------------


@pytest.fixture
def writable_tpdu(nutlab):
    nut.set_nut_fault(nutlab, "tpdu", "status_writable")
    with nut.NutSession(nutlab.port("upsd")) as session:
        wait_until(lambda: "outlet.1.load.off" not in session.list_cmd("tpdu"), time.monotonic() + 3, "mode on")
    return nutlab


def _set_fencer(lab, **options):
    """The user with `actions = SET`; `options` override, password too."""
    return fencer(lab, **{"username": nut.SET_FENCER_USER, "password": nut.SET_FENCER_PASSWORD, **options})


def test_set_var_path_off_on_reboot(writable_tpdu):
    run = run_agent(_set_fencer(writable_tpdu, plug="tpdu:2", action="off"))
    assert run.rc == 0, run
    assert _tpdu_status(writable_tpdu, 2) == "off"
    run = run_agent(_set_fencer(writable_tpdu, plug="tpdu:2", action="reboot"))
    assert (run.rc, run.out.strip()) == (0, "Success: Rebooted"), run
    assert _tpdu_status(writable_tpdu, 2) == "on"


def test_set_var_path_needs_actions_set(writable_tpdu):
    run = run_agent(fencer(writable_tpdu, plug="tpdu:2", action="off"))
    assert run.rc == 1, run
    assert "lacks `actions = SET`" in run.err, run
    assert _tpdu_status(writable_tpdu, 2) == "on"


def test_monitor_catches_a_wrong_password_where_set_is_needed(writable_tpdu):
    assert run_agent(_set_fencer(writable_tpdu, ups="tpdu", action="monitor")).rc == 0
    run = run_agent(_set_fencer(writable_tpdu, ups="tpdu", action="monitor", password="not it"))
    assert run.rc == 1 and "wrong password" in run.err, run


# -- refusals -------------------------------------------------------------------------


def test_wrong_password(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", password="not the password"))
    assert run.rc == 1, run
    assert "wrong password" in run.err and "instcmds = outlet.1.load.off" in run.err, run
    assert _tpdu_status(nutlab, 1) == "on"
    _no_traceback(run)


def test_missing_instcmds_grant(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", username=nut.MONITOR_USER, password=nut.MONITOR_PASSWORD))
    assert run.rc == 1, run
    assert f"[{nut.MONITOR_USER}] in upsd.users lacks `instcmds = outlet.1.load.off`" in run.err, run


def test_unknown_ups_lists_the_devices(nutlab):
    run = run_agent(fencer(nutlab, plug="nosuch:1", action="status"))
    assert run.rc == 1, run
    assert "pdu1, pdu2, tpdu, ups1, ups2" in run.err, run


def test_unswitchable_outlet_refused(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:4", action="off"))
    assert run.rc == 1 and "not switchable" in run.err, run


def test_cmd_not_supported(nutlab):
    nut.set_nut_fault(nutlab, "tpdu", "cmd_not_supported")
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off"))
    assert run.rc == 1 and "offers neither outlet.1.load.off" in run.err, run


def test_data_stale(nutlab):
    nut.set_nut_fault(nutlab, "tpdu", "stale")
    with nut.NutSession(nutlab.port("upsd")) as session:
        wait_until(lambda: _code(lambda: session.get_var("tpdu", "ups.status")) == "DATA-STALE", time.monotonic() + 3, "stale")
    for action in ("status", "off", "monitor"):
        run = run_agent(fencer(nutlab, ups="tpdu", plug="1", action=action))
        assert run.rc == 1 and "DATA-STALE" in run.err, run


def test_driver_not_connected(nutlab):
    nut.set_nut_fault(nutlab, "tpdu", "gone")
    with nut.NutSession(nutlab.port("upsd")) as session:
        wait_until(
            lambda: _code(lambda: session.get_var("tpdu", "ups.status")) == "DRIVER-NOT-CONNECTED",
            time.monotonic() + 5,
            "driver gone",
        )
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off"))
    assert run.rc == 1 and "DRIVER-NOT-CONNECTED" in run.err and "driver running" in run.err, run


def test_tracking_failed(nutlab):
    nut.set_nut_fault(nutlab, "tpdu", "tracking_failed")
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off"))
    assert run.rc == 1 and "reported FAILED (TRACKING)" in run.err, run


def test_outlet_that_never_turns_off_test_driver(nutlab):
    nut.set_nut_fault(nutlab, "tpdu", "ignore_commands")
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", power_timeout=2))
    assert run.rc == 1 and "still tpdu:1 on after 2 s" in run.err, run
    assert run.seconds < 2 + 1.5, run


def test_outlet_stuck_on_in_the_rack_through_snmp_ups(nutlab):
    nutlab.rack.set_fault("pdu2:3", "stuck_on")
    run = run_agent(fencer(nutlab, plug="pdu2:3", action="off", power_timeout=3))
    assert run.rc == 1 and "still pdu2:3 on after 3 s" in run.err, run
    assert run.seconds < 3 + 1.5, run


def _code(call):
    from infrapower.nut.client import NutError

    try:
        call()
    except NutError as error:
        return error.code
    return None
