"""infrapower scan against NUT's own nut-scanner 2.8.0 on the same peers:
the lab's PDUs and upsd relayed to the standard ports of other loopback
addresses (nut-scanner scans only those).  Same mapping names (mibs =) and
the same upsd devices; and one run tries every community where
nut-scanner takes one per run."""

import json
import os
import re
import shutil
import subprocess

import pytest
from scan_helpers import TcpRelay, UdpRelay, scan

from infrapower.lab import pdus as lab_pdus

pytestmark = pytest.mark.skipif(not shutil.which("nut-scanner") or os.geteuid() != 0,
                                reason="needs nut-scanner (nut-client) and root (ports 161, 3493)")

PDU_HOSTS = {"pdu1": "127.55.0.1", "pdu2": "127.55.0.2"}
UPSD_HOST = "127.55.0.3"


@pytest.fixture
def relayed(rack):
    relays = [UdpRelay(host, 161, rack.port(f"snmp:{name}")) for name, host in PDU_HOSTS.items()]
    relays.append(TcpRelay(UPSD_HOST, 3493, rack.port("upsd")))
    try:
        yield rack
    finally:
        for relay in relays:
            relay.close()


def sections(text):
    """{port: {key: value}} of ups.conf-style sections (quotes dropped)."""
    found, current = {}, None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            current = {}
        elif "=" in line and current is not None:
            key, value = (part.strip() for part in line.split("=", 1))
            current[key] = value.strip('"')
            if key == "port":
                found[value.strip('"')] = current
    return found


def nut_scanner(*argv):
    result = subprocess.run(["nut-scanner", "-q", *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_same_mappings_as_nut_scanner_and_every_community_in_one_run(relayed):
    ours = scan("-m", "127.55.0.0/29", "-S", "-c", "nope", "-c", lab_pdus.WRITE_COMMUNITY, "-t", "2",
                "--format", "ups.conf", "-q")
    assert ours.returncode == 0, ours.stderr
    ours = sections(ours.stdout)
    theirs = sections(nut_scanner("-S", "-s", "127.55.0.1", "-e", "127.55.0.7", "-c", lab_pdus.WRITE_COMMUNITY, "-t", "2"))
    assert set(theirs) == set(PDU_HOSTS.values()) == set(ours)
    for host in PDU_HOSTS.values():
        assert ours[host]["mibs"] == theirs[host]["mibs"]
        assert ours[host]["community"] == theirs[host]["community"] == lab_pdus.WRITE_COMMUNITY
    # nut-scanner with the first community alone finds nothing
    assert not sections(nut_scanner("-S", "-s", "127.55.0.1", "-e", "127.55.0.7", "-c", "nope", "-t", "1"))


def test_same_upsd_devices_as_nut_scanner(relayed):
    ours = scan("-s", UPSD_HOST, "-O", "--json", "-q")
    assert ours.returncode == 0, ours.stderr
    upsd, = json.loads(ours.stdout)
    theirs = nut_scanner("-O", "-s", UPSD_HOST, "-t", "2")
    their_devices = set(re.findall(r'port = "([^@"]+)@', theirs))
    assert their_devices == {device["name"] for device in upsd["devices"]}
    assert all("outlets" in device for device in upsd["devices"])  # what nut-scanner does not say
