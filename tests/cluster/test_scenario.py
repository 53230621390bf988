"""The spec's scenario end to end (infrapower.lab.cluster.scenario): clc's
PSU1 fails, UPS2 loses its mains, clc turns red and its resource moves
away while clc still runs, the battery runs out, the cluster fences clc
and carries on, mains back, clc rejoins."""

import os

import pytest

from infrapower.lab.cluster import scenario

AGENT = "/usr/lib/ocf/resource.d/infrapower/power-health"


@pytest.mark.skipif(not os.access(AGENT, os.X_OK), reason="install the pack first (make install-extras)")
def test_the_spec_scenario(cluster_lab):
    figures = scenario.run(cluster_lab)
    print(", ".join(f"{name} {value:.1f} s" for name, value in figures.items()))
    # The resource left clc before clc lost power (run() raises otherwise).
    assert figures["margin"] > 0
