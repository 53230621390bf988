"""Fixtures every test shares: the lab (the simulated rack), started once
per session, with its rack reset between tests that change it."""

import os
import time

import pytest

from infrapower import lab as lab_module


def pytest_report_header(config):
    return f"lab components: {', '.join(lab_module.COMPONENTS)}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """The spec's rack, up for the whole session."""
    directory = tmp_path_factory.mktemp("lab")
    started = time.monotonic()
    running = lab_module.up(directory)
    running.startup_seconds = time.monotonic() - started
    yield running
    lab_module.down(directory)


@pytest.fixture(scope="session")
def cluster(lab):
    """A single-node corosync+pacemaker on loopback, beside the session's
    lab (only one cluster can run on a machine, so every Pacemaker test
    shares this one).  Its devices fence the lab's servers."""
    from infrapower.lab import pacemaker

    if os.geteuid() != 0:
        pytest.skip("the Pacemaker lab needs root")
    pacemaker.start(lab)
    try:
        pacemaker.wait_ready(lab, time.monotonic() + 90)
        yield lab
    finally:
        pacemaker.stop(lab)


@pytest.fixture
def rack(lab):
    """The session lab with every outlet, UPS and chassis on and no fault,
    as a test expects to find it; faults a test injects are cleared after."""
    lab_module.reset(lab)
    yield lab
    lab_module.reset(lab)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (starts corosync and pacemaker)")
        for item in items:
            if "pacemaker" in item.keywords:
                item.add_marker(skip)
