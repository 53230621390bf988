"""Every mapping of the tables that can switch outlets, simulated in the
lab and fenced by fence_snmp_pdu: detected from its sysObjectID, listed,
switched off and on, each switch verified in the rack."""

import pytest
from snmp_pdu_helpers import MAPPINGS, PDU_NAMES, mappings_topology, outlet_on, run_agent, running_lab


@pytest.fixture(scope="module")
def pdu_lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("mappings"), mappings_topology()) as running:
        yield running


def test_the_tables_cover_the_switched_pdus_the_issue_names():
    wanted = {"eaton_epdu", "eaton_pdu_nlogic", "pulizzi_switched1", "pulizzi_switched2", "aphel_revelation",
              "emerson_avocent_pdu", "hpe_epdu", "hpe_pdu3_cis", "raritan", "raritan-px2", "baytech",
              "baytech_rpc3nc", "apc_pdu", "cpqpower", "eaton_pw_nm2", "eaton_pxg_ups"}
    assert wanted <= set(MAPPINGS)


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_every_switched_mapping_is_detected_listed_and_switched(rack, name):
    pdu = PDU_NAMES[name]
    listed = run_agent(rack, pdu, "--action=list-status", "-v")
    assert listed.returncode == 0, listed.stderr
    assert f"NUT mapping {name}" in listed.stderr
    assert len([line for line in listed.stdout.splitlines() if line.endswith(",ON")]) == 4, listed.stdout
    off = run_agent(rack, pdu, "--plug=2", "--action=off")
    assert off.returncode == 0, off.stderr
    assert not outlet_on(rack, f"{pdu}:2") and outlet_on(rack, f"{pdu}:1")
    assert run_agent(rack, pdu, "--plug=2", "--action=status").returncode == 2
    assert run_agent(rack, pdu, "--plug=2", "--action=on").returncode == 0
    assert outlet_on(rack, f"{pdu}:2")
