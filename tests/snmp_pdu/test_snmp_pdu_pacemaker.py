"""fence_snmp_pdu under pacemaker-fenced: `pcs stonith create` with a host
map, `stonith_admin --reboot/--fence` a lab server, and its outlets'
transitions in the rack's power log."""

import time

import pytest

from infrapower.lab import pacemaker

pytestmark = [pytest.mark.pacemaker, pytest.mark.slow]


@pytest.fixture
def pdu_lab(lab):
    """The session's full lab (the cluster fixture runs beside it)."""
    return lab


def transitions(lab, since, names):
    return [(e["name"], e["state"]) for e in lab.rack.power_log() if e["t"] >= since and e["name"] in names]


def test_pacemaker_reboots_and_fences_a_server_through_fence_snmp_pdu(cluster, rack):
    with pacemaker.fence_device(
        cluster, "snmp_pdu1", "fence_snmp_pdu",
        ip="127.0.0.1", ipport=cluster.port("snmp:pdu1"), community="private",
        pcmk_host_map="clc:1;nc1:2;nc2:3",
    ):
        since = time.time()
        rc, output = pacemaker.fence(cluster, "reboot", "nc1", timeout=60)
        assert rc == 0, output
        assert transitions(cluster, since, {"pdu1:2"}) == [("pdu1:2", "off"), ("pdu1:2", "on")]
        since = time.time()
        rc, output = pacemaker.fence(cluster, "off", "nc2", timeout=60)
        assert rc == 0, output
        assert transitions(cluster, since, {"pdu1:1", "pdu1:2", "pdu1:3"}) == [("pdu1:3", "off")]
