"""The simulated rack: real protocol peers on 127.0.0.1.

`up()` starts the spec's rack (or any topology) in one directory: SNMP
PDUs (snmpsim), NUT (upsd, snmp-ups over those PDUs, a test driver for the
UPSes and for faults snmp-ups cannot produce) and one ipmi_sim BMC per
server.  `down()` stops exactly the processes it started.
"""

import importlib
import os
import time
from pathlib import Path

from infrapower.lab.core import Lab, LabError
from infrapower.lab.rack import default_topology, feeds, powered_servers, psu_health, ups_charge, ups_status

# Start-up order matters: NUT's snmp-ups needs the PDUs answering.
COMPONENTS = ("pdus", "bmc", "nut")
READY_SECONDS = 20.0

__all__ = ["Lab", "LabError", "default_lab_dir", "down", "reset", "status", "status_table", "up"]


def default_lab_dir():
    return Path(os.environ.get("INFRAPOWER_LAB_DIR") or Path.home() / ".infrapower-lab")


def _component(name):
    return importlib.import_module(f"infrapower.lab.{name}")


def up(directory=None, topology=None, components=COMPONENTS, ready_seconds=READY_SECONDS):
    """Start a lab; returns the Lab once every peer answers."""
    lab = Lab(directory or default_lab_dir())
    running = [name for name in lab.process_names() if lab.alive(name)]
    if running:
        raise LabError(f"a lab is already up in {lab.dir} ({', '.join(running)}): run `infrapower lab down` first")
    lab.dir.mkdir(parents=True, exist_ok=True)
    for stale in ("ports.json",):
        lab.path(stale).unlink(missing_ok=True)
    lab.rack.create(topology or default_topology())
    deadline = time.monotonic() + ready_seconds
    try:
        modules = [_component(name) for name in components]
        started = []
        for module in modules:
            if module.__name__.endswith(".nut"):
                # snmp-ups reads the simulated PDUs from its first poll.
                for earlier in started:
                    earlier.wait_ready(lab, deadline)
            module.start(lab)
            started.append(module)
        for module in started:
            module.wait_ready(lab, deadline)
    except BaseException:
        lab.stop_all()
        raise
    return lab


def down(directory=None):
    lab = Lab(directory or default_lab_dir())
    if lab.path("cluster").exists():
        # The 3-node cluster's nodes are no lab processes of their own:
        # its power watcher must stop first, then its cgroups and
        # namespaces go.
        from infrapower.lab import cluster

        cluster.down(lab)
    names = lab.process_names()
    # The cluster first (it may be fencing), then the watchers that push
    # rack state into the simulators, then the simulators.
    stop_first = [n for n in names if n.startswith("pacemaker") or n == "corosync"]
    stop_first += [n for n in names if n.endswith("-sync")]
    for name in stop_first + [n for n in names if n not in stop_first]:
        lab.stop(name)
    return names


def reset(lab):
    """A running lab as a test expects to find it: every PDU answering,
    every outlet, UPS and chassis on, nothing pending, no fault."""
    # Imported here: the PDUs' module is only needed once a lab is up.
    from infrapower.lab import pdus

    for name, pdu in lab.rack.topology()["pdus"].items():
        pdus.set_silent(lab, name, False)
        pdus.set_reply_delay(lab, name, pdu.get("reply_delay", 0.0))
    lab.rack.reset()


def status(directory=None):
    """The rack as data: per server, its power and every feed's path."""
    lab = Lab(directory or default_lab_dir())
    topology = lab.rack.topology()
    state = lab.rack.read()
    fed = feeds(topology, state)
    health = psu_health(topology, state)
    powered = powered_servers(topology, state)
    servers = []
    for server, spec in topology["servers"].items():
        rows = []
        for psu, outlet in spec["psus"].items():
            pdu = outlet.split(":", 1)[0]
            ups = topology["pdus"][pdu]["ups"]
            slot = state["outlets"][outlet]
            rows.append(
                {
                    "psu": psu,
                    "health": health[f"{server}:{psu}"],
                    "outlet": outlet,
                    "outlet_state": ("pending " if slot.get("pending") else "") + ("on" if slot["on"] else "off"),
                    "ups": ups,
                    "ups_state": _ups_text(state["upses"][ups], time.time()),
                    "fed": fed[f"{server}:{psu}"],
                    "fault": state["faults"].get(outlet, {}).get("kind"),
                }
            )
        servers.append({"server": server, "role": spec.get("role", ""), "powered": powered[server], "feeds": rows})
    processes = {name: lab.alive(name) for name in lab.process_names()}
    report = {"dir": str(lab.dir), "servers": servers, "ports": lab.ports(), "processes": processes}
    if lab.path("cluster", "up").exists():
        from infrapower.lab import cluster

        report["cluster"] = cluster.status(lab)
    return report


def _ups_text(slot, now):
    """`OL`, `OB DISCHRG 45%`: what the UPS says, with its charge when it
    is not full."""
    charge = ups_charge(slot, now)
    return ups_status(slot, now) + (f" {charge:.0f}%" if charge < 100 else "")


def status_table(report):
    """`lab status` as a person reads it."""
    lines = [f"lab: {report['dir']}"]
    header = ("server", "power", "psu", "psu health", "outlet", "state", "ups", "ups status")
    rows = [header]
    for server in report["servers"]:
        for index, feed in enumerate(server["feeds"]):
            rows.append(
                (
                    server["server"] if index == 0 else "",
                    ("ON" if server["powered"] else "OFF") if index == 0 else "",
                    feed["psu"],
                    feed["health"],
                    feed["outlet"],
                    feed["outlet_state"] + (f" [{feed['fault']}]" if feed["fault"] else ""),
                    feed["ups"],
                    feed["ups_state"],
                )
            )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    down_procs = sorted(name for name, alive in report["processes"].items() if not alive)
    lines.append(
        "processes: "
        + ", ".join(sorted(report["processes"]))
        + (f" (not running: {', '.join(down_procs)})" if down_procs else "")
    )
    ports = ", ".join(f"{name}={port}" for name, port in sorted(report["ports"].items()))
    lines.append(f"ports: {ports}")
    if "cluster" in report:
        nodes = [
            f"{node} {'running' if info['running'] else 'off'}" + (f" [{', '.join(info['faults'])}]" if info["faults"] else "")
            for node, info in report["cluster"].items()
        ]
        lines.append(f"cluster: {', '.join(nodes)} (infrapower lab node NAME -- crm_mon -1)")
    return "\n".join(lines)
