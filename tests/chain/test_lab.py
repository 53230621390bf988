"""PowerChain on the running lab: live states from upsd and the BMCs, the
spec's scenario, live validation, and the fencing plan's choices."""

import subprocess
import sys
import time

import pytest

from infrapower.chain import lab as chain_lab
from infrapower.chain import assemble, live
from infrapower.lab import bmc, nut


def chain_cli(config_dir, *args):
    return subprocess.run(
        [sys.executable, "-m", "infrapower.cli.chain", "--config-dir", str(config_dir), *args],
        capture_output=True, text=True, timeout=60,
    )


def wait_for_ups_status(config_dir, ups, words, timeout=10.0):
    """upsd shows a test-driver fault at the driver's next update."""
    chain = assemble.load(config_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = live.read(chain).states.get(ups)
        if state is not None and set(words) <= set(state.text.split()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{ups} never showed {words}")


@pytest.fixture
def chain_dir(rack, tmp_path):
    return chain_lab.write_config(rack, tmp_path)


def test_the_specs_scenario(rack, chain_dir, tmp_path):
    healthy = chain_cli(chain_dir, "--live")
    assert healthy.returncode == 0, healthy.stderr
    assert "  psu1 [ok] -> pdu1:1 [on] -> ups1 [OL] -> main" in healthy.stdout
    assert "clc: redundant: 2 independent feeds" in healthy.stdout

    bmc.set_psu_fault(rack, "clc", "psu1", "failed")
    one = chain_cli(chain_dir, "--live")
    assert one.returncode == 1
    assert "clc: DEGRADED: psu1 failed; only feed is psu2 ← pdu2:1 ← ups2" in one.stdout

    nut.set_nut_fault(rack, "ups2", "low_battery")
    wait_for_ups_status(chain_dir, "ups2", ["OB", "LB"])
    svg_file = tmp_path / "live.svg"
    both = chain_cli(chain_dir, "--live", "--svg", str(svg_file))
    assert both.returncode == 1, both.stderr
    assert "  psu1 [failed] -> pdu1:1 [on] -> ups1 [OL] -> main" in both.stdout
    assert "clc: DEGRADED: psu1 failed; only feed is psu2 ← pdu2:1 ← ups2 (on battery, low)" in both.stdout
    assert "nc1: DEGRADED: psu2's feed: ups2 on battery, low; only healthy feed is psu1 ← pdu1:2 ← ups1" in both.stdout
    assert "#ffe6bf" in svg_file.read_text() and "#ffd6d6" in svg_file.read_text()  # at risk, failed

    what_if = chain_cli(chain_dir, "--live", "--fail", "pdu2")
    assert "if pdu2 fails: losing power: clc" in what_if.stdout


def wait_for_state(config_dir, link_id, text, timeout=10.0):
    """upsd shows a PDU's readings at snmp-ups's next poll."""
    chain = assemble.load(config_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = live.read(chain).states.get(link_id)
        if state is not None and state.text == text:
            return state
        time.sleep(0.1)
    raise AssertionError(f"{link_id} never showed {text!r}")


def test_a_pdu_without_input_voltage_is_down(rack, chain_dir):
    """pdu2 (Eaton) reports its inlet voltage; with ups2's output off it
    reads 0 V, through snmp-ups and upsd."""
    assert wait_for_state(chain_dir, "pdu2", "230 V").level == live.OK
    rack.rack.set_ups("ups2", False)
    assert wait_for_state(chain_dir, "pdu2", "no input").level == live.DOWN
    result = chain_cli(chain_dir, "--live")
    assert "  psu2 [no input] -> pdu2:1 [on] -> pdu2 [no input] -> ups2 [OFF] -> main" in result.stdout, result.stdout
    # pdu1 (APC) has no voltage reading in NUT's mapping: answering is all it says.
    assert live.read(assemble.load(chain_dir)).states["pdu1"].text == "answering"


def test_live_validation_names_file_and_line(rack, chain_dir):
    servers = chain_dir / "servers.conf"
    text = servers.read_text()
    servers.write_text(text.replace("psu.psu2 = pdu2:1", "psu.psu2 = pdu2:9"))
    line = next(n for n, l in enumerate(servers.read_text().splitlines(), 1) if "pdu2:9" in l)
    missing_outlet = chain_cli(chain_dir, "--live")
    assert missing_outlet.returncode == 2
    assert f"{servers}:{line}: pdu2 has no outlet '9' (upsd at 127.0.0.1:{rack.port('upsd')} lists 8)" in missing_outlet.stderr

    servers.write_text(text.replace(f"upsd = 127.0.0.1:{rack.port('upsd')}", "upsd = 127.0.0.1:1"))
    silent = chain_cli(chain_dir, "--live")
    assert silent.returncode == 2 and "Traceback" not in silent.stderr
    assert f"{chain_dir / 'ups.conf'}:" in silent.stderr and "upsd at 127.0.0.1:1 does not answer" in silent.stderr

    servers.write_text(text.replace(f"bmc = 127.0.0.1:{rack.port('bmc:nc2')}", "bmc = 127.0.0.1:9"))
    no_bmc = chain_cli(chain_dir, "--live")
    assert no_bmc.returncode == 2
    assert f"{servers}:" in no_bmc.stderr and "[nc2] BMC at 127.0.0.1:9 gave no PSU health" in no_bmc.stderr


def test_plan_on_the_default_lab_needs_a_level(rack, chain_dir):
    """pdu1 is APC: NUT cannot switch it (snmp-ups cannot write its outlet
    status), so its outlets go through fence_snmp_pdu and each server gets
    a level of two devices."""
    result = chain_cli(chain_dir, "--plan")
    assert result.returncode == 0, result.stderr
    assert "clc: off: pdu1:1 (psu1, fence_snmp_pdu), pdu2:1 (psu2, fence_nut); a pcs stonith level of chain-clc-pdu1-1, chain-clc-nut" in result.stdout
    assert f"pcs stonith create chain-clc-pdu1-1 fence_snmp_pdu ip=127.0.0.1 ipport={rack.port('snmp:pdu1')} community=private snmp_version=1 plug=1 pcmk_host_list=clc" in result.stdout
    assert "pcs stonith level add 1 clc chain-clc-pdu1-1 chain-clc-nut\n" in result.stdout + "\n"


def test_plan_refuses_a_feed_with_no_switchable_link(rack, chain_dir):
    servers = chain_dir / "servers.conf"
    servers.write_text(servers.read_text() + "[direct]\n\tpsu.psu1 = pdu2:4\n\tpsu.psu2 = ups1\n")
    result = chain_cli(chain_dir, "--plan")
    assert result.returncode == 2
    assert (
        "direct: REFUSED: psu2's feed (psu2 -> ups1 -> main) has no switchable link: "
        "cutting ups1 would also cut clc, nc1, nc2" in result.stdout
    )
    assert "level add 1 direct" not in result.stdout and "pcmk_host_list=direct" not in result.stdout
