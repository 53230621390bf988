"""fence_ipmi_psu's actions on the lab's BMCs, verified on the rack itself
(its power log), and compared with fence_ipmilan on the same BMC."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from ipmi_psu_helpers import (
    AGENT,
    assert_one_error_line,
    list_status,
    needs_bmcs,
    needs_ipmilan,
    run_agent,
    run_ipmilan,
    server_events,
)

from infrapower.lab import bmc
from infrapower.lab.rack import powered_servers

pytestmark = needs_bmcs
REPO = Path(__file__).resolve().parents[2]
RUNTIME_PYTHON = "/usr/bin/python3"  # the Debian package's agents run on it


def powered(lab, server):
    return powered_servers(lab.rack.topology(), lab.rack.read())[server]


def test_status_off_on_each_verified_on_the_rack(bmcs):
    status = run_agent(bmcs, "nc1", "status")
    assert (status.returncode, status.stdout.strip()) == (0, "Status: ON")

    off = run_agent(bmcs, "nc1", "off")
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip() == "Success: Powered OFF"
    assert powered(bmcs, "nc1") is False
    status = run_agent(bmcs, "nc1", "status")
    assert (status.returncode, status.stdout.strip()) == (2, "Status: OFF")
    assert run_agent(bmcs, "nc1", "off").stdout.strip() == "Success: Already OFF"

    on = run_agent(bmcs, "nc1", "on")
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == "Success: Powered ON"
    assert powered(bmcs, "nc1") is True
    assert powered(bmcs, "nc2") is True  # only nc1's BMC was used


def test_reboot_goes_through_off_and_is_quick(bmcs):
    before = len(server_events(bmcs, "nc2"))
    reboot = run_agent(bmcs, "nc2", "reboot")
    assert reboot.returncode == 0, reboot.stderr
    assert reboot.stdout.strip() == "Success: Rebooted"
    assert server_events(bmcs, "nc2")[before:] == ["off", "on"]
    assert reboot.seconds < 2.0  # no power_wait sleeps (fence_ipmilan: ~4.5 s)


@pytest.mark.parametrize("method", ["onoff", "cycle"])
def test_reboot_of_an_off_node_powers_it_on(bmcs, method):
    """fence-agents#596: a cycle of an off chassis fails on many BMCs."""
    assert run_agent(bmcs, "clc", "off").returncode == 0
    reboot = run_agent(bmcs, "clc", "reboot", method=method)
    assert reboot.returncode == 0, reboot.stderr
    assert powered(bmcs, "clc") is True


def test_reboot_by_cycle_of_a_running_node(bmcs):
    before = len(server_events(bmcs, "nc1"))
    reboot = run_agent(bmcs, "nc1", "reboot", method="cycle")
    assert reboot.returncode == 0, reboot.stderr
    # Verified back on; ipmi_sim turns the chassis off at once and on ~1 s later.
    assert server_events(bmcs, "nc1")[before:][:2] == ["off", "on"]
    assert powered(bmcs, "nc1") is True


def test_list_shows_each_psu_with_its_fru_data(bmcs):
    result = run_agent(bmcs, "nc1", "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert [row[:2] for row in rows] == [["1", "Power Supply 1"], ["2", "Power Supply 2"]]
    for row in rows:
        assert row[2:4] == ["Delta Electronics", "DPS-800AB Power Supply"]
        assert row[4].startswith("DSN") and row[5] == "Pn 341-0800-02" and row[6] == "800 W"
    assert rows[0][4] != rows[1][4]  # serials differ
    states = list_status(bmcs, "nc1")
    assert {name: row[-1] for name, row in states.items()} == {"Power Supply 1": "ok", "Power Supply 2": "ok"}


def test_psu_faults_show_in_list_status(bmcs):
    bmc.set_psu_fault(bmcs, "clc", "psu1", "failed")
    assert list_status(bmcs, "clc")["Power Supply 1"][-1] == "failed"

    bmc.set_psu_fault(bmcs, "clc", "psu1", "absent")
    assert list_status(bmcs, "clc")["Power Supply 1"][-1] == "absent"

    bmc.set_psu_fault(bmcs, "clc", "psu1", None)
    bmcs.rack.switch_outlet("pdu2:1", False)  # clc's psu2 feed
    bmc.sync_sensors(bmcs, ["clc"])
    states = list_status(bmcs, "clc")
    assert states["Power Supply 1"][-1] == "ok"
    assert states["Power Supply 2"][-1] == "input lost"
    assert run_agent(bmcs, "clc", "status").returncode == 0  # one feed is enough


def read_supplies(lab, server):
    from infrapower.ipmi.chassis import open_session
    from infrapower.ipmi.session import IpmiSettings
    from infrapower.ipmi.psu import read_power_supplies

    with open_session(IpmiSettings("127.0.0.1", lab.port(f"bmc:{server}"), bmc.ADMIN_USER, bmc.ADMIN_PASSWORD)) as session:
        return {psu.name: psu for psu in read_power_supplies(session)}


def test_input_voltage_and_current_per_psu_and_after_a_cut_feed(bmcs):
    from pyghmi.ipmi.private import constants
    from pyghmi.ipmi.sdr import SDREntry

    from infrapower.ipmi.chassis import open_session
    from infrapower.ipmi.session import IpmiSettings
    from infrapower.ipmi.psu import read_sdr_repository

    # The BMC's records: input (not output) voltage and current of each PSU.
    with open_session(IpmiSettings("127.0.0.1", bmcs.port("bmc:clc"), bmc.ADMIN_USER, bmc.ADMIN_PASSWORD)) as session:
        entries = [SDREntry(record, constants) for record in read_sdr_repository(session) if record[3] == 0x01]
    analog = {(entry.sensor_type_number, entry.baseunit, entry.direction) for entry in entries}
    assert analog == {(0x02, "V", 1), (0x03, "A", 1)}
    assert len(entries) == 4

    supplies = read_supplies(bmcs, "clc")
    assert list(supplies) == ["Power Supply 1", "Power Supply 2"]
    for psu in supplies.values():
        variables = psu.nut_variables()
        assert (variables["input.voltage"], variables["input.current"]) == ("230", "1.2")
        assert psu.input_voltage == pytest.approx(230) and psu.input_current == pytest.approx(1.2)

    bmcs.rack.switch_outlet("pdu1:1", False)  # clc's psu1 feed
    bmc.sync_sensors(bmcs, ["clc"])
    supplies = read_supplies(bmcs, "clc")
    lost, live = supplies["Power Supply 1"], supplies["Power Supply 2"]
    assert lost.state == "input lost" and lost.nut_variables()["ups.status"] == "OFF"
    assert (lost.nut_variables()["input.voltage"], lost.nut_variables()["input.current"]) == ("0", "0")
    assert live.healthy and (live.nut_variables()["input.voltage"], live.nut_variables()["input.current"]) == (
        "230", "1.2")


def test_infrapower_psu_cli_shows_the_lab_psus_inputs(bmcs):
    env = dict(os.environ, INFRAPOWER_LAB_DIR=str(bmcs.dir))
    bmcs.rack.switch_outlet("pdu2:1", False)  # clc's psu2 feed
    bmc.sync_sensors(bmcs, ["clc"])
    text = subprocess.run(["infrapower", "psu", "--lab", "clc"], capture_output=True, text=True, timeout=30, env=env)
    assert text.returncode == 0, text.stderr
    blocks = {block.splitlines()[0]: block.splitlines()[1:] for block in text.stdout.strip().split("\n\n")}
    assert "input.voltage: 230" in blocks["[Power Supply 1]"] and "input.current: 1.2" in blocks["[Power Supply 1]"]
    assert "input.voltage: 0" in blocks["[Power Supply 2]"] and "input.current: 0" in blocks["[Power Supply 2]"]
    assert "ups.status: OFF" in blocks["[Power Supply 2]"]

    as_json = subprocess.run(["infrapower", "psu", "--lab", "clc", "--json"], capture_output=True, text=True,
                             timeout=30, env=env)
    assert as_json.returncode == 0, as_json.stderr
    states = {psu["name"]: (psu["state"], psu["variables"]["input.voltage"]) for psu in json.loads(as_json.stdout)}
    assert states == {"Power Supply 1": ("ok", "230"), "Power Supply 2": ("input lost", "0")}


def test_min_psus_monitor_fails_after_a_fault_and_recovers_after_repair(bmcs):
    assert run_agent(bmcs, "nc2", "monitor", min_psus=2).returncode == 0

    bmc.set_psu_fault(bmcs, "nc2", "psu2", "failed")
    degraded = run_agent(bmcs, "nc2", "monitor", min_psus=2)
    line = assert_one_error_line(degraded, "only 1 of 2 power supplies healthy", "Power Supply 2 failed", "min_psus is 2")
    assert "min_psus" in line
    assert run_agent(bmcs, "nc2", "monitor", min_psus=1).returncode == 0
    assert run_agent(bmcs, "nc2", "monitor").returncode == 0  # default: no PSU check

    bmc.set_psu_fault(bmcs, "nc2", "psu2", None)
    assert run_agent(bmcs, "nc2", "monitor", min_psus=2).returncode == 0


def test_status_shows_the_power_supplies_when_min_psus_is_set(bmcs):
    plain = run_agent(bmcs, "nc2", "status")
    assert plain.returncode == 0 and plain.stdout.strip() == "Status: ON"
    bmc.set_psu_fault(bmcs, "nc2", "psu1", "failed")
    aware = run_agent(bmcs, "nc2", "status", min_psus=2)
    assert aware.returncode == 0, aware.stderr
    assert aware.stdout.splitlines() == ["Status: ON", "Power Supply 1: failed", "Power Supply 2: ok"]
    bmc.set_psu_fault(bmcs, "nc2", "psu1", None)


def test_a_gone_bmc_fails_within_the_configured_timeout(bmcs):
    bmc.set_bmc_down(bmcs, "nc1", True)
    for action in ("status", "off", "monitor"):
        result = run_agent(bmcs, "nc1", action, login_timeout=1)
        assert_one_error_line(result, "did not answer")
        assert result.seconds < 1.8, f"{action} took {result.seconds:.2f} s"
    # Under pacemaker-fenced every timeout option arrives as 0 (= forever):
    # the BMC still gets a bound (5 s), not an endless wait.
    env = dict(os.environ, PCMK_service="pacemaker-fenced")
    result = run_agent(bmcs, "nc1", "status", env=env, login_timeout=0, power_timeout=0)
    assert_one_error_line(result, "did not answer")
    assert result.seconds < 6.5
    bmc.set_bmc_down(bmcs, "nc1", False)
    assert run_agent(bmcs, "nc1", "status").returncode == 0


def test_no_bmc_on_the_port_fails_at_once(bmcs):
    result = run_agent(bmcs, "nc1", "status", ipport=9)
    assert_one_error_line(result, "nothing listens")
    assert result.seconds < 1.0


def test_wrong_password_and_unknown_user(bmcs):
    wrong = run_agent(bmcs, "nc1", "status", password="not-the-password")
    assert_one_error_line(wrong, "wrong password", "'admin'")
    assert "not-the-password" not in wrong.stdout + wrong.stderr
    nobody = run_agent(bmcs, "nc1", "status", username="nobody")
    assert_one_error_line(nobody, "no user 'nobody'")


def test_operator_controls_power_and_user_privilege_does_not(bmcs):
    operator = {"username": bmc.OPERATOR_USER, "password": bmc.OPERATOR_PASSWORD, "privlvl": "operator"}
    assert run_agent(bmcs, "nc2", "off", **operator).returncode == 0
    assert powered(bmcs, "nc2") is False
    assert run_agent(bmcs, "nc2", "on", **operator).returncode == 0
    assert powered(bmcs, "nc2") is True

    user = dict(operator, privlvl="user")
    assert run_agent(bmcs, "nc2", "status", **user).returncode == 0  # reading needs only user
    refused = run_agent(bmcs, "nc2", "off", **user)
    assert_one_error_line(refused, "insufficient privilege")
    assert powered(bmcs, "nc2") is True


@needs_ipmilan
def test_same_answers_as_fence_ipmilan(bmcs):
    def both(action, **extra):
        ours, theirs = run_agent(bmcs, "clc", action, **extra), run_ipmilan(bmcs, "clc", action, **extra)
        return (ours.returncode, ours.stdout.strip()), (theirs.returncode, theirs.stdout.strip())

    ours, theirs = both("status")
    assert ours == theirs == (0, "Status: ON")
    bmcs.rack.switch_outlet("pdu1:1", False)
    bmcs.rack.switch_outlet("pdu2:1", False)  # feeds cut: the BMC reads off
    ours, theirs = both("status")
    assert ours == theirs == (2, "Status: OFF")
    bmcs.rack.switch_outlet("pdu1:1", True)
    bmcs.rack.switch_outlet("pdu2:1", True)
    assert run_agent(bmcs, "clc", "off").returncode == 0
    ours, theirs = both("status")
    assert ours == theirs == (2, "Status: OFF")
    assert run_agent(bmcs, "clc", "on").returncode == 0
    # The operator asking for the default (administrator) level: whatever
    # the BMC decides, both agents see it alike.
    operator = {"username": bmc.OPERATOR_USER, "password": bmc.OPERATOR_PASSWORD}
    ours, theirs = both("status", **operator)
    assert ours[0] == theirs[0]
    ours, theirs = both("status", password="nope")
    assert ours[0] == theirs[0] == 1


def test_verbose_shows_each_exchange_and_never_a_secret(bmcs):
    kg = None  # ipmi_sim has no BMC key; the password is the secret here
    result = run_agent(bmcs, "nc1", "status", verbose=1, hexadecimal_kg=kg)
    assert result.returncode == 0, result.stderr
    for exchange in ("-> Open Session Request", "<- RAKP 4", "-> Get Chassis Status", "<- Get Chassis Status: cc 0x00"):
        assert exchange in result.stderr
    assert bmc.ADMIN_PASSWORD not in result.stderr
    assert bmc.ADMIN_PASSWORD.encode().hex() not in result.stderr.replace(" ", "")
    with_kg = run_agent(bmcs, "nc1", "status", verbose=1, hexadecimal_kg="0123456789abcdef")
    assert "0123456789abcdef" not in with_kg.stderr


def test_cipher_suites(bmcs):
    for suite in (1, 2, 3):
        assert run_agent(bmcs, "nc1", "status", cipher=suite).returncode == 0, suite
    assert run_agent(bmcs, "nc1", "status").returncode == 0  # unset: 3 first
    refused = run_agent(bmcs, "nc1", "status", cipher=0)
    assert_one_error_line(refused, "cipher suite 0")
    assert refused.seconds < 1.0  # refused before any network I/O


def test_validate_all_checks_our_options_without_the_network(bmcs):
    assert run_agent(bmcs, "nc1", "validate-all", ipport=9).returncode == 0
    assert_one_error_line(run_agent(bmcs, "nc1", "validate-all", cipher=0), "cipher suite 0")
    assert_one_error_line(run_agent(bmcs, "nc1", "validate-all", hexadecimal_kg="xyz"), "hexadecimal_kg")
    assert_one_error_line(run_agent(bmcs, "nc1", "validate-all", min_psus="two"), "min_psus")


def test_diag_fails_clearly_where_the_bmc_has_no_diagnostic_interrupt(bmcs):
    result = run_agent(bmcs, "nc1", "diag")
    assert_one_error_line(result, "does not support chassis diag")
    assert powered(bmcs, "nc1") is True


def test_delay_comes_before_any_network_io(bmcs):
    bmc.set_bmc_down(bmcs, "nc1", True)
    result = run_agent(bmcs, "nc1", "off", delay=1, login_timeout=1)
    assert_one_error_line(result, "did not answer")
    # fencing.py's delay (1 s plus its own 1 s margin), then the dead BMC's 1 s.
    assert result.seconds >= 2.5


def test_metadata_is_the_golden_file_and_imports_no_ipmi_code():
    result = subprocess.run([AGENT, "-o", "metadata"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout == (REPO / "metadata" / "fence_ipmi_psu.xml").read_text()
    timed = subprocess.run([RUNTIME_PYTHON, "-X", "importtime", AGENT, "-o", "metadata"], capture_output=True,
                           text=True, timeout=30)
    for module in ("pyghmi", "cryptography", "infrapower.ipmi"):
        assert f" {module}" not in timed.stderr, f"metadata imported {module}"


def test_psu_capacity_from_the_power_supply_multirecord():
    from infrapower.ipmi.psu import power_supply_capacity

    assert power_supply_capacity(bmc.psu_fru("clc", "psu1")) == bmc.PSU_RATING_WATTS
    assert power_supply_capacity(bmc.board_fru("clc", "cloud controller")) is None
