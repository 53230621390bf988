"""A dual-fed node fenced by ONE fence_nut device under the real fencer:
`stonith_admin --reboot` cuts both feeds (the server loses power) before
either comes back; `--off` leaves the server unpowered.

Both PDUs here have outlet commands in NUT (the default rack's APC PDU has
none: see docs/fence_nut.md)."""

import time

import pytest

from infrapower import lab as lab_module
from infrapower.lab import nut, pacemaker
from infrapower.lab.rack import default_topology

pytestmark = [pytest.mark.pacemaker, pytest.mark.slow]


@pytest.fixture(scope="module")
def nut_rack(tmp_path_factory):
    topology = default_topology()
    topology["pdus"]["pdu1"] = {"mapping": "eaton_epdu", "outlets": 8, "units": 1, "ups": "ups1", "switch_delay": 0.0}
    directory = tmp_path_factory.mktemp("nutrack")
    running = lab_module.up(directory, topology=topology, components=("pdus", "nut"))
    yield running
    lab_module.down(directory)


def events(lab, since, server):
    feeds = set(lab.rack.topology()["servers"][server]["psus"].values())
    return [(e["name"], e["state"]) for e in lab.rack.power_log() if e["t"] >= since and (e["name"] in feeds or e["name"] == server)]


def test_one_device_reboots_and_offs_a_dual_fed_node(cluster, nut_rack):
    with pacemaker.fence_device(
        cluster,
        "nut_nc1",
        "fence_nut",
        ip="127.0.0.1",
        ipport=nut_rack.port("upsd"),
        username=nut.FENCER_USER,
        password=nut.FENCER_PASSWORD,
        pcmk_host_map=r"nc1:pdu1\:nc1,pdu2\:nc1",
        power_timeout=10,
    ):
        since = time.time()
        rc, output = pacemaker.fence(cluster, "reboot", "nc1", timeout=60)
        assert rc == 0, output
        seen = events(nut_rack, since, "nc1")
        server_off = seen.index(("nc1", "off"))
        assert {("pdu1:2", "off"), ("pdu2:2", "off")} <= set(seen[:server_off + 1])
        assert ("pdu1:2", "on") in seen[server_off:] and ("pdu2:2", "on") in seen[server_off:]
        assert seen[-1] == ("nc1", "on") or ("nc1", "on") in seen[server_off:]

        rc, output = pacemaker.fence(cluster, "off", "nc1", timeout=60)
        assert rc == 0, output
        assert nut_rack.rack.read()["derived"]["server nc1"] == "off"
