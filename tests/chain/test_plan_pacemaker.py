"""The fencing plan, applied: its pcs commands run against the lab's
Pacemaker, every lab server is fenced through the fencer, and the lab's
power log shows each one lost power completely (every feed off at once)
and came back.

Two racks: the default one (pdu1 is APC, which NUT cannot switch, so the
plan is a pcs stonith level of fence_snmp_pdu + fence_nut), and one whose
PDUs both have NUT outlet commands (both Eaton), where the plan is one
fence_nut device per server with both plugs; then, on that rack, pdu2
served by a second upsd only: a level of one fence_nut device per upsd."""

import shlex
import subprocess
import sys
import time

import pytest

from infrapower import lab as lab_module
from infrapower.chain import lab as chain_lab
from infrapower.chain.upsconf import UpsConf
from infrapower.lab import nut, pacemaker
from infrapower.lab.core import wait_until
from infrapower.lab.rack import default_topology

pytestmark = [pytest.mark.pacemaker, pytest.mark.slow]


def plan_commands(config_dir):
    result = subprocess.run(
        [sys.executable, "-m", "infrapower.cli.chain", "--config-dir", str(config_dir), "--plan", "--pcs-force",
         "--secrets-dir", str(config_dir / "keys"), "--write-secrets"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, [line for line in result.stdout.splitlines() if line.startswith("pcs ")]


def registered():
    return subprocess.run(["stonith_admin", "--list-registered"], capture_output=True, text=True, timeout=15).stdout


def fence_every_server(cluster, rack, commands):
    """Apply `commands`, reboot every server through the fencer, check the
    power log; the devices are removed afterwards (levels go with them)."""
    created = []
    try:
        for line in commands:
            words = shlex.split(line)
            pacemaker.pcs(cluster, *words[1:])
            if words[1:3] == ["stonith", "create"]:
                created.append(words[3])
        wait_until(lambda: all(name in registered() for name in created), time.monotonic() + 30, "plan devices registered")
        topology = rack.rack.topology()
        for server, spec in topology["servers"].items():
            since = time.time()
            rc, output = pacemaker.fence(cluster, "reboot", server, timeout=90)
            assert rc == 0, f"{server}: {output}"
            events = [e for e in rack.rack.power_log() if e["t"] >= since]
            outlets = list(spec["psus"].values())

            def times(name, state):
                return [e["t"] for e in events if e["name"] == name and e["state"] == state]

            server_changes = [e["state"] for e in events if e["kind"] == "server" and e["name"] == server]
            assert server_changes == ["off", "on"], (server, events)
            for outlet in outlets:
                assert [e["state"] for e in events if e["name"] == outlet] == ["off", "on"], (outlet, events)
            last_off = max(times(outlet, "off")[0] for outlet in outlets)
            first_on = min(times(outlet, "on")[0] for outlet in outlets)
            # Completely off: every feed off at once, and the server went
            # down exactly when the last one did; no other server touched.
            assert last_off < first_on
            assert times(server, "off") == [last_off]
            assert not [e for e in events if e["kind"] == "server" and e["name"] != server]
    finally:
        for name in created:
            pacemaker.delete_device(cluster, name)


def test_plan_with_levels_fences_every_lab_server(cluster, rack, tmp_path):
    output, commands = plan_commands(chain_lab.write_config(rack, tmp_path))
    assert sum("stonith level add" in c for c in commands) == 3, output
    fence_every_server(cluster, rack, commands)


@pytest.fixture(scope="module")
def eaton_rack(tmp_path_factory):
    """A second rack beside the session's, both PDUs Eaton ePDUs (NUT
    outlet commands on both feeds)."""
    topology = default_topology()
    topology["pdus"]["pdu1"] = dict(topology["pdus"]["pdu2"], ups="ups1", switch_delay=0.0)
    directory = tmp_path_factory.mktemp("eaton-lab")
    running = lab_module.up(directory, topology=topology)
    yield running
    lab_module.down(directory)


def test_one_fence_nut_device_per_server_when_every_feed_is_on_one_upsd(cluster, eaton_rack, tmp_path):
    output, commands = plan_commands(chain_lab.write_config(eaton_rack, tmp_path))
    assert "level" not in output
    assert len(commands) == 3 and all(" fence_nut " in c for c in commands)
    assert "plug=pdu1:1,pdu2:1 pcmk_host_list=clc" in commands[0]
    fence_every_server(cluster, eaton_rack, commands)


@pytest.fixture(scope="module")
def second_upsd(eaton_rack):
    """pdu2 served by a second upsd only (as by another NUT server)."""
    nut.start_upsd(eaton_rack, "upsd-pdu2", devices=["pdu2"])
    return "upsd-pdu2"


def test_feeds_on_two_upsds_give_a_level_of_two_fence_nut_devices(cluster, eaton_rack, second_upsd, tmp_path):
    config = chain_lab.write_config(eaton_rack, tmp_path, other_upsds=[second_upsd])
    # The second upsd's own fencing user, from its [@host:port] section.
    servers = UpsConf.read(config / "servers.conf")
    section = next(name for name in servers.sections if name.startswith("@"))
    servers.set(section, "fence_nut_username", nut.SET_FENCER_USER)
    servers.set(section, "fence_nut_password", nut.SET_FENCER_PASSWORD)
    servers.write()

    output, commands = plan_commands(config)
    second = f"127.0.0.1:{eaton_rack.port(second_upsd)}"
    assert (f"clc: off: pdu1:1 (psu1, fence_nut), pdu2:1@{second} (psu2, fence_nut); "
            "a pcs stonith level of chain-clc-nut1, chain-clc-nut2") in output
    assert (f"pcs stonith create chain-clc-nut2 fence_nut ip=127.0.0.1 ipport={eaton_rack.port(second_upsd)} "
            f"username={nut.SET_FENCER_USER}") in output
    assert f"ipport={eaton_rack.port('upsd')} username={nut.FENCER_USER}" in output
    assert sum("stonith level add" in c for c in commands) == 3, output
    fence_every_server(cluster, eaton_rack, commands)
