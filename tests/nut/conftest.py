"""fence_nut against the lab's real upsd 2.8.0: snmp-ups over the simulated
PDUs (pdu1 apc_pdu, pdu2 eaton_epdu) and the Python test driver (ups1,
ups2, tpdu) for the faults snmp-ups cannot produce.

The installed agent (/usr/sbin/fence_nut, `make install-agents`) is what
runs: options go on stdin, as pacemaker-fenced passes them, so no secret is
ever in argv.
"""

import shutil
import time

import pytest
from nut_helpers import AGENT

from infrapower import lab as lab_module
from infrapower.lab import nut
from infrapower.lab.core import wait_until

TPDU_SWITCHABLE = (1, 2, 3)

@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """PDUs and NUT only (no BMCs): what fence_nut talks to."""
    if not (AGENT.exists() and shutil.which(nut.UPSD)):
        pytest.skip("needs the installed agent (make install-agents) and Debian's nut-server")
    directory = tmp_path_factory.mktemp("nutlab")
    running = lab_module.up(directory, components=("pdus", "nut"))
    yield running
    lab_module.down(directory)


@pytest.fixture
def nutlab(lab):
    """The lab with every outlet and UPS on and no fault, before and after."""
    _reset(lab)
    yield lab
    _reset(lab)


def _reset(lab):
    """The shared reset (infrapower.lab.reset), then what only upsd holds:
    tpdu's relays, and upsd showing every outlet on again."""
    lab_module.reset(lab)
    nut.wait_ready(lab, time.monotonic() + 10)
    # tpdu's relays live in its driver process (the rack has no tpdu).
    with nut.NutSession(lab.port("upsd")) as session:
        session.login(nut.ADMIN_USER, nut.ADMIN_PASSWORD)
        for number in TPDU_SWITCHABLE:
            if session.get_var("tpdu", f"outlet.{number}.status") != "on":
                session.instcmd("tpdu", f"outlet.{number}.load.on")
        wait_until(
            lambda: all(session.get_var("tpdu", f"outlet.{n}.status") == "on" for n in TPDU_SWITCHABLE)
            and all(session.get_var(pdu, f"outlet.{n}.status") == "on" for pdu in ("pdu1", "pdu2") for n in (1, 2, 3)),
            time.monotonic() + 5,
            "every outlet on in upsd",
        )
