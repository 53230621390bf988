"""The spec's motivating scenario, end to end, in the lab's cluster:

a resource prefers clc; clc's PSU1 fails; the mains behind UPS2 fail, so
clc's last feed hangs on a draining battery: clc turns red (#health-power,
the OCF agent power-health) and its resources move to nc1/nc2 while clc
still runs; the battery runs out, clc loses power, the cluster fences it
and carries on; mains back, clc boots and rejoins.

`run(lab)` needs the cluster up with its fencing and the health clone
(infrapower.lab.cluster.fencing.apply); it returns the figures (seconds)
and leaves the rack and the cluster as it found them.
"""

import time

from infrapower.lab.cluster import run as node_run
from infrapower.lab.cluster import wait_ready
from infrapower.lab.core import LabError, wait_until
from infrapower.lab.rack import powered_servers

RESOURCE = "web"
HOME = "clc"
UPS = "ups2"
BATTERY_SECONDS = 60.0  # UPS2's runtime in the scenario (the lab's default): a 10 s monitor, a move, a margin


def health(lab, via):
    out = node_run(lab, via, ["attrd_updater", "-Q", "-A", "-n", "#health-power"]).stdout
    colours = {}
    for line in out.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "host" in fields and "value" in fields:
            colours[fields["host"].strip('"')] = fields["value"].strip('"')
    return colours


def located(lab, via):
    """The nodes the resource runs on, as the cluster says."""
    out = node_run(lab, via, ["crm_resource", "--locate", "-r", RESOURCE]).stdout
    return sorted(line.rsplit(":", 1)[1].strip() for line in out.splitlines() if "is running on" in line)


def _fenced(lab, via):
    """How many times the cluster has fenced HOME (every entry, not only
    the last: --verbose)."""
    history = node_run(lab, via, ["stonith_admin", "--history", HOME, "--verbose"]).stdout
    return history.count(f"of {HOME} successful")


def _server_off_at(lab, since):
    for event in lab.rack.power_log():
        if event["t"] >= since and event["kind"] == "server" and event["name"] == HOME and event["state"] == "off":
            return event["t"]
    return None


def run(lab, say=print, battery_seconds=BATTERY_SECONDS, deadline_seconds=240.0):
    from infrapower.lab import bmc

    deadline = time.monotonic() + deadline_seconds
    via = "nc1"
    figures = {}
    node_run(lab, via, ["pcs", "resource", "create", RESOURCE, "ocf:pacemaker:Dummy"], check=True)
    try:
        node_run(lab, via, ["pcs", "constraint", "location", RESOURCE, "prefers", f"{HOME}=100"], check=True)
        wait_until(lambda: located(lab, via) == [HOME], deadline, f"{RESOURCE} started on {HOME}")
        say(f"{RESOURCE} runs on {HOME} (it prefers it); health: {health(lab, via)}")

        bmc.set_psu_fault(lab, HOME, "psu1", "failed")
        wait_until(lambda: health(lab, via).get(HOME) == "yellow", deadline, f"{HOME} yellow")
        say(f"{HOME}:psu1 failed -> {HOME} yellow (one feed left): {RESOURCE} stays on {located(lab, via)}")

        fenced_before = _fenced(lab, via)
        mains_off = time.time()
        lab.rack.set_mains(UPS, False, runtime=battery_seconds)
        say(f"mains behind {UPS} fail ({battery_seconds:g} s of battery)")
        wait_until(lambda: health(lab, via).get(HOME) == "red", deadline, f"{HOME} red")
        figures["red_after_mains_off"] = time.time() - mains_off
        say(f"  +{figures['red_after_mains_off']:.1f} s {HOME} red: its last feed is on battery")
        def elsewhere():
            nodes = located(lab, via)
            return nodes if nodes and HOME not in nodes else None

        now_on = wait_until(elsewhere, deadline, f"{RESOURCE} running off {HOME}")
        moved = time.time()
        if not powered_servers(lab.rack.topology(), lab.rack.read())[HOME]:
            raise LabError(f"{RESOURCE} left {HOME} only after {HOME} lost power")
        figures["moved_after_mains_off"] = moved - mains_off
        say(f"  +{figures['moved_after_mains_off']:.1f} s {RESOURCE} moved to {', '.join(now_on)} while {HOME} still runs")

        off = wait_until(lambda: _server_off_at(lab, mains_off), deadline, f"{UPS}'s battery empty, {HOME} off")
        figures["margin"] = off - moved
        say(f"  +{off - mains_off:.1f} s {UPS}'s battery empty: {HOME} loses power "
            f"({figures['margin']:.1f} s after {RESOURCE} had left)")
        wait_until(lambda: _fenced(lab, via) > fenced_before, deadline, f"{HOME} fenced")
        figures["fenced_after_off"] = time.time() - off
        say(f"  +{time.time() - mains_off:.1f} s the cluster fenced {HOME}; {RESOURCE} on {located(lab, via)}")

        back = time.time()
        lab.rack.set_mains(UPS, True)
        wait_ready(lab, deadline)
        figures["rejoined_after_mains_back"] = time.time() - back
        say(f"mains back: {HOME} booted and rejoined in {figures['rejoined_after_mains_back']:.1f} s")
    finally:
        lab.rack.set_mains(UPS, True)
        bmc.set_psu_fault(lab, HOME, "psu1", None)
        node_run(lab, via, ["pcs", "resource", "delete", RESOURCE, "--force"])
    return figures
