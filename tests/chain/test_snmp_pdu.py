"""SNMP PDUs no upsd serves, declared in the servers file (`snmp =`): the
tree, their outlets read live with fence_snmp_pdu's own code, the analysis
reacting to a cut outlet, live validation, and fence_snmp_pdu devices in
the plan.  The lab's upsd still serves pdu1 and pdu2; the chain's copy of
ups.conf drops them, so only SNMP can tell their states."""

import re
import shlex
import subprocess
import sys

import pytest

from infrapower.chain import lab as chain_lab
from infrapower.chain import assemble, live, model
from infrapower.lab import pdus



def chain_cli(config_dir, *args):
    return subprocess.run(
        [sys.executable, "-m", "infrapower.cli.chain", "--config-dir", str(config_dir), *args],
        capture_output=True, text=True, timeout=60,
    )


def drop_section(text, name):
    """ups.conf without [name] (up to the next section)."""
    return re.sub(rf"(?ms)^\[{re.escape(name)}\]\n.*?(?=^\[|\Z)", "", text)


def snmp_only(rack, directory, *names, mib=None):
    """The lab's chain with `names` described as SNMP PDUs of the servers
    file instead of NUT devices; returns the directory."""
    chain_lab.write_config(rack, directory)
    ups_conf = directory / "ups.conf"
    text = ups_conf.read_text()
    servers = directory / "servers.conf"
    extra = ""
    topology = rack.rack.topology()
    for name in names:
        text = drop_section(text, name)
        extra += (
            f"[{name}]\n"
            f"\tdesc = \"SNMP only\"\n"
            f"\tsnmp = 127.0.0.1:{rack.port(f'snmp:{name}')}\n"
            f"\tcommunity = private\n"
            + (f"\tmib = {mib[name]}\n" if mib and name in mib else "")
            + f"\tparent = {topology['pdus'][name]['ups']}\n"
        )
    ups_conf.write_text(text)
    servers.write_text(servers.read_text() + extra)
    return directory


@pytest.fixture
def snmp_dir(rack, tmp_path):
    return snmp_only(rack, tmp_path, "pdu1")


def test_the_tree_holds_an_snmp_only_pdu(rack, snmp_dir):
    chain = assemble.load(snmp_dir)
    assert not chain.problems, chain.problems
    assert "pdu1" not in chain.ups_conf.sections and chain.links["pdu1"].snmp is not None
    assert chain.path("clc:psu1") == ["clc:psu1", "pdu1:1", "pdu1", "ups1", "main"]

    tree = chain_cli(snmp_dir)
    assert tree.returncode == 0, tree.stderr
    assert "  psu1 -> pdu1:1 -> ups1 -> main" in tree.stdout
    long = chain_cli(snmp_dir, "-l")
    assert f'    -> pdu1  SNMP PDU, no upsd  SNMP 127.0.0.1:{rack.port("snmp:pdu1")}  "SNMP only"' in long.stdout


def test_live_reads_the_snmp_pdu_and_the_analysis_reacts_to_a_cut(rack, snmp_dir):
    healthy = chain_cli(snmp_dir, "--live")
    assert healthy.returncode == 0, healthy.stderr
    assert "  psu1 [ok] -> pdu1:1 [on] -> ups1 [OL] -> main" in healthy.stdout
    assert "nc1: redundant" in healthy.stdout

    view = live.read(assemble.load(snmp_dir))
    assert view.snmp_mappings["pdu1"] == "apc_pdu"  # detected, as fence_snmp_pdu does
    assert view.snmp_plugs["pdu1:2"] == "2" and "pdu1" not in view.variables

    rack.rack.switch_outlet("pdu1:2", False)
    cut = chain_cli(snmp_dir, "--live")
    assert cut.returncode == 1, cut.stderr
    assert "  psu1 [no input] -> pdu1:2 [off] -> ups1 [OL] -> main" in cut.stdout, cut.stdout
    assert "nc1: DEGRADED: psu1's feed: pdu1:2 off; only feed is psu2 ← pdu2:2 ← ups2" in cut.stdout
    assert "clc: redundant" in cut.stdout and "nc2: redundant" in cut.stdout

    what_if = chain_cli(snmp_dir, "--live", "--fail", "pdu2")
    assert "if pdu2 fails: losing power: nc1\n" in what_if.stdout  # nc1 already lost pdu1:2


def test_an_snmp_pdus_own_state_is_its_inlet_voltage(rack, tmp_path):
    config = snmp_only(rack, tmp_path, "pdu2")
    assert live.read(assemble.load(config)).states["pdu2"].text == "230 V"
    rack.rack.set_ups("ups2", False)
    state = live.read(assemble.load(config)).states["pdu2"]
    assert (state.level, state.text) == (live.DOWN, "no input")
    result = chain_cli(config, "--live")
    assert "  psu2 [no input] -> pdu2:1 [on] -> pdu2 [no input] -> ups2 [OFF] -> main" in result.stdout, result.stdout


def test_live_validation_of_an_snmp_pdu(rack, snmp_dir):
    servers = snmp_dir / "servers.conf"
    text = servers.read_text()
    servers.write_text(text.replace("psu.psu1 = pdu1:3", "psu.psu1 = pdu1:9"))
    line = next(n for n, l in enumerate(servers.read_text().splitlines(), 1) if "pdu1:9" in l)
    missing = chain_cli(snmp_dir, "--live")
    assert missing.returncode == 2
    assert f"{servers}:{line}: pdu1 has no readable outlet '9' (SNMP PDU at 127.0.0.1:{rack.port('snmp:pdu1')}, apc_pdu:" \
        in missing.stderr, missing.stderr

    servers.write_text(text)
    snmp_line = next(n for n, l in enumerate(text.splitlines(), 1) if l.strip().startswith("snmp ="))
    pdus.set_silent(rack, "pdu1", True)
    silent = chain_cli(snmp_dir, "--live", "--timeout", "0.5")
    assert silent.returncode == 2 and "Traceback" not in silent.stderr
    assert f"{servers}:{snmp_line}: [pdu1] SNMP PDU at 127.0.0.1:{rack.port('snmp:pdu1')} gave no outlet states" \
        in silent.stderr, silent.stderr


def test_the_plan_switches_an_snmp_only_pdu_with_fence_snmp_pdu(rack, tmp_path):
    both = snmp_only(rack, tmp_path, "pdu1", "pdu2", mib={"pdu2": "eaton_epdu"})
    result = chain_cli(both, "--plan")
    assert result.returncode == 0, result.stderr
    assert ("clc: off: pdu1:1 (psu1, fence_snmp_pdu), pdu2:1 (psu2, fence_snmp_pdu); "
            "a pcs stonith level of chain-clc-pdu1-1, chain-clc-pdu2-1") in result.stdout
    assert (f"pcs stonith create chain-clc-pdu1-1 fence_snmp_pdu ip=127.0.0.1 ipport={rack.port('snmp:pdu1')} "
            "community=private snmp_version=1 plug=1 pcmk_host_list=clc") in result.stdout
    assert (f"pcs stonith create chain-nc2-pdu2-3 fence_snmp_pdu ip=127.0.0.1 ipport={rack.port('snmp:pdu2')} "
            "community=private snmp_version=1 mib=eaton_epdu plug=3 pcmk_host_list=nc2") in result.stdout
    assert "pcs stonith level add 1 nc1 chain-nc1-pdu1-2 chain-nc1-pdu2-2\n" in result.stdout + "\n"


def run_planned_device(line, action="status"):
    """Run the agent a `pcs stonith create` line names with its options
    on stdin, as pacemaker-fenced would."""
    words = shlex.split(line)
    options = [word for word in words[5:] if not word.startswith("pcmk_")]
    return subprocess.run([f"/usr/sbin/{words[4]}"], input="\n".join(options + [f"action={action}"]) + "\n",
                          capture_output=True, text=True, timeout=30)


def v3_settings(user, priv_script=None):
    """snmp-ups's SNMPv3 settings for a lab user (fence agents' protocol
    names written snmp-ups's way: SHA-256 as SHA256)."""
    lines = ["snmp_version = v3", "secLevel = authPriv", f"secName = {user['user']}",
             f"authProtocol = {user['auth_proto'].replace('-', '')}", f"authPassword = {user['auth_key']}",
             f"privProtocol = {user['priv_proto'].replace('-', '')}"]
    lines.append(f"snmp_priv_passwd_script = {priv_script}" if priv_script else f"privPassword = {user['priv_key']}")
    return "".join(f"\t{line}\n" for line in lines)


def test_an_snmp_v3_pdu_read_live_and_planned_with_its_key_script(rack, tmp_path):
    user = pdus.V3_USERS[3]  # SHA-256 / AES-256
    script = tmp_path / "priv-key"
    script.write_text(f"#!/bin/sh\necho {user['priv_key']}\n")
    script.chmod(0o700)
    config = snmp_only(rack, tmp_path, "pdu1")
    servers = config / "servers.conf"
    servers.write_text(servers.read_text().replace("\tcommunity = private\n", v3_settings(user, script)))

    healthy = chain_cli(config, "--live")
    assert healthy.returncode == 0, healthy.stderr
    assert "  psu1 [ok] -> pdu1:1 [on] -> ups1 [OL] -> main" in healthy.stdout

    keys = tmp_path / "keys"
    result = chain_cli(config, "--plan", "--secrets-dir", str(keys), "--write-secrets")
    assert result.returncode == 0, result.stderr
    line = next(c for c in result.stdout.splitlines() if c.startswith("pcs stonith create chain-clc-pdu1-1 "))
    key_file = keys / "chain-clc-pdu1-1.password"
    assert (f"fence_snmp_pdu ip=127.0.0.1 ipport={rack.port('snmp:pdu1')} snmp_version=3 username={user['user']} "
            f"snmp_sec_level=authPriv snmp_auth_prot=SHA-256 'password_script=cat {key_file}' snmp_priv_prot=AES-256 "
            f"snmp_priv_passwd_script={script} plug=1 pcmk_host_list=clc") in line
    # Keys never in the plan's output (a terminal, pcs's argv, the CIB).
    assert user["priv_key"] not in result.stdout and user["auth_key"] not in result.stdout
    listed = next(c for c in result.stdout.splitlines() if c.startswith("# key files (written), mode 0600: "))
    assert str(key_file) in listed.split()
    assert key_file.read_text() == user["auth_key"] + "\n" and key_file.stat().st_mode & 0o777 == 0o600
    status = run_planned_device(line)
    assert status.returncode == 0 and "Status: ON" in status.stdout, status.stdout + status.stderr

    servers.write_text(servers.read_text().replace(user["auth_key"], "wrong-key"))
    wrong = chain_cli(config, "--live", "--timeout", "1")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "[pdu1] SNMP PDU at" in wrong.stderr and "wrong digest" in wrong.stderr, wrong.stderr


def test_snmp_ups_v3_settings_are_carried_into_the_plan(rack, tmp_path):
    """pdu1 stays a NUT device; the chain's copy of ups.conf says snmp-ups
    reaches it with SNMPv3, so the plan's fence_snmp_pdu device does too."""
    config = chain_lab.write_config(rack, tmp_path)
    ups_conf = config / "ups.conf"
    text = ups_conf.read_text()
    section = re.search(r"(?ms)^\[pdu1\]\n.*?(?=^\[|\Z)", text).group(0)
    ups_conf.write_text(text.replace(section, section.replace("\tcommunity = private\n", v3_settings(pdus.V3_USER))))

    result = chain_cli(config, "--plan", "--secrets-dir", str(tmp_path / "keys"), "--write-secrets")
    assert result.returncode == 0, result.stderr
    assert pdus.V3_USER["auth_key"] not in result.stdout and pdus.V3_USER["priv_key"] not in result.stdout
    line = next(c for c in result.stdout.splitlines() if c.startswith("pcs stonith create chain-nc2-pdu1-3 "))
    assert "snmp_version=3 username=fencer snmp_sec_level=authPriv snmp_auth_prot=SHA " in line
    assert f"'snmp_priv_passwd_script=cat {tmp_path}/keys/chain-nc2-pdu1-3.snmp_priv_passwd'" in line
    assert "community=" not in line and "plug=3 " in line
    status = run_planned_device(line)
    assert status.returncode == 0 and "Status: ON" in status.stdout, status.stdout + status.stderr


OFFLINE_UPS_CONF = """\
[ups1]
\tdriver = usbhid-ups
\tport = auto
\tparent = main
[ups2]
\tdriver = usbhid-ups
\tport = auto
\tparent = pdu3:8
"""

OFFLINE_SERVERS = """\
snmp_community = global
[clc]
\tpsu.psu1 = pdu3:1
\tpsu.psu2 = ups2
[pdu3]
\tsnmp = 10.0.0.7:1161
\tmib = apc_pdu
\tparent = ups1
"""


def test_an_snmp_pdu_from_files_alone():
    from infrapower.chain.upsconf import UpsConf

    chain = assemble.build(UpsConf(OFFLINE_UPS_CONF, "ups.conf"), UpsConf(OFFLINE_SERVERS, "servers.conf"))
    assert not chain.problems, chain.problems
    assert chain.links["pdu3"].snmp == model.SnmpPdu(
        "10.0.0.7", 1161, (("community", "global"), ("snmp_version", "1")), "apc_pdu")
    assert chain.links["pdu3:1"].upsd is None
    # a UPS may hang from an SNMP PDU's outlet: both feeds pass through pdu3
    assert chain.path("clc:psu2") == ["clc:psu2", "ups2", "pdu3:8", "pdu3", "ups1", "main"]


V3 = "\tsnmp_version = v3\n\tsecLevel = authPriv\n\tsecName = fencer\n\tauthPassword = a\n\tprivPassword = p\n"


def test_snmp_v3_settings_as_snmp_ups_writes_them():
    from infrapower.chain.upsconf import UpsConf

    servers = OFFLINE_SERVERS + V3 + "\tauthProtocol = sha256\n\tprivProtocol = AES256\n"
    chain = assemble.build(UpsConf(OFFLINE_UPS_CONF, "ups.conf"), UpsConf(servers, "servers.conf"))
    assert not chain.problems, chain.problems
    assert dict(chain.links["pdu3"].snmp.options) == {
        "snmp_version": "3", "username": "fencer", "snmp_sec_level": "authPriv", "snmp_auth_prot": "SHA-256",
        "password": "a", "snmp_priv_prot": "AES-256", "snmp_priv_passwd": "p"}
    # A key script replaces the key: plans carry the script, never the key.
    scripted = servers + "\tsnmp_priv_passwd_script = /usr/local/sbin/pdu3-priv\n"
    chain = assemble.build(UpsConf(OFFLINE_UPS_CONF, "ups.conf"), UpsConf(scripted, "servers.conf"))
    options = dict(chain.links["pdu3"].snmp.options)
    assert options["snmp_priv_passwd_script"] == "/usr/local/sbin/pdu3-priv" and "snmp_priv_passwd" not in options


@pytest.mark.parametrize(
    "servers, problem",
    [
        (OFFLINE_SERVERS.replace("\tparent = ups1\n", ""),
         "servers.conf:5: [pdu3]: an SNMP PDU needs `parent =` (what feeds its inlet: a UPS, an outlet, or main)"),
        (OFFLINE_SERVERS.replace("parent = ups1", "parent = ups9"),
         "servers.conf:8: [pdu3]: parent 'ups9' is no device of ups.conf (devices: ups1, ups2; SNMP PDUs of the servers file: pdu3)"),
        (OFFLINE_SERVERS.replace("10.0.0.7:1161", "10.0.0.7:snmp"),
         "servers.conf:6: [pdu3] snmp: port 'snmp' is not a number from 1 to 65535 (write HOST[:PORT])"),
        (OFFLINE_SERVERS.replace("mib = apc_pdu", "mib = nosuch"), "servers.conf:7: [pdu3] mib: mib nosuch: no such mapping"),
        (OFFLINE_SERVERS + "\tsnmp_version = 4\n", "servers.conf:9: [pdu3] snmp_version '4': use v1, v2c or v3"),
        (OFFLINE_SERVERS + "\tsnmp_version = v3\n", "servers.conf:9: [pdu3] SNMP v3 needs secName (the user)"),
        (OFFLINE_SERVERS + V3 + "\tauthProtocol = SHA1024\n",
         "servers.conf:14: [pdu3] authProtocol 'SHA1024': use one of MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512"),
        (OFFLINE_SERVERS + V3.replace("\tprivPassword = p\n", ""),
         "servers.conf:10: [pdu3] secLevel authPriv needs privPassword (or snmp_priv_passwd_script)"),
        (OFFLINE_SERVERS + "\tpsu.psu1 = ups1\n", "servers.conf:9: [pdu3]: unknown setting 'psu.psu1' for an SNMP PDU"),
        (OFFLINE_SERVERS + "[ups1]\n\tsnmp = 10.0.0.8\n\tparent = main\n",
         "servers.conf:9: [ups1]: an SNMP PDU may not share its name with a NUT device of ups.conf"),
    ],
)
def test_snmp_pdu_problems_name_file_and_line(servers, problem):
    from infrapower.chain.upsconf import UpsConf

    chain = assemble.build(UpsConf(OFFLINE_UPS_CONF, "ups.conf"), UpsConf(servers, "servers.conf"))
    assert any(str(p).startswith(problem) for p in chain.problems), [str(p) for p in chain.problems]
