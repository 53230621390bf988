"""Proof that the lab's single-node cluster fences a lab server that is not a
cluster node, through the real fencer, with a device that needs no hardware
(fence-agents' fence_dummy keeps its power state in a file)."""

import os
from pathlib import Path

import pytest

from infrapower.lab import pacemaker
from infrapower.lab.core import Lab

pytestmark = [
    pytest.mark.pacemaker,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the Pacemaker lab needs root"),
]


def test_reboot_of_a_non_node_through_the_fencer(cluster):
    assert pacemaker.dc_node() == pacemaker.NODE_NAME
    status_file = cluster.path("clc.power")
    pacemaker.create_device(cluster, "lab_dummy", "fence_dummy", pcmk_host_list="clc", status_file=status_file)

    rc, output = pacemaker.fence(cluster, "reboot", "clc", timeout=30)
    assert rc == 0, output
    # fence_dummy really ran: its reboot ends with the "on" phase.
    assert Path(status_file).read_text().strip() == "on"
    assert "reboot of clc successful" in pacemaker.history(cluster, "clc")

    rc, output = pacemaker.fence(cluster, "off", "clc", timeout=30)
    assert rc == 0, output
    assert Path(status_file).read_text().strip() == "off"

    # No device claims this host: the fencer says so instead of pretending.
    rc, output = pacemaker.fence(cluster, "reboot", "no-such-host", timeout=10)
    assert rc != 0
    assert "No such device" in output

    pacemaker.delete_device(cluster, "lab_dummy")
    rc, output = pacemaker.fence(cluster, "reboot", "clc", timeout=10)
    assert rc != 0, "a deleted device must no longer fence"


def test_properties_suit_a_lab(cluster):
    config = pacemaker.pcs(cluster, "property", "config").stdout
    for name, value in pacemaker.LAB_PROPERTIES.items():
        assert f"{name}: {value}" in config


def test_start_refuses_a_foreign_cluster(cluster, tmp_path):
    """A second lab directory must not take over the first lab's cluster."""
    other = Lab(tmp_path / "other")
    other.path().mkdir(parents=True)
    with pytest.raises(pacemaker.LabError, match="not started by this lab"):
        pacemaker.start(other)
    # Refusing touched nothing: the first cluster still answers.
    assert pacemaker.dc_node() == pacemaker.NODE_NAME


def test_an_agent_of_ours_runs_under_the_fencer(cluster):
    """The fencer runs agents only from /usr/sbin: install_agent links ours
    there for the cluster's lifetime (stop removes the link)."""
    agent = cluster.path("fence_labcopy")
    agent.write_text(Path("/usr/sbin/fence_dummy").read_text())
    agent.chmod(0o755)
    link = pacemaker.install_agent(cluster, agent)
    assert link.resolve() == agent
    status_file = cluster.path("nc2.power")
    pacemaker.create_device(cluster, "lab_copy", "fence_labcopy", pcmk_host_list="nc2", status_file=status_file)
    rc, output = pacemaker.fence(cluster, "reboot", "nc2", timeout=30)
    assert rc == 0, output
    assert Path(status_file).read_text().strip() == "on"
    pacemaker.delete_device(cluster, "lab_copy")
