"""Fixtures of the fence_snmp_pdu tests: each test module starts its own
lab (`pdu_lab`, a topology of its choosing, see snmp_pdu_helpers), and
every test finds that rack powered and fault-free."""

import pytest
from snmp_pdu_helpers import reset


@pytest.fixture
def rack(pdu_lab):
    """The module's lab, every outlet on and no fault, before and after."""
    reset(pdu_lab)
    yield pdu_lab
    reset(pdu_lab)
