"""infrapower scan against NUT's nut-scanner 2.8.0 on the same range, in the
same run (issue 13): a full scan — SNMP with two communities, upsd and
IPMI with a login — must take no longer than nut-scanner's SNMP-only scan
with one community.  Both at `-t 1`.

Two ranges:
- the lab's /24: 127.56.0.0/24, with the lab's two PDUs (snmpsim), its upsd
  and one BMC (ipmi_sim) relayed to the standard ports 161/3493/623 of
  127.56.0.1-4 (nut-scanner scans only those); every other address
  refuses (ICMP port-unreachable, TCP reset), which infrapower scan takes
  as "nothing there" while nut-scanner waits out its timeout;
- a silent /24 in a network namespace created here: routed to a second
  namespace that does not forward, so nothing answers and nothing
  refuses (unused addresses on a LAN): both wait one timeout, and the
  difference is start-up.

    python3 bench/bench.py bench/cases_scan.py      (as root: ports 161/623, namespaces)
"""

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import Case

RANGE = "127.56.0.0/24"
PDU_HOSTS = {"pdu1": "127.56.0.1", "pdu2": "127.56.0.2"}
UPSD_HOST, BMC_HOST, BMC = "127.56.0.3", "127.56.0.4", "clc"
SILENT_RANGE, GATEWAY, INSIDE = "10.234.0.0/24", "10.235.0.1", "10.235.0.2"
TIMEOUT = "1"


def _infrapower():
    return shutil.which("infrapower") or "/usr/bin/infrapower"


def _relays():
    """tests/scan's relays (a standard port of another loopback address to a
    lab peer's random port of 127.0.0.1)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "scan" / "scan_helpers.py"
    spec = importlib.util.spec_from_file_location("scan_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ip(*argv, check=True):
    return subprocess.run(["ip", *argv], check=check, capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def _silent_namespace():
    """A namespace whose route to SILENT_RANGE leads to another namespace
    that drops it (no forwarding, no ICMP)."""
    inside, gateway = f"bscan-in-{os.getpid()}", f"bscan-gw-{os.getpid()}"
    inside_if, gateway_if = f"bsi{os.getpid()}"[-15:], f"bsg{os.getpid()}"[-15:]
    try:
        for ns in (inside, gateway):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", inside_if, "netns", inside, "type", "veth", "peer", "name", gateway_if, "netns", gateway)
        for ns, interface, address in ((inside, inside_if, INSIDE), (gateway, gateway_if, GATEWAY)):
            _ip("-n", ns, "addr", "add", f"{address}/30", "dev", interface)
            _ip("-n", ns, "link", "set", interface, "up")
        _ip("-n", inside, "route", "add", SILENT_RANGE, "via", GATEWAY)
        subprocess.run(["ip", "netns", "exec", gateway, "sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
        yield inside
    finally:
        for ns in (inside, gateway):
            _ip("netns", "del", ns, check=False)


@contextlib.contextmanager
def session():
    from infrapower import lab as lab_module
    from infrapower.lab import bmc

    if os.geteuid() != 0:
        raise SystemExit("bench/cases_scan.py needs root (ports 161/623 of 127.56.0.x, network namespaces)")
    helpers = _relays()
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as directory:
        lab = lab_module.up(directory)  # every component: the PDUs, the BMCs, then upsd over them
        relays = []
        try:
            relays += [helpers.UdpRelay(host, 161, lab.port(f"snmp:{name}")) for name, host in PDU_HOSTS.items()]
            relays.append(helpers.TcpRelay(UPSD_HOST, 3493, lab.port("upsd")))
            relays.append(helpers.UdpRelay(BMC_HOST, 623, lab.port(f"bmc:{BMC}")))
            password = Path(directory) / "bmc.pw"
            password.write_text(bmc.ADMIN_PASSWORD + "\n")
            password.chmod(0o600)
            with _silent_namespace() as namespace:
                context = {"password": str(password), "user": bmc.ADMIN_USER, "namespace": namespace}
                _check(context)
                yield context
        finally:
            for relay in relays:
                relay.close()
            lab_module.down(directory)


def _full_scan(context, where):
    return [_infrapower(), "scan", "-S", "-O", "-I", "-m", where, "-c", "public", "-c", "private",
            "--ipmi-user", context["user"], "--ipmi-password-file", context["password"], "-t", TIMEOUT, "-q", "--json"]


def _check(context):
    """Time nothing that does not find the lab: every device, once."""
    ran = subprocess.run(_full_scan(context, RANGE), capture_output=True, text=True, timeout=60)
    found = json.loads(ran.stdout or "[]")
    kinds = sorted(r["kind"] for r in found if "error" not in r)
    bmcs = [r for r in found if r["kind"] == "ipmi"]
    if kinds != ["ipmi", "nut", "snmp", "snmp"] or not all(r.get("outlets") for r in found if r["kind"] == "snmp") \
            or not (bmcs and len(bmcs[0].get("psus", [])) == 2):
        raise SystemExit(f"bench/cases_scan.py: the scan does not find the lab on {RANGE}: {ran.stdout[:800]} "
                         f"{ran.stderr[-400:]}")


def cases(context=None):
    inside = ["ip", "netns", "exec", context["namespace"]]
    return [
        Case(
            f"scan {RANGE}: SNMP 2 communities + upsd + IPMI login vs nut-scanner -S (1 community), -t 1",
            ours=_full_scan(context, RANGE),
            peer=["nut-scanner", "-q", "-S", "-m", RANGE, "-c", "private", "-t", TIMEOUT],
            target=1.0,
            runs=8,
            warmup=1,
            timeout=60.0,
        ),
        Case(
            f"scan of a silent /24 (namespace, no answer, no ICMP): every bus vs nut-scanner -S, -t 1",
            ours=inside + _full_scan(context, SILENT_RANGE),
            peer=inside + ["nut-scanner", "-q", "-S", "-m", SILENT_RANGE, "-c", "private", "-t", TIMEOUT],
            target=1.0,
            runs=8,
            warmup=1,
            timeout=60.0,
        ),
    ]
