"""fence_snmp_pdu end to end against the lab's simulated PDUs: every
action, several plugs, pending states, daisy chains, faults, credentials."""

import subprocess
import time
from pathlib import Path

import agentcheck
import pytest
from snmp_pdu_helpers import AGENT, assert_one_line_error, outlet_on, run_agent, running_lab, topology_with

from infrapower.lab.pdus import V3_USER, V3_USERS

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = topology_with(
    # Marlin daisy chain: two units of 4 outlets, outlet 2.3 locked by the admin.
    pdu3={"mapping": "eaton_epdu", "outlets": 4, "units": 2, "unswitchable": ["2.3"]},
    # An APC unit whose sysObjectID no table knows.
    pdu4={"mapping": "apc_pdu", "sysoid": ".1.3.6.1.4.1.318.1.3.4.5", "outlets": 4, "anonymous": True},
    # The scale of issue 3 §4: four daisy-chained units of 48 outlets.
    pdu5={"mapping": "eaton_epdu", "outlets": 48, "units": 4},
)
V3 = [
    "--snmp-version=3", f"--username={V3_USER['user']}", "--snmp-sec-level=authPriv",
    f"--snmp-auth-prot={V3_USER['auth_proto']}", f"--password={V3_USER['auth_key']}",
    f"--snmp-priv-prot={V3_USER['priv_proto']}", f"--snmp-priv-passwd={V3_USER['priv_key']}",
]


@pytest.fixture(scope="module")
def pdu_lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("snmp_pdu"), TOPOLOGY) as running:
        yield running


def states(lab, *outlets):
    current = lab.rack.read()["outlets"]
    return [current[outlet]["on"] for outlet in outlets]


# -- actions -------------------------------------------------------------------


def test_status_exit_codes_follow_the_outlet(rack):
    assert run_agent(rack, "pdu1", "--plug=2", "--action=status").returncode == 0
    assert run_agent(rack, "pdu1", "--plug=1:2", "--action=status").returncode == 0  # fence_apc_snmp's switch:plug
    rack.rack.switch_outlet("pdu1:2", False)
    result = run_agent(rack, "pdu1", "--plug=2", "--action=status")
    assert result.returncode == 2 and "OFF" in result.stdout


def test_off_with_two_plugs_by_name_and_number_leaves_both_off(rack):
    result = run_agent(rack, "pdu1", "--plug=nc1,3", "--action=off")
    assert result.returncode == 0, result.stderr
    assert states(rack, "pdu1:2", "pdu1:3") == [False, False]
    assert states(rack, "pdu1:1", "pdu1:4") == [True, True]
    assert run_agent(rack, "pdu1", "--plug=nc1,3", "--action=on").returncode == 0
    assert states(rack, "pdu1:2", "pdu1:3") == [True, True]


def test_reboot_turns_every_plug_off_before_any_comes_back(rack):
    started = time.time()
    result = run_agent(rack, "pdu1", "--plug=clc,4", "--action=reboot")
    assert result.returncode == 0, result.stderr
    events = [(e["name"], e["state"]) for e in rack.rack.power_log() if e["t"] >= started and e["kind"] == "outlet"]
    assert sorted(events[:2]) == [("pdu1:1", "off"), ("pdu1:4", "off")]
    assert sorted(events[2:]) == [("pdu1:1", "on"), ("pdu1:4", "on")]


def test_list_and_list_status_give_outlet_names_as_aliases(rack):
    rack.rack.switch_outlet("pdu1:5", False)
    listed = run_agent(rack, "pdu1", "--action=list").stdout.splitlines()
    assert listed[:4] == ["1,clc", "2,nc1", "3,nc2", "4,Outlet 4"] and len(listed) == 8
    status = run_agent(rack, "pdu1", "--action=list-status").stdout.splitlines()
    assert "5,Outlet 5,OFF" in status and "1,clc,ON" in status


def test_monitor_and_validate_all(rack):
    assert run_agent(rack, "pdu1", "--action=monitor").returncode == 0
    assert run_agent(rack, "pdu1", "--plug=1", "--action=validate-all").returncode == 0


def test_options_on_stdin_as_pacemaker_passes_them(rack):
    result = run_agent(rack, "pdu1", stdin={"action": "off", "plug": "nc2", "community": "private", "verbose": "0"})
    assert result.returncode == 0, result.stderr
    assert not outlet_on(rack, "pdu1:3")


def test_metadata_does_not_import_pysnmp():
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['{AGENT}', '-o', 'metadata']\n"
        "try:\n"
        f"    runpy.run_path('{AGENT}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert not [m for m in sys.modules if m.startswith('pysnmp')], 'pysnmp imported'\n"
    )
    python = open(AGENT).readline()[2:].strip().split()[0]
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "<resource-agent" in result.stdout and 'name="mib"' in result.stdout


# -- PDUs other than APC -------------------------------------------------------


def test_marlin_switches_through_its_pending_states(rack):
    result = run_agent(rack, "pdu2", "--plug=nc1", "--action=off")
    assert result.returncode == 0, result.stderr
    assert not outlet_on(rack, "pdu2:2")
    assert run_agent(rack, "pdu2", "--plug=2", "--action=status").returncode == 2


def test_daisy_chain_outlets_are_unit_colon_outlet(rack):
    listed = run_agent(rack, "pdu3", "--action=list").stdout.splitlines()
    assert [line.split(",")[0] for line in listed] == [f"{u}:{o}" for u in (1, 2) for o in range(1, 5)]
    result = run_agent(rack, "pdu3", "--plug=2:4", "--action=off")
    assert result.returncode == 0, result.stderr
    assert states(rack, "pdu3:2.4", "pdu3:4") == [False, True]


def test_an_outlet_the_pdu_reports_not_switchable_is_refused_before_any_plug_is_touched(rack):
    error = assert_one_line_error(run_agent(rack, "pdu3", "--plug=2:4,2:3", "--action=off"))
    assert "2:3" in error and "not switchable" in error
    assert states(rack, "pdu3:2.3", "pdu3:2.4") == [True, True]


def test_unknown_sysobjectid_names_it_and_how_to_force_a_mapping(rack):
    error = assert_one_line_error(run_agent(rack, "pdu4", "--plug=1", "--action=status"))
    assert ".1.3.6.1.4.1.99999.1.1" in error and "mib=" in error
    forced = run_agent(rack, "pdu4", "--plug=1", "--action=off", "--mib=apc_pdu")
    assert forced.returncode == 0, forced.stderr
    assert not outlet_on(rack, "pdu4:1")


# -- faults ---------------------------------------------------------------------


def test_an_outlet_stuck_on_fails_off_within_power_timeout(rack):
    rack.rack.set_fault("pdu1:3", "stuck_on")
    started = time.monotonic()
    error = assert_one_line_error(run_agent(rack, "pdu1", "--plug=3", "--action=off", "--power-timeout=2"))
    assert "off" in error and time.monotonic() - started < 6


def test_slow_switching_within_power_timeout_succeeds(rack):
    rack.rack.set_fault("pdu2:4", "slow", seconds=1.5)
    result = run_agent(rack, "pdu2", "--plug=4", "--action=off", "--power-timeout=5")
    assert result.returncode == 0, result.stderr


def test_slow_switching_beyond_power_timeout_fails(rack):
    rack.rack.set_fault("pdu2:4", "slow", seconds=5)
    started = time.monotonic()
    error = assert_one_line_error(run_agent(rack, "pdu2", "--plug=4", "--action=off", "--power-timeout=1"))
    assert "power_timeout" in error and time.monotonic() - started < 4


def test_a_silent_pdu_fails_within_the_timeout_bound(rack):
    from infrapower.lab import pdus

    pdus.set_silent(rack, "pdu1", True)
    started = time.monotonic()
    error = assert_one_line_error(run_agent(rack, "pdu1", "--plug=1", "--action=off", "--shell-timeout=2"))
    assert "no answer" in error and time.monotonic() - started < 4


def test_wrong_community_is_one_clear_line(rack):
    error = assert_one_line_error(run_agent(rack, "pdu1", "--plug=1", "--action=status", "--shell-timeout=1", community="nope"))
    assert "community" in error and "nope" not in error


def test_snmpv3_authpriv_switches_and_keeps_secrets_out_of_the_log(rack):
    result = run_agent(rack, "pdu1", "--plug=4", "--action=off", "-v", *V3, community=None)
    assert result.returncode == 0, result.stderr
    assert not outlet_on(rack, "pdu1:4")
    assert ".1.3.6.1.4.1.318.1.1.4.4.2.1.3.4" in result.stderr  # verbose shows the OIDs
    for secret in (V3_USER["auth_key"], V3_USER["priv_key"]):
        assert secret not in result.stderr and secret not in result.stdout


@pytest.mark.parametrize("option, expected", [("--password=wrong-auth-key", "digest"), ("--snmp-priv-passwd=wrong-priv-key", "decryption")])
def test_wrong_v3_keys_fail_with_one_line(rack, option, expected):
    args = [a for a in V3 if not a.startswith(option.split("=")[0] + "=")] + [option, "--shell-timeout=2"]
    error = assert_one_line_error(run_agent(rack, "pdu1", "--plug=1", "--action=status", *args, community=None))
    assert expected in error and "wrong-" not in error


def test_delay_holds_back_all_network_io():
    agentcheck.check_delay(AGENT, lambda host, port: {"ip": host, "ipport": port, "community": "private", "plug": "1"}, delay=2)


@pytest.mark.parametrize("user", V3_USERS[1:], ids=lambda user: user["user"])
def test_every_v3_protocol_family(rack, user):
    args = ["--snmp-version=3", f"--username={user['user']}", f"--snmp-auth-prot={user['auth_proto']}",
            f"--password={user['auth_key']}", "--plug=2", "--action=status"]
    if user["priv_key"]:
        args += ["--snmp-sec-level=authPriv", f"--snmp-priv-prot={user['priv_proto']}", f"--snmp-priv-passwd={user['priv_key']}"]
    else:
        args += ["--snmp-sec-level=authNoPriv"]
    result = run_agent(rack, "pdu1", *args, community=None)
    assert result.returncode == 0, result.stderr


def test_reboot_with_method_cycle_uses_the_cycle_command_and_sees_the_outlet_go_down(rack):
    started = time.time()
    result = run_agent(rack, "pdu2", "--plug=nc2", "--action=reboot", "--method=cycle")
    assert result.returncode == 0, result.stderr
    assert [e["state"] for e in rack.rack.power_log() if e["t"] >= started and e["name"] == "pdu2:3"] == ["off", "on"]


def test_method_cycle_on_a_pdu_without_a_cycle_command_is_refused(rack):
    error = assert_one_line_error(run_agent(rack, "pdu1", "--plug=1", "--action=reboot", "--method=cycle"))
    assert "method=onoff" in error and outlet_on(rack, "pdu1:1")


def test_metadata_is_the_golden_copy_and_validates():
    agentcheck.validate_rng(agentcheck.check_golden_metadata(AGENT, ROOT / "metadata" / "fence_snmp_pdu.xml"))


def test_man_page_is_built_from_the_golden_metadata(tmp_path):
    built = agentcheck.build_manpage(ROOT / "metadata" / "fence_snmp_pdu.xml", tmp_path / "fence_snmp_pdu.8")
    assert built.read_text() == (ROOT / "man" / "fence_snmp_pdu.8").read_text(), "man/fence_snmp_pdu.8 is stale: run `make man`"


def test_list_status_of_a_four_unit_daisy_chain(rack):
    started = time.monotonic()
    result = run_agent(rack, "pdu5", "--action=list-status", "--snmp-version=2c")
    elapsed = time.monotonic() - started
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 4 * 48
    assert lines[0].startswith("1:1,") and lines[-1].startswith("4:48,")
    assert elapsed < 2.0  # bench/cases_snmp_pdu.py measures the 0.5 s target on a quiet machine
    # SNMPv1 has no GETBULK: the speculative GETNEXT walk must find the same
    # outlets across the unit boundaries.
    assert run_agent(rack, "pdu5", "--action=list-status", "--snmp-version=1").stdout.splitlines() == lines


@pytest.mark.parametrize("action", ["list-status", "monitor", "status"])
def test_a_forced_mapping_that_reads_no_outlet_of_the_lab_pdu_is_an_error(rack, action):
    """mib=eaton_epdu on the lab's APC PDU: not an empty PDU, a wrong mapping."""
    result = run_agent(rack, "pdu1", "--plug=1", f"--action={action}", "--mib=eaton_epdu")
    error = assert_one_line_error(result)
    assert "eaton_epdu" in error and ".1.3.6.1.4.1.318." in error and not result.stdout
