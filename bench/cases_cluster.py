"""The lab's 3-node cluster (issue 16): start-up to three joined members
with a DC; a crashed node fenced by the survivors through the pack's
agents (target 10 s), beside the floor corosync sets: the same crash until
the survivors' membership has lost the node (token + consensus at the
lab's token of 1000 ms).  The memory per node is in the case name.
Root only (no cases otherwise); the lab (not the cluster) is up for the
session; the whole file takes about 4 minutes."""

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import Case

PROBE = [sys.executable, str(Path(__file__).resolve().parent / "cluster_probe.py")]


@contextlib.contextmanager
def session():
    if os.geteuid() != 0:
        yield None
        return
    from infrapower import lab as lab_module

    directory = tempfile.mkdtemp(prefix="bench-cluster-")
    try:
        yield lab_module.up(directory)
    finally:
        lab_module.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _memory(lab):
    """Mean MiB per node (the cluster up with its fencing, idle)."""
    from infrapower.lab import cluster
    from infrapower.lab.cluster import fencing

    cluster.up(lab)
    try:
        fencing.apply(lab)
        per_node = cluster.memory(lab)
        return sum(per_node.values()) / len(per_node) / 2**20
    finally:
        cluster.down(lab)


def cases(context=None):
    if context is None:
        return []
    directory = str(context.dir)
    mib = _memory(context)
    return [
        Case(f"cluster start-up, 3 nodes joined with a DC ({mib:.0f} MiB per node)",
             ours=PROBE + ["up", directory], cleanup=PROBE + ["down", directory], runs=3, warmup=1, timeout=180),
        # The fence case needs the cluster and its fencing up: up once here.
        Case("crashed node fenced by the survivors (fence_snmp_pdu + fence_nut level) vs membership lost",
             ours=["sh", "-c", " ".join(PROBE + ["fence", directory, "nc2", "crash"])],
             peer=["sh", "-c", " ".join(PROBE + ["lost", directory, "nc2", "crash"])],
             cleanup=PROBE + ["rejoin", directory], runs=3, warmup=1, timeout=180, target=3.0),
    ]
