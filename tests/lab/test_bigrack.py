"""`infrapower lab up --servers N` (issue 18): the topology's shape, and a
small rack of it running with the real peers: snmpget answers the slow
PDU fault late, the PowerChain reads every feed live (daisy chains over
SNMP, single PDUs and UPSes through upsd, PSUs from the BMCs).  The
200-server figures are the bench's (bench/cases_scale.py)."""

import subprocess
import sys
import time

import pytest

from infrapower import lab as lab_module
from infrapower.lab import bigrack, nut, pdus
from infrapower.lab.rack import pdu_outlet_ids


def test_topology_two_psus_per_server_on_two_sides():
    topology = bigrack.topology(200)
    assert len(topology["servers"]) == 200
    assert topology["servers"]["s001"]["psus"] == {"psu1": "pdu1a:1", "psu2": "pdu1b:1"}
    assert topology["servers"]["s025"]["psus"] == {"psu1": "pdu1a:2.1", "psu2": "pdu1b:25"}  # unit 2 of the chain
    assert topology["servers"]["s073"]["psus"] == {"psu1": "pdu2a:2.1", "psu2": "pdu2b:2.1"}
    outlets = [o for spec in topology["servers"].values() for o in spec["psus"].values()]
    assert len(set(outlets)) == 400  # no outlet feeds two PSUs
    existing = {o for name, pdu in topology["pdus"].items() for o in pdu_outlet_ids(name, pdu)}
    assert set(outlets) <= existing
    for server in topology["servers"].values():
        feeds = [topology["pdus"][o.split(":")[0]]["ups"] for o in server["psus"].values()]
        assert len(set(feeds)) == 2  # each PSU behind its own UPS
    mappings = {pdu["mapping"] for pdu in topology["pdus"].values()}
    assert mappings == {"eaton_epdu", "apc_pdu", "hpe_epdu"}
    assert all(pdu["nut"] == (pdu["units"] == 1) for pdu in topology["pdus"].values())
    assert topology["nut_psu_devices"] is False


def test_topology_small_and_refused():
    assert list(bigrack.topology(1)["servers"]) == ["s001"]
    assert len(bigrack.topology(49)["pdus"]) == 4  # a second row
    with pytest.raises(ValueError):
        bigrack.topology(0)


@pytest.fixture(scope="module")
def small_rack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bigrack")
    cli = [sys.executable, "-m", "infrapower.cli.main", "lab"]
    try:
        up = subprocess.run(cli + ["up", "--dir", str(directory), "--servers", "6"], capture_output=True, text=True,
                            timeout=180)
        assert up.returncode == 0, up.stderr
        yield lab_module.Lab(directory), up.stdout
    finally:
        subprocess.run(cli + ["down", "--dir", str(directory)], capture_output=True, timeout=120)


def test_small_rack_up_and_read_live(small_rack):
    lab, summary = small_rack
    assert "servers: 6" in summary and "daisy chain of 2 units" in summary
    # NUT serves the UPSes and the single-unit PDU, not the chains, not PSUs.
    assert set(nut.device_names(lab)) == {"ups1a", "ups1b", "tpdu", "pdu1b"}
    chain = subprocess.run([sys.executable, "-m", "infrapower.cli.main", "chain", "--lab", str(lab.dir), "--live"],
                           capture_output=True, text=True, timeout=120)
    assert chain.returncode == 0, chain.stderr
    assert "s001 (row 1)" in chain.stdout
    assert "  psu1 [ok] -> pdu1a:1 [on] -> ups1a [OL] -> main" in chain.stdout
    assert "  psu2 [ok] -> pdu1b:6 [on] -> ups1b [OL] -> main" in chain.stdout
    assert chain.stdout.count("redundant: 2 independent feeds") == 6


def test_slow_pdu_fault_answers_late(small_rack):
    lab, _ = small_rack
    port = lab.port("snmp:pdu1b")
    argv = ["snmpget", "-v1", "-c", "public", "-t", "2", "-r", "0", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.2.0"]

    def timed():
        started = time.monotonic()
        assert subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
        return time.monotonic() - started

    cli = [sys.executable, "-m", "infrapower.cli.main", "lab", "fault", "--dir", str(lab.dir), "pdu", "pdu1b"]
    try:
        subprocess.run(cli + ["slow=0.3"], check=True, timeout=30)
        assert timed() >= 0.3
    finally:
        subprocess.run(cli + ["clear"], check=True, timeout=30)
    assert not (pdus._pdu_dir(lab, "pdu1b") / pdus.REPLY_DELAY_FILE).exists()
    assert timed() < 0.3 or timed() < 0.3  # once cleared, answers come at once (allowing one loaded moment)
