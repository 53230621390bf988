"""The PowerChain over a daisy chain that NUT serves: NUT 2.8.0's real
snmp-ups over the lab's simulated HPE ePDU chain (two units of 8 outlets
behind one SNMP agent), one upsd device whose outlets are
device.U.outlet.N.  A PSU's parent `chain:2:3` is outlet 3 of unit 2 (the
grammar fence_snmp_pdu and fence_nut read); the live read and the
fencing plan use it, and the plan's fence_nut device switches it."""

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from processes import running_lab

from infrapower import lab as lab_module
from infrapower.chain import lab as chain_lab
from infrapower.lab import nut
from infrapower.lab.core import wait_until

CHAIN = "chain"
TOPOLOGY = {
    "servers": {
        "s1": {"role": "node", "psus": {"psu1": f"{CHAIN}:3", "psu2": f"{CHAIN}:2.3"}},
        "s2": {"role": "node", "psus": {"psu1": f"{CHAIN}:4", "psu2": f"{CHAIN}:2.4"}},
    },
    "pdus": {CHAIN: {"mapping": "hpe_epdu", "outlets": 8, "units": 2, "ups": "ups1", "switch_delay": 0.0}},
    "upses": {"ups1": {}},
}
FENCE_NUT = os.environ.get("FENCE_NUT", "/usr/sbin/fence_nut")


@pytest.fixture(scope="module")
def chainlab(tmp_path_factory):
    if not shutil.which(nut.UPSD):
        pytest.skip("needs Debian's nut-server")
    with running_lab(tmp_path_factory.mktemp("nutchain"), topology=TOPOLOGY, components=("pdus", "nut")) as running:
        yield running


@pytest.fixture(scope="module")
def config_dir(chainlab, tmp_path_factory):
    return chain_lab.write_config(chainlab, tmp_path_factory.mktemp("nutchain-config"))


def chain_cli(config_dir, *args):
    return subprocess.run(
        [sys.executable, "-m", "infrapower.cli.chain", "--config-dir", str(config_dir), *args],
        capture_output=True, text=True, timeout=60,
    )


def test_the_servers_file_names_the_units_outlets(config_dir):
    text = (config_dir / "servers.conf").read_text()
    assert f"psu.psu2 = {CHAIN}:2:3" in text and f"psu.psu1 = {CHAIN}:3" in text, text


def test_live_reads_each_units_outlet_through_upsd(chainlab, config_dir):
    healthy = chain_cli(config_dir, "--live")
    assert healthy.returncode == 1, healthy.stderr  # both feeds share the chain and ups1
    assert f"  psu2 -> {CHAIN}:2:3 [on] -> ups1 [OL] -> main" in healthy.stdout, healthy.stdout
    assert not healthy.stderr, healthy.stderr
    chainlab.rack.switch_outlet(f"{CHAIN}:2.3", False)
    try:
        def shows_off():
            out = chain_cli(config_dir, "--live").stdout
            return f"  psu2 -> {CHAIN}:2:3 [off]" in out and f"  psu1 -> {CHAIN}:3 [on]" in out
        wait_until(shows_off, time.monotonic() + 20, "chain:2:3 off in --live")
    finally:
        lab_module.reset(chainlab)


def test_a_unit_or_outlet_the_chain_lacks_is_a_problem_at_its_line(chainlab, config_dir, tmp_path):
    for name in ("ups.conf",):
        shutil.copy(config_dir / name, tmp_path / name)
    text = (config_dir / "servers.conf").read_text().replace(f"psu.psu2 = {CHAIN}:2:3", f"psu.psu2 = {CHAIN}:3:3")
    (tmp_path / "servers.conf").write_text(text)
    result = chain_cli(tmp_path, "--live")
    assert result.returncode != 0
    assert f"{CHAIN} has no outlet '3:3' (upsd at 127.0.0.1:{chainlab.port('upsd')} lists daisy-chained units 1, 2" \
        in result.stderr, result.stderr


def test_the_plan_fences_with_the_chained_plugs_and_its_device_works(chainlab, config_dir):
    result = chain_cli(config_dir, "--plan")
    assert result.returncode == 0, result.stderr
    assert f"s1: off: {CHAIN}:3 (psu1, fence_nut), {CHAIN}:2:3 (psu2, fence_nut); chain-s1" in result.stdout
    create = next(line for line in result.stdout.splitlines() if line.startswith("pcs stonith create chain-s1 "))
    assert f" plug={CHAIN}:1:3,{CHAIN}:2:3 " in create, create
    # The planned device, run as pacemaker-fenced would (the password from
    # the lab, not the key file the plan points at).
    options = [w for w in shlex.split(create)[5:] if not w.startswith(("pcmk_", "password_script="))]
    options.append(f"password={nut.FENCER_PASSWORD}")
    try:
        for action, expected, state in (("status", (0, "Status: ON"), True), ("off", (0, "Success: Powered OFF"), False),
                                        ("status", (2, "Status: OFF"), False), ("on", (0, "Success: Powered ON"), True)):
            run = subprocess.run([FENCE_NUT], input="\n".join(options + [f"action={action}"]) + "\n",
                                 capture_output=True, text=True, timeout=60)
            assert (run.returncode, run.stdout.strip()) == expected, (action, run.stdout, run.stderr)
            outlets = chainlab.rack.read()["outlets"]
            assert outlets[f"{CHAIN}:3"]["on"] is state and outlets[f"{CHAIN}:2.3"]["on"] is state, action
            assert outlets[f"{CHAIN}:4"]["on"] and outlets[f"{CHAIN}:2.4"]["on"]  # s2's feeds untouched
    finally:
        lab_module.reset(chainlab)
