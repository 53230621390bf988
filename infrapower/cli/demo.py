"""`make demo`: the lab up, the rack shown, a dual-fed node fenced with
each of the pack's agents that is installed, its feeds seen going off and
back on in the lab's power log; then (as root, unless
INFRAPOWER_DEMO_CLUSTER=0) the spec's scenario in a 3-node cluster: clc's
PSU1 fails, UPS2 loses its mains, clc turns red and its resource leaves
before the battery runs out, the cluster fences clc, clc rejoins; the lab
down.

Every agent is run as an admin would run it by hand: the installed
script, options on stdin (no secrets in argv).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from infrapower import lab as lab_module
from infrapower.lab.core import LabError, wait_until
from infrapower.lab import pdus
from infrapower.lab.rack import next_due

SBIN = "/usr/sbin"


def _agent(name):
    path = os.path.join(SBIN, name)
    return path if os.access(path, os.X_OK) else None


def _run_agent(path, options):
    stdin = "".join(f"{key}={value}\n" for key, value in options.items())
    started = time.monotonic()
    result = subprocess.run([path], input=stdin, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    output = (result.stdout + result.stderr).strip().replace("\n", " | ")
    print(f"    $ {os.path.basename(path)} (action={options['action']}) -> exit {result.returncode} in {elapsed:.2f} s: {output}")
    return result.returncode


def _show_log(lab, since, server):
    """The transitions of one server and its feeds since `since`."""
    topology = lab.rack.topology()
    outlets = set(topology["servers"][server]["psus"].values())
    for event in lab.rack.power_log():
        if event["t"] < since:
            continue
        if event["name"] in outlets or event["name"] == server or event["name"].startswith(server + ":"):
            offset = event["t"] - since
            print(f"      +{offset:6.3f} s  {event['kind']:<6} {event['name']:<7} {event['state']}")


def _settled(lab):
    return next_due(lab.rack.read()) == float("inf")


def _outlet_number(outlet):
    return outlet.split(":", 1)[1]


def _fence_plans(lab, server):
    """(title, [(agent path, options)]) for every installed agent that can
    fence `server` in this lab."""
    topology = lab.rack.topology()
    feeds = topology["servers"][server]["psus"]
    plans = []

    fence_snmp_pdu = _agent("fence_snmp_pdu")
    fence_nut = _agent("fence_nut")

    def snmp_step(outlet, action):
        pdu, number = outlet.split(":", 1)
        options = {"ip": "127.0.0.1", "ipport": lab.port(f"snmp:{pdu}"), "community": pdus.WRITE_COMMUNITY}
        return fence_snmp_pdu, dict(options, plug=number, action=action)

    def nut_step(outlet, action):
        from infrapower.lab import nut

        options = {"ip": "127.0.0.1", "ipport": lab.port("upsd"), "username": nut.FENCER_USER}
        return fence_nut, dict(options, password=nut.FENCER_PASSWORD, plug=outlet, action=action)

    if fence_snmp_pdu:
        steps = [snmp_step(outlet, action) for action in ("off", "on") for outlet in feeds.values()]
        plans.append(("fence_snmp_pdu: every feed off, then every feed on (one pcs fencing level)", steps))

    if fence_snmp_pdu and fence_nut and "upsd" in lab.ports():
        # What `infrapower chain --plan` emits for this rack: NUT cannot
        # switch the APC PDU's outlets, so that feed goes over SNMP.
        via_snmp, via_nut = feeds["psu1"], feeds["psu2"]
        steps = [snmp_step(via_snmp, "off"), nut_step(via_nut, "off"), snmp_step(via_snmp, "on"), nut_step(via_nut, "on")]
        plans.append((f"fence_snmp_pdu ({via_snmp}) + fence_nut ({via_nut}) in one level, as the PowerChain plan says", steps))

    if fence_nut and "upsd" in lab.ports() and f"bmc:{server}" in lab.ports():
        # The ipmi-psu NUT driver serves each PSU as a device without
        # outlets: fence_nut switches its whole load, the server's chassis.
        plans.append((f"fence_nut through the PSU device {server}-psu1 (ipmi-psu: the chassis, via the BMC)",
                      [nut_step(f"{server}-psu1", "reboot")]))

    fence_ipmi_psu = _agent("fence_ipmi_psu")
    if fence_ipmi_psu and f"bmc:{server}" in lab.ports():
        from infrapower.lab import bmc

        options = {
            "ip": "127.0.0.1",
            "ipport": lab.port(f"bmc:{server}"),
            "username": bmc.ADMIN_USER,
            "password": bmc.ADMIN_PASSWORD,
            "cipher": bmc.CIPHER_SUITE,
            "action": "reboot",
        }
        plans.append(("fence_ipmi_psu: through the server's BMC", [(fence_ipmi_psu, options)]))

    fence_apc_snmp = _agent("fence_apc_snmp")
    if fence_apc_snmp:
        outlet = feeds["psu1"]
        pdu = outlet.split(":", 1)[0]
        options = {
            "ip": "127.0.0.1",
            "ipport": lab.port(f"snmp:{pdu}"),
            "community": pdus.WRITE_COMMUNITY,
            "plug": _outlet_number(outlet),
            "action": "reboot",
        }
        plans.append(("fence_apc_snmp (fence-agents' own, the peer): one feed only, the node stays up", [(fence_apc_snmp, options)]))
    return plans


def _cluster_scenario(lab):
    """The spec's scenario in the lab's cluster; returns 1 on failure."""
    if os.geteuid() != 0 or os.environ.get("INFRAPOWER_DEMO_CLUSTER") == "0":
        print("\n== the cluster scenario: skipped (needs root; INFRAPOWER_DEMO_CLUSTER=0 skips it)")
        return 0
    from infrapower.cli import lab_cluster
    from infrapower.lab import cluster
    from infrapower.lab.cluster import scenario

    print("\n== a 3-node cluster (clc, nc1, nc2) beside the rack, fenced by the plan (infrapower lab up --cluster)")
    try:
        seconds, commands = lab_cluster.start(lab)  # what `lab up --cluster` runs once the rack is up
        print(f"   joined with a DC in {seconds:.1f} s")
        print("   " + "\n   ".join(commands))
        print("\n== the spec's scenario: clc's PSU1 fails, then the mains behind UPS2")
        figures = scenario.run(lab, say=lambda text: print("   " + text))
        print(f"   margin: the resource left clc {figures['margin']:.1f} s before clc lost power")
        return 0
    except LabError as error:
        print(f"demo: cluster scenario: {error}", file=sys.stderr)
        return 1
    finally:
        cluster.down(lab)


def main():
    directory = tempfile.mkdtemp(prefix="infrapower-demo-")
    print(f"== bringing the lab up in {directory}")
    started = time.monotonic()
    try:
        lab = lab_module.up(directory)
    except LabError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    try:
        print(f"   up in {time.monotonic() - started:.1f} s\n")
        print(lab_module.status_table(lab_module.status(lab.dir)))
        for title, extra in (("the power chain", []), ("the fencing plan it implies", ["--plan"])):
            print(f"\n== {title} (infrapower chain {' '.join(extra)})")
            chain = subprocess.run(
                [sys.executable, "-m", "infrapower.cli.main", "chain", "--lab", str(lab.dir), *extra],
                capture_output=True, text=True, timeout=60,
            )
            print((chain.stdout + chain.stderr).rstrip())
        server = "clc"
        if "upsd" in lab.ports() and f"bmc:{server}" in lab.ports():
            where = f"{server}-psu1@127.0.0.1:{lab.port('upsd')}"
            print(f"\n== a power supply as a NUT device (upsc {where}, served by the ipmi-psu driver)")
            upsc = subprocess.run(["upsc", where], capture_output=True, text=True, timeout=30)
            print((upsc.stdout + upsc.stderr).rstrip())
        failures = 0
        for title, steps in _fence_plans(lab, server):
            print(f"\n== {title}")
            since = time.time()
            for path, options in steps:
                failures += _run_agent(path, options) not in (0,)
            # A cycling outlet comes back after the agent returns.
            wait_until(lambda: _settled(lab), time.monotonic() + 10, "the rack to settle")
            _show_log(lab, since, server)
        print("\n== the rack afterwards")
        print(lab_module.status_table(lab_module.status(lab.dir)))
        failures += _cluster_scenario(lab)
        return 1 if failures else 0
    finally:
        lab_module.down(lab.dir)
        shutil.rmtree(directory, ignore_errors=True)
        print("\n== lab down")


if __name__ == "__main__":
    sys.exit(main())
