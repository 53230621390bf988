"""fence_ipmi_psu under the real fencer: `stonith_admin --reboot nc1`
through a device of this agent, where every timeout option arrives as 0."""

import os

import pytest
from ipmi_psu_helpers import AGENT, needs_bmcs, server_events

from infrapower.lab import bmc, pacemaker

pytestmark = [
    needs_bmcs,
    pytest.mark.pacemaker,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the Pacemaker lab needs root"),
    pytest.mark.skipif(not os.access(AGENT, os.X_OK), reason="install the agents first (make install-agents)"),
]


def test_stonith_admin_reboot_through_a_fence_ipmi_psu_device(cluster, bmcs):
    device = "ipmi_psu_nc1"
    with pacemaker.fence_device(
        cluster, device, "fence_ipmi_psu",
        ip="127.0.0.1", ipport=cluster.port("bmc:nc1"), username=bmc.ADMIN_USER, password=bmc.ADMIN_PASSWORD,
        pcmk_host_list="nc1", min_psus=2,
    ):
        before = len(server_events(cluster, "nc1"))
        rc, output = pacemaker.fence(cluster, "reboot", "nc1", timeout=60)
        assert rc == 0, output
        assert server_events(cluster, "nc1")[before:] == ["off", "on"]
        assert "reboot of nc1 successful" in pacemaker.history(cluster, "nc1")
