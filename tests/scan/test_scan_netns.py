"""infrapower scan in network namespaces these tests create (never on the
host's own network):

- mDNS (-A): a server namespace runs NUT's own upsd over dummy-ups devices,
  listening on its veth address, published by `infrapower publish`
  (python-zeroconf responder, the pack's own publisher, #14); the scan runs
  in the client namespace across the veth pair (the loopback interface
  has no MULTICAST flag) and lists that upsd with its devices, kind mdns.
- A silent network: a /24 routed to the server namespace, which does not
  forward (ip_forward 0) and so drops every packet without an ICMP error:
  no SNMP, RMCP or TCP answer, no refusal, as unused addresses on a LAN.
  The full scan ends in about one timeout."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from processes import run, wait_for
from processes import stop_process as stop
from scan_helpers import PACKAGE_ROOT

SERVER, CLIENT, PREFIX = "10.232.7.1", "10.232.7.2", 24
SILENT_NET = "10.233.0.0/24"  # routed to the server namespace, which drops it
UPSD, DUMMY_UPS = "/lib/nut/upsd", "/lib/nut/dummy-ups"
DEVICES = {"ups1": "ups", "pdu1": "pdu"}




@pytest.fixture(scope="module")
def namespaces():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", UPSD, DUMMY_UPS, "upsc"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool}")
    suffix = str(os.getpid())
    server, client = f"iscan-s-{suffix}", f"iscan-c-{suffix}"
    server_if, client_if = f"iscs{suffix}"[-15:], f"iscc{suffix}"[-15:]
    try:
        for ns in (server, client):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", server_if, "netns", server, "type", "veth", "peer", "name", client_if, "netns", client)
        for ns, interface, address in ((server, server_if, SERVER), (client, client_if, CLIENT)):
            run("ip", "-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", interface)
            run("ip", "-n", ns, "link", "set", interface, "up")
        run("ip", "-n", client, "route", "add", SILENT_NET, "via", SERVER)
        run("ip", "netns", "exec", server, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        yield server, client
    finally:
        for ns in (server, client):
            run("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def published(namespaces, tmp_path_factory):
    """upsd with two dummy-ups devices in the server namespace, published
    by `infrapower publish` with python-zeroconf."""
    from infrapower.scan import mdns

    if not mdns.available():
        pytest.skip("needs python-zeroconf")
    server, _ = namespaces
    directory = tmp_path_factory.mktemp("scan-mdns")
    conf, state = directory / "conf", directory / "state"
    conf.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    (conf / "upsd.conf").write_text(f"LISTEN {SERVER} 3493\n")
    (conf / "upsd.users").write_text("")
    (conf / "nut.conf").write_text("MODE=netserver\n")
    sections = ""
    for name, kind in DEVICES.items():
        (conf / f"{name}.dev").write_text(f"device.type: {kind}\nups.status: OL\ndevice.mfr: Lab\n"
                                          + ("outlet.count: 4\n" if kind == "pdu" else ""))
        sections += f"[{name}]\n  driver = dummy-ups\n  port = {name}.dev\n  desc = \"{kind} {name}\"\n"
    (conf / "ups.conf").write_text(sections)
    env = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state), NUT_ALTPIDPATH=str(state),
               PYTHONPATH=PACKAGE_ROOT)
    processes = []

    def spawn(name, *argv):
        log = open(directory / f"{name}.log", "ab")
        processes.append(subprocess.Popen(["ip", "netns", "exec", server, *argv], env=env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=log))
        return processes[-1]

    try:
        for name in DEVICES:
            spawn(f"dummy-ups-{name}", DUMMY_UPS, "-a", name, "-u", "root", "-F")
        wait_for(lambda: all((state / f"dummy-ups-{name}").exists() for name in DEVICES), 20, "dummy-ups sockets")
        spawn("upsd", UPSD, "-F", "-u", "root")

        def serving():
            listed = run("ip", "netns", "exec", server, "upsc", "-l", f"{SERVER}:3493", check=False)
            return set(listed.stdout.split()) == set(DEVICES)

        wait_for(serving, 20, "upsd serving the devices")
        publisher = spawn("publish", sys.executable, "-m", "infrapower.cli.main", "publish", "--upsd",
                          f"{SERVER}:3493", "--publisher", "zeroconf", "--name", "scan-test-ups", "--interval", "1")
        wait_for(lambda: publisher.poll() is not None or "publish" in (directory / "publish.log").read_text().lower(),
                 30, "infrapower publish to start")
        assert publisher.poll() is None, (directory / "publish.log").read_text()
        yield directory
    finally:
        for process in reversed(processes):
            stop(process)


def scan_in(ns, *argv, timeout=60):
    environment = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "infrapower.cli.main", "scan", *argv],
                          capture_output=True, text=True, env=environment, timeout=timeout)


def test_mdns_lists_the_published_upsd_with_its_devices(namespaces, published):
    _, client = namespaces

    def browsed():
        result = scan_in(client, "-A", "-t", "2", "--json", "-q")
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        found = json.loads(result.stdout)
        return found if found and "devices" in found[0] else None

    found = wait_for(browsed, 30, f"the scan to browse the upsd ({(published / 'publish.log').read_text()[-500:]})")
    server, = found
    assert server["kind"] == "mdns" and server["address"] == f"{SERVER}:3493"
    assert set(server["services"]) == {"_nut._tcp.local", "_upsd._tcp.local"}
    assert "scan-test-ups" in server["names"]
    devices = {d["name"]: d for d in server["devices"]}
    assert set(devices) == set(DEVICES) and devices["pdu1"]["type"] == "pdu" and devices["ups1"]["type"] == "ups"
    assert server["tls"] == "no"


def test_mdns_beside_a_range_scan_and_its_outputs(namespaces, published):
    _, client = namespaces
    table = scan_in(client, "-A", "-O", "-m", f"{SERVER}/32", "-t", "2")
    assert table.returncode == 0, table.stderr
    assert f"mDNS  {SERVER}:3493" in table.stdout and f"upsd  {SERVER}:3493" in table.stdout
    assert "published as 'scan-test-ups'" in table.stdout and "pdu1: pdu, 4 outlets" in table.stdout
    assert "scanned 1 host(s) and mDNS" in table.stderr
    conf = scan_in(client, "-A", "-O", "-m", f"{SERVER}/32", "-t", "2", "--format", "ups.conf", "-q")
    # one upsd, seen twice (range and mDNS): its devices once each
    assert conf.stdout.count(f'port = "pdu1@{SERVER}"') == 1 and conf.stdout.count(f'port = "ups1@{SERVER}"') == 1


def test_a_silent_network_ends_in_about_one_timeout(namespaces):
    """Every bus on a /24 where nothing answers and nothing refuses: the
    SNMP GETs, ASF pings and upsd connects all wait in one round."""
    _, client = namespaces
    started = time.monotonic()
    result = scan_in(client, "-S", "-O", "-I", "-m", SILENT_NET, "-c", "public", "-c", "private", "-t", "1.5",
                     "--json")
    elapsed = time.monotonic() - started
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stderr
    assert "scanned 254 host(s)" in result.stderr
    assert 1.5 <= elapsed < 1.5 + 2.5  # one timeout, plus the interpreter under a loaded CI machine
