"""fence_snmp_pdu's round trips per action (issue 18): counted by the
Session, shown in `-v` as "SNMP requests: N", asserted here against the
lab's simulated PDUs.  Every action still reads its result back: the
counts are the floor, not a trade of verification for speed."""

import re

import pytest
from snmp_pdu_helpers import outlet_on, run_agent, running_lab, topology_with

from infrapower.lab.pdus import V3_USER

TOPOLOGY = topology_with(
    # Two daisy-chained units of 24 outlets: a walk of 48 rows.
    pdu6={"mapping": "eaton_epdu", "outlets": 24, "units": 2},
)
V1 = {"community": "private", "snmp_version": "1"}
V2C = {"community": "private", "snmp_version": "2c"}
V3 = {
    "snmp_version": "3", "username": V3_USER["user"], "snmp_sec_level": "authPriv",
    "snmp_auth_prot": V3_USER["auth_proto"], "password": V3_USER["auth_key"],
    "snmp_priv_prot": V3_USER["priv_proto"], "snmp_priv_passwd": V3_USER["priv_key"],
}


@pytest.fixture(scope="module")
def pdu_lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("snmp_pdu_requests"), TOPOLOGY) as running:
        yield running


def requests(result):
    """(total, [request kinds]) from a `-v` run."""
    totals = re.findall(r"SNMP requests: (\d+)", result.stderr)
    assert len(totals) == 1, result.stderr
    kinds = re.findall(r"SNMP \S+ (GET|GETNEXT|GETBULK|SET) ", result.stderr)
    return int(totals[0]), kinds


def act(lab, pdu, expect_rc=0, **options):
    result = run_agent(lab, pdu, stdin=dict(options, verbose=1))
    assert result.returncode == expect_rc, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_status_without_mib_v1_in_two_round_trips(rack):
    """SNMPv1 fails a whole GET for one absent OID: sysObjectID first, then
    the candidates' model OID with the plug's status."""
    result = act(rack, "pdu1", action="status", plug="3", **V1)
    assert "Status: ON" in result.stdout
    assert requests(result) == (2, ["GET", "GET"])


def test_status_without_mib_v2c_in_one_round_trip(rack):
    """SNMPv2c answers absent OIDs one by one: sysObjectID, every mapping's
    model OID and the plug's status as every mapping would read it go in
    one GET."""
    result = act(rack, "pdu1", action="status", plug="3", **V2C)
    assert "Status: ON" in result.stdout
    assert requests(result) == (1, ["GET"])


def test_reboot_v2c_as_few_as_with_mib(rack):
    result = act(rack, "pdu1", action="reboot", plug="6", **V2C)
    assert "Success: Rebooted" in result.stdout and outlet_on(rack, "pdu1:6")
    assert requests(result) == (5, ["GET", "SET", "GET", "SET", "GET"])


def test_status_of_two_plugs_still_two_round_trips(rack):
    result = act(rack, "pdu1", action="status", plug="3,5", **V1)
    assert requests(result)[0] == 2


def test_status_with_mib_in_one_round_trip(rack):
    result = act(rack, "pdu1", action="status", plug="3", mib="apc_pdu", **V1)
    assert requests(result) == (1, ["GET"])


def test_status_v3_adds_only_engine_discovery(rack):
    result = act(rack, "pdu1", action="status", plug="3", **V3)
    assert "Status: ON" in result.stdout
    assert requests(result)[0] == 2  # discovery, then detection and the outlet in one GET


def test_status_of_an_off_outlet_read_with_the_detection(rack):
    act(rack, "pdu1", action="off", plug="4", **V1)
    result = act(rack, "pdu1", expect_rc=2, action="status", plug="4", **V1)
    assert "Status: OFF" in result.stdout and requests(result)[0] == 2


def test_off_of_two_plugs_one_set_one_read_back(rack):
    result = act(rack, "pdu1", action="off", plug="1,2", **V1)
    assert "Success: Powered OFF" in result.stdout
    assert not outlet_on(rack, "pdu1:1") and not outlet_on(rack, "pdu1:2")
    total, kinds = requests(result)
    assert kinds.count("SET") == 1
    assert (total, kinds) == (4, ["GET", "GET", "SET", "GET"])  # was 6


def test_reboot_six_round_trips(rack):
    result = act(rack, "pdu1", action="reboot", plug="6", **V1)
    assert "Success: Rebooted" in result.stdout and outlet_on(rack, "pdu1:6")
    assert requests(result) == (6, ["GET", "GET", "SET", "GET", "SET", "GET"])  # was 7


def test_reboot_with_mib_as_few_as_fence_apc_snmp(rack):
    result = act(rack, "pdu1", action="reboot", plug="6", mib="apc_pdu", **V1)
    assert requests(result)[0] == 5


def test_already_off_sends_no_set(rack):
    act(rack, "pdu1", action="off", plug="7", **V1)
    result = act(rack, "pdu1", action="off", plug="7", **V1)
    assert "Already OFF" in result.stdout and requests(result) == (2, ["GET", "GET"])


def test_list_status_v1_one_getnext_for_a_small_pdu(rack):
    # The first GETNEXT guesses the rows .1, .2, ... (24 per column).
    result = act(rack, "pdu1", action="list-status", **V1)
    assert len(result.stdout.splitlines()) == 8
    assert requests(result) == (3, ["GET", "GET", "GETNEXT"])  # was 4


def test_list_status_v2c_one_getbulk(rack):
    result = act(rack, "pdu1", action="list-status", **V2C)
    assert "1,Outlet 1,ON" in result.stdout or re.search(r"^1,.*,ON$", result.stdout, re.M), result.stdout
    assert requests(result) == (2, ["GET", "GETBULK"])


def test_list_status_v2c_of_48_outlets_one_getbulk_sized_to_the_pdu(rack):
    """The detection's GET reads the outlet count and which units answer;
    the first GETBULK asks every row of both units and the end of the
    column (48 + 1).  The lab's agent (pysnmp) answers at most 64
    varbinds to a GETBULK, 32 rows of two columns, so the rest takes a
    second one; an agent without that cap answers all in one."""
    result = act(rack, "pdu6", action="list-status", **V2C)
    assert len(result.stdout.splitlines()) == 48
    assert re.search(r"GETBULK \(max-repetitions 49\)", result.stderr), result.stderr
    assert requests(result) == (3, ["GET", "GETBULK", "GETBULK"])


def test_status_of_a_chained_unit_in_one_round_trip(rack):
    """On a daisy chain the first unit's index (0 or 1) and the plug's
    status under both guesses ride along with the detection."""
    result = act(rack, "pdu6", action="status", plug="2:3", **V2C)
    assert "Status: ON" in result.stdout
    assert requests(result) == (1, ["GET"])


def test_count_shown_for_a_failed_action_too(rack):
    result = run_agent(rack, "pdu1", stdin=dict(action="status", plug="99", verbose=1, **V1))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"SNMP requests: \d+", result.stderr)


def test_cycle_of_two_plugs_one_set(rack):
    """method=cycle of a node's two plugs: one SET starts both cycles (they
    go down together), then the read-back sees both down in one read and
    both on again."""
    result = act(rack, "pdu6", action="reboot", method="cycle", plug="1,2", power_timeout=20, **V1)
    assert "Success: Rebooted" in result.stdout
    assert outlet_on(rack, "pdu6:1") and outlet_on(rack, "pdu6:2")
    total, kinds = requests(result)
    assert kinds.count("SET") == 1, kinds
    off_events = [e for e in rack.rack.power_log() if e["kind"] == "outlet" and e["state"] == "off"
                  and e["name"] in ("pdu6:1", "pdu6:2")]
    assert len(off_events) == 2 and abs(off_events[0]["t"] - off_events[1]["t"]) < 0.05  # one SET: together
