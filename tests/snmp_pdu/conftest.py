"""Fixtures of the fence_snmp_pdu tests: each test module starts its own
lab (`pdu_lab`, a topology of its choosing, see snmp_pdu_helpers), and
every test finds that rack powered and fault-free."""

import pytest
from snmp_pdu_helpers import reset
from snmpd_peer import Snmpd


@pytest.fixture
def rack(pdu_lab):
    """The module's lab, every outlet on and no fault, before and after."""
    reset(pdu_lab)
    yield pdu_lab
    reset(pdu_lab)


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory):
    """net-snmp's snmpd for the module (see snmpd_peer)."""
    server = Snmpd(tmp_path_factory.mktemp("snmpd")).start()
    yield server
    server.stop()


@pytest.fixture
def peer(snmpd):
    """The module's snmpd, running, with every outlet on."""
    if snmpd.process is None:
        snmpd.start()
    for number in snmpd.outlets_on():
        snmpd.set_outlet(number, True)
    return snmpd
