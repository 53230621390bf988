"""infrapower scan against net-snmp's snmpd (an independent SNMP agent) on
127.0.0.1: a UPS NUT maps without outlets (CyberPower's sysObjectID and
model OID, served with snmpd's `override`) is reported as such, and an
agent no mapping knows (a plain Linux snmpd) shows its sysObjectID."""

import json
import shutil
import socket
import subprocess
import time

import pytest
from scan_helpers import scan

UPS_COMMUNITY = "ups-ro"  # each agent its own community: every one given is tried on every host
UPS_CONF = """sysObjectID .1.3.6.1.4.1.3808.1.1.1
override .1.3.6.1.4.1.3808.1.1.1.1.1.1.0 octet_str "OR1500LCDRM1U"
override .1.3.6.1.4.1.3808.1.1.1.1.2.3.0 octet_str "CXXKV2000123"
"""


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """{"ups": port, "linux": port}: two snmpd processes, stopped after."""
    if not shutil.which("snmpd") or not shutil.which("snmpget"):
        pytest.skip("needs net-snmp's snmpd and snmpget")
    processes, ports = [], {}
    try:
        for name, community, extra in (("ups", UPS_COMMUNITY, UPS_CONF), ("linux", "public", "")):
            directory = tmp_path_factory.mktemp(f"snmpd-{name}")
            port = _free_udp_port()
            (directory / "snmpd.conf").write_text(f"agentAddress udp:127.0.0.1:{port}\n"
                                                  f"rocommunity {community} 127.0.0.1\n{extra}")
            processes.append(subprocess.Popen(
                ["snmpd", "-f", "-C", "-c", str(directory / "snmpd.conf"), "-Lf", str(directory / "log"),
                 f"--persistentDir={directory}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
            ports[name] = port
        deadline = time.monotonic() + 30
        for name, port in ports.items():
            community = UPS_COMMUNITY if name == "ups" else "public"
            while subprocess.run(["snmpget", "-v1", "-c", community, "-t", "0.3", "-r", "0", f"127.0.0.1:{port}",
                                  ".1.3.6.1.2.1.1.2.0"], capture_output=True).returncode != 0:
                assert time.monotonic() < deadline, f"snmpd on udp {port} did not start"
                time.sleep(0.1)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def test_a_ups_without_outlets_and_an_unknown_agent(agents):
    communities = ("-c", "public", "-c", UPS_COMMUNITY)
    result = scan("-S", "-s", "127.0.0.1", "--snmp-port", f"{agents['ups']},{agents['linux']}", *communities, "-t", "1",
                  "--json", "-q")
    assert result.returncode == 0, result.stderr
    found = {r["port"]: r for r in json.loads(result.stdout)}
    ups, linux = found[agents["ups"]], found[agents["linux"]]
    assert (ups["mapping"], ups["conf_mapping"], ups["type"], ups["outlets"]) == ("cyberpower", "cyberpower", "ups", [])
    assert ups["model"] == "OR1500LCDRM1U" and ups["note"] == "the cyberpower mapping has no outlets"
    assert not ups["switchable"]
    assert linux["mapping"] is None and linux["sysoid"].startswith(".1.3.6.1.4.1.8072.")
    assert (ups["community"], linux["community"]) == (UPS_COMMUNITY, "public")
    table = scan("-S", "-s", "127.0.0.1", "--snmp-port", f"{agents['ups']},{agents['linux']}", *communities, "-t", "1",
                 "-q")
    assert "the cyberpower mapping has no outlets" in table.stdout
    assert f"sysObjectID {linux['sysoid']}: unknown PDU" in table.stdout
    # a UPS is no fence device: snmp-ups gets its section, pcs no command
    conf = scan("-S", "-s", "127.0.0.1", "--snmp-port", str(agents["ups"]), *communities, "-t", "1",
                "--format", "ups.conf", "-q")
    assert 'mibs = "cyberpower"' in conf.stdout and f'community = "{UPS_COMMUNITY}"' in conf.stdout
    pcs = scan("-S", "-s", "127.0.0.1", "--snmp-port", str(agents["ups"]), *communities, "-t", "1", "--format", "pcs",
               "-q")
    assert "pcs stonith create" not in pcs.stdout
