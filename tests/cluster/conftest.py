"""One 3-node cluster (clc, nc1, nc2) beside the session's lab, shared by
every cluster test: it starts once per session (~7 s, plus its fencing
through pcs) and goes, with every namespace, cgroup and process it made,
as soon as the last test of tests/cluster is done (package scope: the
rest of the suite does not carry its ~400 MiB)."""

import os
import shutil
import time

import pytest

NEEDS = ("corosync", "pacemakerd", "pcs", "nsenter", "unshare", "ip")


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: needs root and starts the lab's 3-node Pacemaker cluster")


def pytest_collection_modifyitems(config, items):
    missing = [tool for tool in NEEDS if not shutil.which(tool)]
    reason = "needs root" if os.geteuid() != 0 else (f"needs {', '.join(missing)}" if missing else None)
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="package")
def three_nodes(lab):
    """The session lab with the cluster up and fenced by the plan, started
    as `infrapower lab up --cluster` starts it once the rack is up."""
    from infrapower import lab as lab_module
    from infrapower.cli import lab_cluster
    from infrapower.lab import cluster

    lab_module.reset(lab)  # every server powered, whatever earlier tests left
    try:
        lab.cluster_seconds, lab.fencing_commands = lab_cluster.start(lab)
        yield lab
    finally:
        cluster.down(lab)


@pytest.fixture
def cluster_lab(three_nodes):
    """Every node a member before the test and after it (a test that
    fenced a node waits for it to rejoin); the rack as found."""
    from infrapower import lab as lab_module
    from infrapower.lab import cluster

    cluster.wait_ready(three_nodes, time.monotonic() + 120)
    yield three_nodes
    lab_module.reset(three_nodes)
    for node in cluster.NODES:
        cluster.fault(three_nodes, node, "clear")
    cluster.wait_ready(three_nodes, time.monotonic() + 120)
