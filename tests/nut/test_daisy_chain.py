"""fence_nut on a daisy chain: NUT 2.8.0's real snmp-ups over the lab's
simulated HPE ePDU chain (two units of 8 outlets behind one SNMP agent),
which upsd serves as one device whose outlets are device.U.outlet.N.

Plugs as fence_snmp_pdu writes a chained outlet: UNIT:OUTLET with ups=,
DEVICE:UNIT:OUTLET without.  Every switch is checked at the simulated PDU
(the rack's state), not only through upsd.

(The lab's Eaton ePDU chains are not used: snmp-ups 2.8.0 counts Eaton
units from a string the mapping's C helper parses and, served it, loops
forever probing a non-template ambient OID; see docs/fence_nut.md.)
"""

import shutil
import time

import pytest
from nut_helpers import AGENT, fencer, run_agent
from processes import running_lab

from infrapower import lab as lab_module
from infrapower.lab import nut
from infrapower.lab.core import wait_until

CHAIN = "chain"
UNITS, OUTLETS = 2, 8
TOPOLOGY = {
    "servers": {
        "s1": {"role": "node", "psus": {"psu1": f"{CHAIN}:3", "psu2": f"{CHAIN}:2.3"}},
        "s2": {"role": "node", "psus": {"psu1": f"{CHAIN}:4", "psu2": f"{CHAIN}:2.4"}},
    },
    "pdus": {CHAIN: {"mapping": "hpe_epdu", "outlets": OUTLETS, "units": UNITS, "ups": "ups1", "switch_delay": 0.0}},
    "upses": {"ups1": {}},
}


@pytest.fixture(scope="module")
def chainlab(tmp_path_factory):
    if not (AGENT.exists() and shutil.which(nut.UPSD)):
        pytest.skip("needs the installed agent (make install-agents) and Debian's nut-server")
    with running_lab(tmp_path_factory.mktemp("chainlab"), topology=TOPOLOGY, components=("pdus", "nut")) as running:
        yield running


@pytest.fixture
def chain(chainlab):
    """Every outlet on, at the PDU and in upsd, before and after."""
    _reset(chainlab)
    yield chainlab
    _reset(chainlab)


def _reset(lab):
    lab_module.reset(lab)
    with nut.NutSession(lab.port("upsd")) as session:
        wait_until(
            lambda: all(
                session.get_var(CHAIN, f"device.{unit}.outlet.{number}.status") == "on"
                for unit in range(1, UNITS + 1)
                for number in (3, 4)
            ),
            time.monotonic() + 15,
            "every chained outlet on in upsd",
        )


def _at_pdu(lab, outlet):
    """The outlet's state at the simulated PDU: `chain:3` (unit 1),
    `chain:2.3` (unit 2)."""
    return "on" if lab.rack.read()["outlets"][outlet]["on"] else "off"


def test_snmp_ups_publishes_the_chain_as_one_device(chainlab):
    """What the rest rests on: NUT 2.8.0 names the units' outlets
    device.U.outlet.N and offers device.U.outlet.N.load.off/on."""
    with nut.NutSession(chainlab.port("upsd")) as session:
        assert session.get_var(CHAIN, "device.count") == str(UNITS)
        commands = set(session.list_cmd(CHAIN))
    for unit in range(1, UNITS + 1):
        for number in range(1, OUTLETS + 1):
            assert {f"device.{unit}.outlet.{number}.load.off", f"device.{unit}.outlet.{number}.load.on"} <= commands


def test_list_status_names_chained_outlets_unit_colon_outlet(chainlab):
    run = run_agent(fencer(chainlab, ups=CHAIN, action="list-status"))
    assert run.rc == 0, run
    lines = run.out.splitlines()
    assert len(lines) == UNITS * OUTLETS, run
    assert "1:3,s1,ON" in lines and "2:3,s1,ON" in lines and "2:8,Outlet 2.8,ON" in lines, run
    run = run_agent(fencer(chainlab, action="list"))
    assert f"{CHAIN}:2:4,s2" in run.out.splitlines(), run


def test_off_status_on_of_a_second_unit_outlet(chain):
    """UNIT:OUTLET with ups=, as the least-privilege fencer (its grants are
    device.U.outlet.N.load.off/on); the PDU itself shows each change."""
    run = run_agent(fencer(chain, ups=CHAIN, plug="2:3", action="off"))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered OFF"), run
    assert _at_pdu(chain, f"{CHAIN}:2.3") == "off"
    assert _at_pdu(chain, f"{CHAIN}:3") == "on"  # unit 1's outlet 3 untouched
    run = run_agent(fencer(chain, plug=f"{CHAIN}:2:3", action="status"))
    assert (run.rc, run.out.strip()) == (2, "Status: OFF"), run
    run = run_agent(fencer(chain, ups=CHAIN, plug="2:3", action="on"))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered ON"), run
    assert _at_pdu(chain, f"{CHAIN}:2.3") == "on"


def test_reboot_of_both_feeds_across_units_power_log_order(chain):
    """s2's two feeds, one on each unit: both off (verified) before either
    comes back on."""
    since = time.time()
    run = run_agent(fencer(chain, plug=f"{CHAIN}:1:4,{CHAIN}:2:4", action="reboot"))
    assert (run.rc, run.out.strip()) == (0, "Success: Rebooted"), run
    events = [(e["name"], e["state"]) for e in chain.rack.power_log() if e["t"] >= since and e["name"] in (f"{CHAIN}:4", f"{CHAIN}:2.4")]
    states = [state for _, state in events]
    assert sorted(events[:2]) == [(f"{CHAIN}:2.4", "off"), (f"{CHAIN}:4", "off")] and states[2:] == ["on", "on"], events


def test_plain_number_and_unit_scoped_name(chain):
    """A plain number on a chain is unit 1's outlet (fence_snmp_pdu's
    reading); a name is looked up in the unit the plug names."""
    run = run_agent(fencer(chain, ups=CHAIN, plug="4", action="off"))
    assert run.rc == 0, run
    assert (_at_pdu(chain, f"{CHAIN}:4"), _at_pdu(chain, f"{CHAIN}:2.4")) == ("off", "on")
    run = run_agent(fencer(chain, plug=f"{CHAIN}:1:s2", action="on"))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered ON"), run
    assert _at_pdu(chain, f"{CHAIN}:4") == "on"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"plug": f"{CHAIN}:3:1"}, f"plug '{CHAIN}:3:1': {CHAIN} has no unit 3 (its daisy chain has units 1, 2)"),
        ({"ups": CHAIN, "plug": "2:9"}, f"plug '2:9': {CHAIN} unit 2 has no outlet 9"),
        ({"plug": f"{CHAIN}:s1"}, f"plug '{CHAIN}:s1' matches 2 outlets (1:3, 2:3) of {CHAIN}"),
        ({"plug": "ups1:2:3"}, "plug 'ups1:2:3': ups1 is no daisy chain"),
        ({"plug": f"{CHAIN}:x:3"}, f"plug '{CHAIN}:x:3': 'x' is not a unit number"),
    ],
)
def test_refusals_are_one_line(chainlab, options, message):
    run = run_agent(fencer(chainlab, action="off", **options))
    assert run.rc == 1, run
    errors = [line for line in run.err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and message in errors[0], run
    assert "Traceback" not in run.err, run


@pytest.mark.pacemaker
@pytest.mark.slow
def test_the_fencer_reboots_a_node_on_two_units_through_pcmk_host_map(cluster, chain):
    """Pacemaker's pcmk_host_map with both colons of each chained plug
    escaped (`chain\\:2\\:4`): the fencer hands fence_nut the plugs whole."""
    from infrapower.lab import pacemaker

    with pacemaker.fence_device(
        cluster,
        "nut_chain_s2",
        "fence_nut",
        ip=nut.HOST,
        ipport=chain.port("upsd"),
        username=nut.FENCER_USER,
        password=nut.FENCER_PASSWORD,
        pcmk_host_map=rf"s2:{CHAIN}\:1\:4,{CHAIN}\:2\:4",
        power_timeout=10,
    ):
        since = time.time()
        rc, output = pacemaker.fence(cluster, "reboot", "s2", timeout=60)
        assert rc == 0, output
    feeds = (f"{CHAIN}:4", f"{CHAIN}:2.4")
    events = [(e["name"], e["state"]) for e in chain.rack.power_log() if e["t"] >= since and e["name"] in feeds]
    assert sorted(events[:2]) == [(f"{CHAIN}:2.4", "off"), (f"{CHAIN}:4", "off")], events
    assert sorted(events[2:]) == [(f"{CHAIN}:2.4", "on"), (f"{CHAIN}:4", "on")], events
