"""Power-aware node health: the colours for every link state the
PowerChain knows (NUT's countdowns to a cut: tests/unit/test_health_colour,
and one read from the lab's upsd here), the installed OCF agent
(meta-data, validate-all), and #health-power set on every node of the
lab's cluster."""

import os
import subprocess
import time
from xml.etree import ElementTree

import pytest

from infrapower.chain import analysis, assemble
from infrapower.chain.lab import write_config
from infrapower.chain.live import DOWN, OK, RISK, UNKNOWN, LinkState
from infrapower.health.colour import GREEN, RED, YELLOW, colour
from infrapower.lab import cluster
from infrapower.lab.core import wait_until

AGENT = "/usr/lib/ocf/resource.d/infrapower/power-health"

ONLINE = LinkState(OK, "OL", "online")
ON_BATTERY = LinkState(RISK, "OB DISCHRG", "on battery")
LOW_BATTERY = LinkState(RISK, "OB DISCHRG LB", "on battery, low")
UPS_OFF = LinkState(DOWN, "OFF", "off")
PSU_FAILED = LinkState(DOWN, "failed", "failed")
OUTLET_OFF = LinkState(DOWN, "off", "off")
NOT_READ = LinkState(UNKNOWN, "?")
PDU_NO_INPUT = LinkState(DOWN, "0.0 V", "no input")
FORCED_SHUTDOWN = LinkState(DOWN, "FSD OB LB", "forced shutdown")
LOW_ON_MAINS = LinkState(RISK, "OL LB", "battery low")


@pytest.fixture(scope="module")
def chain(lab, tmp_path_factory):
    return assemble.load(write_config(lab, tmp_path_factory.mktemp("chain")))


def _colour(chain, server, **states):
    """Every link online/on, but those given (`clc_psu1` for clc:psu1,
    `pdu2_1` for pdu2:1)."""
    given = {name.replace("_psu", ":psu").replace("_", ":"): state for name, state in states.items()}
    all_states = {link_id: ONLINE for link_id in chain.links}
    all_states.update(given)
    assessment = analysis.assess_server(chain, server, all_states)
    unread = [link for feed in assessment.feeds for link in feed.links if all_states[link].level == UNKNOWN]
    return colour(assessment, unread).colour


@pytest.mark.parametrize(
    "states,expected",
    [
        ({}, GREEN),
        ({"ups2": ON_BATTERY}, YELLOW),  # psu1's feed still healthy
        ({"ups2": LOW_BATTERY}, YELLOW),
        ({"ups2": UPS_OFF}, YELLOW),  # one feed left
        ({"pdu2_1": OUTLET_OFF}, YELLOW),
        ({"clc_psu1": PSU_FAILED}, YELLOW),
        ({"clc_psu1": PSU_FAILED, "ups2": ON_BATTERY}, RED),  # the spec's scenario
        ({"clc_psu1": PSU_FAILED, "ups2": LOW_BATTERY}, RED),
        ({"ups1": ON_BATTERY, "ups2": ON_BATTERY}, RED),  # every feed on battery
        ({"ups1": UPS_OFF, "ups2": LOW_BATTERY}, RED),
        ({"clc_psu1": PSU_FAILED, "ups2": UPS_OFF}, RED),  # no power at all
        ({"pdu1_1": NOT_READ}, YELLOW),  # not seen: no evidence to move on
        ({"pdu2": PDU_NO_INPUT}, YELLOW),
        ({"clc_psu1": PSU_FAILED, "pdu2": PDU_NO_INPUT}, RED),
        ({"ups2": FORCED_SHUTDOWN}, YELLOW),
        ({"clc_psu1": PSU_FAILED, "ups2": FORCED_SHUTDOWN}, RED),
        ({"clc_psu1": PSU_FAILED, "ups2": LOW_ON_MAINS}, RED),  # a battery low on mains: no margin either
    ],
)
def test_colour_of_every_chain_state(chain, states, expected):
    assert _colour(chain, "clc", **states) == expected


def test_a_countdown_served_by_upsd_turns_the_node_red(lab, tmp_path):
    """The read as the agent does it: clc's PSU1 failed, UPS2 (its last
    feed) on mains but counting down to a cut (load.off.delay), read
    from the real upsd: red before the cut, with the seconds said."""
    from infrapower import lab as lab_module
    from infrapower.health.colour import read
    from infrapower.lab import bmc

    config = write_config(lab, tmp_path / "chain")
    lab_module.reset(lab)  # whatever earlier tests left
    try:
        bmc.set_psu_fault(lab, "clc", "psu1", "failed")
        wait_until(lambda: read(config, "clc").colour == YELLOW, time.monotonic() + 30, "clc yellow")
        lab.rack.schedule_ups_off("ups2", 120)
        health = wait_until(
            lambda: (lambda h: h if h.colour == RED else None)(read(config, "clc")), time.monotonic() + 30, "clc red"
        )
        assert "ups2" in health.reason and "output off in" in health.reason, health.reason
        assert lab.rack.read()["upses"]["ups2"]["on"] is True
    finally:
        lab.rack.schedule_ups_off("ups2", None)
        bmc.set_psu_fault(lab, "clc", "psu1", None)
        lab_module.reset(lab)


def test_other_servers_keep_their_colour(chain):
    assert _colour(chain, "nc1", clc_psu1=PSU_FAILED, ups2=ON_BATTERY) == YELLOW


# -- the installed agent -----------------------------------------------------


def _agent(action, **params):
    env = dict(os.environ, **{f"OCF_RESKEY_{k}": str(v) for k, v in params.items()})
    env["HA_RSCTMP"] = env.get("HA_RSCTMP", "/tmp")
    return subprocess.run([AGENT, action], capture_output=True, text=True, timeout=60, env=env)


needs_agent = pytest.mark.skipif(not os.access(AGENT, os.X_OK), reason="install the pack first (make install-extras)")


@needs_agent
def test_metadata_is_ocf_1_1():
    result = _agent("meta-data")
    assert result.returncode == 0
    root = ElementTree.fromstring(result.stdout)
    assert root.get("name") == "power-health" and root.findtext("version") == "1.1"
    actions = {a.get("name") for a in root.iter("action")}
    assert {"start", "stop", "monitor", "validate-all", "meta-data"} <= actions


@needs_agent
def test_validate_all(lab, tmp_path):
    config = write_config(lab, tmp_path / "chain")
    assert _agent("validate-all", config_dir=config, server="clc").returncode == 0
    wrong = _agent("validate-all", config_dir=config, server="nc9")
    assert wrong.returncode == 6 and "no server 'nc9'" in wrong.stderr
    assert _agent("validate-all", config_dir=tmp_path / "none", server="clc").returncode == 6
    assert _agent("validate-all", config_dir=config, server="clc", timeout="soon").returncode == 6
    # A probe of a stopped resource is "not running", not an error.
    assert _agent("monitor", config_dir=config, server="clc").returncode == 7


@needs_agent
def test_the_agent_logs_one_line_when_attrd_updater_cannot_run(lab, tmp_path):
    """No attrd_updater on the PATH: start still reads the chain and says
    why the colour was not set, in one line, never a traceback."""
    config = write_config(lab, tmp_path / "chain")
    env = {
        "PATH": str(tmp_path), "HA_RSCTMP": str(tmp_path),
        "OCF_RESKEY_config_dir": str(config), "OCF_RESKEY_server": "clc",
    }
    result = subprocess.run([AGENT, "start"], capture_output=True, text=True, timeout=60, env=env)
    assert "Traceback" not in result.stderr and "attrd_updater:" in result.stderr, result.stderr
    assert result.returncode == 0
    stop = subprocess.run([AGENT, "stop"], capture_output=True, text=True, timeout=60, env=env)
    assert stop.returncode == 0 and "Traceback" not in stop.stderr


@needs_agent
def test_a_read_past_the_monitors_deadline_is_yellow(lab, tmp_path):
    """Half the op timeout Pacemaker passes (here 10 ms) for the read:
    past it the colour is yellow, set before Pacemaker would kill the
    monitor, never the previous colour left standing."""
    config = write_config(lab, tmp_path / "chain")
    env = dict(
        os.environ, HA_RSCTMP=str(tmp_path), OCF_RESKEY_config_dir=str(config), OCF_RESKEY_server="clc",
        OCF_RESKEY_CRM_meta_timeout="10",
    )
    result = subprocess.run([AGENT, "start"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and "clc: yellow: power chain not read within 0.005 s" in result.stderr, result.stderr
    subprocess.run([AGENT, "stop"], capture_output=True, text=True, timeout=60, env=env)


# -- in the cluster ------------------------------------------------------------


def health(lab, via="nc1"):
    """{node: colour} of #health-power as the cluster has it."""
    from infrapower.lab.cluster import scenario

    return scenario.health(lab, via)


@needs_agent
def test_every_node_is_green_in_a_healthy_rack(cluster_lab):
    wait_until(
        lambda: health(cluster_lab) == {n: GREEN for n in cluster.NODES},
        time.monotonic() + 60,
        "#health-power green on clc, nc1, nc2",
    )
    strategy = cluster.run(cluster_lab, "clc", ["crm_attribute", "-G", "-n", "node-health-strategy", "-q"]).stdout
    assert strategy.strip() == "migrate-on-red"


@needs_agent
@pytest.mark.skipif(not os.access("/usr/sbin/ocf-tester", os.X_OK), reason="needs ocf-tester (resource-agents)")
def test_ocf_tester_passes(lab, tmp_path):
    """resource-agents' own conformance test: metadata against
    ra-api-1.dtd, start/monitor/stop, probes of a stopped resource."""
    config = write_config(lab, tmp_path / "chain")
    result = subprocess.run(
        ["ocf-tester", "-n", "power-health-test", "-o", f"config_dir={config}", "-o", "server=clc", AGENT],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, HA_RSCTMP=str(tmp_path)),
    )
    assert result.returncode == 0 and "passed all tests" in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_plan_prints_the_health_commands_when_asked(lab, tmp_path):
    """`--plan --health` adds them; a plain `--plan` stays as it was (it is
    applied line by line by scripts)."""
    import sys

    config = write_config(lab, tmp_path / "chain")

    def plan(*extra):
        argv = [sys.executable, "-m", "infrapower.cli.main", "chain", "--config-dir", str(config), "--plan", *extra]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "power-health" not in plan() and "node-health-strategy" not in plan()
    with_health = plan("--health")
    assert f"pcs resource create power-health ocf:infrapower:power-health config_dir={config} " in with_health
    assert "allow-unhealthy-nodes=true" in with_health
    assert "pcs property set node-health-strategy=migrate-on-red" in with_health
