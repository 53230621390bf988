"""The detection's first GET (sysObjectID, every mapping's model OID and
the guesses: plug states, outlet counts) stays within one unfragmented
datagram whatever the plugs, with the real generated tables."""

import pytest

from infrapower import tables
from infrapower.snmp import ber, pdu


class _V2cSession:
    version = "2c"


def _first_get(plugs, listing=False):
    document = tables.load()
    seen = {}

    def detect(session, document, speculate, first=()):
        seen["first"] = list(first)
        raise LookupError  # stop before any I/O

    device = pdu.Pdu(_V2cSession(), document)
    original, pdu.detect = pdu.detect, detect
    try:
        with pytest.raises(LookupError):
            device._detect(plugs, listing=listing)
    finally:
        pdu.detect = original
    assert document["tables"].read_names() == []  # guessing for every mapping reads no table file
    oids = [pdu.SYS_OBJECT_ID] + pdu._model_probes(document["mappings"]) + seen["first"]
    return seen["first"], len(ber.pdu(ber.GET, 0x7FFFFFFF, [(oid, ber.NULL_VALUE) for oid in oids]))


@pytest.mark.parametrize("plugs", [["3"], ["2:3"], ["3", "5"], ["1", "2", "3", "4"], ["Outlet 7"]])
def test_first_get_within_budget(plugs):
    guesses, size = _first_get(plugs)
    assert size <= pdu.FIRST_GET_BUDGET
    if plugs == ["3"]:
        assert guesses, "one plug's states under every mapping fit"


def test_listing_first_get_within_budget_counts_first():
    guesses, size = _first_get((), listing=True)
    assert size <= pdu.FIRST_GET_BUDGET
    document = tables.load()
    apc = next(m for m in document["mappings"] if m["name"] == "apc_pdu")
    assert pdu._count_probes(document, apc)[0][0] in guesses
