"""fence_nut's metadata as Pacemaker reads it: equal to the reviewed copy,
valid against fence-agents' RelaxNG schema, a man page that renders, and
fence-agents' delay rule.  The checks are tests/agentcheck.py's."""

from pathlib import Path

import agentcheck
from nut_helpers import AGENT

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "metadata" / "fence_nut.xml"


def test_metadata_is_the_golden_copy():
    agentcheck.check_golden_metadata(AGENT, GOLDEN)


def test_metadata_validates_against_the_relaxng_schema():
    agentcheck.validate_rng(agentcheck.metadata_xml(AGENT))


def test_man_page_is_built_from_the_golden_metadata_and_renders(tmp_path):
    built = agentcheck.build_manpage(GOLDEN, tmp_path / "fence_nut.8")
    assert built.read_text() == (ROOT / "man" / "fence_nut.8").read_text(), "man/fence_nut.8 is stale: run `make man`"


def test_delay_holds_back_all_network_io():
    def options(host, port):
        return {"ip": host, "ipport": port, "username": "fencer", "password": "fence me now", "plug": "tpdu:1"}

    agentcheck.check_delay(AGENT, options, protocol="tcp", delay=2)
