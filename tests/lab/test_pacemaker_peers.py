"""The lab behaves like hardware to agents nobody here wrote: Pacemaker
fences lab servers with fence-agents' own fence_apc_snmp (an outlet of the
APC PDU) and fence_ipmilan (the server's BMC)."""

import time

import pytest

from infrapower.lab import bmc, pacemaker

pytestmark = [pytest.mark.pacemaker, pytest.mark.slow]


def transitions(lab, since, names):
    return [(e["name"], e["state"]) for e in lab.rack.power_log() if e["t"] >= since and e["name"] in names]


def test_fence_apc_snmp_reboots_a_feed_through_the_fencer(cluster, rack):
    since = time.time()
    with pacemaker.fence_device(
        cluster,
        "peer_apc",
        "fence_apc_snmp",
        ip="127.0.0.1",
        ipport=cluster.port("snmp:pdu1"),
        community="private",
        pcmk_host_map="nc1:2",
    ):
        rc, output = pacemaker.fence(cluster, "reboot", "nc1", timeout=60)
        assert rc == 0, output
        assert transitions(cluster, since, {"pdu1:2"}) == [("pdu1:2", "off"), ("pdu1:2", "on")]


def test_fence_ipmilan_powers_a_server_off_and_on_through_the_fencer(cluster, rack):
    since = time.time()
    with pacemaker.fence_device(
        cluster,
        "peer_ipmi",
        "fence_ipmilan",
        ip="127.0.0.1",
        ipport=cluster.port("bmc:nc2"),
        username=bmc.ADMIN_USER,
        password=bmc.ADMIN_PASSWORD,
        lanplus="1",
        cipher=str(bmc.CIPHER_SUITE),
        pcmk_host_list="nc2",
    ):
        rc, output = pacemaker.fence(cluster, "off", "nc2", timeout=60)
        assert rc == 0, output
        assert cluster.rack.read()["derived"]["server nc2"] == "off"
        rc, output = pacemaker.fence(cluster, "on", "nc2", timeout=60)
        assert rc == 0, output
        assert transitions(cluster, since, {"nc2"}) == [("nc2", "off"), ("nc2", "on")]
