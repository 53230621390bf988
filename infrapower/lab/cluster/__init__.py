"""A real 3-node Pacemaker cluster beside the rack: clc, nc1 and nc2.

Each node is corosync 3 (knet) + pacemaker 2.1 in its own network, mount,
UTS, IPC and PID namespaces, on a bridge in a "switch" namespace
(infrapower.lab.cluster.host), with its own disks (disks), booted by its
init (node_init) in its own cgroup.  Two lab processes serve it:
`cluster-power` (power: a node runs exactly while its rack server has
power) and `cluster-relay` (relay: the lab's upsd, SNMP PDUs and BMCs at
127.0.0.1:PORT inside every node, as on the machine).  Root only.

`up(lab)` starts it beside a running lab, `down(lab)` removes every
process, cgroup and namespace it made; `run(lab, node, argv)` runs a
command inside a node; `fault(lab, node, kind)` crashes, hangs or
isolates one.
"""

import json
import os
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree

from infrapower.lab.cluster import disks, host
from infrapower.lab.cluster.host import NODES
from infrapower.lab.core import LabError, lab_python, wait_until

READY_SECONDS = 90.0
FAULTS = ("crash", "hang", "isolate", "clear")
PROCESSES = ("cluster-power", "cluster-relay")

__all__ = ["NODES", "down", "fault", "members", "run", "status", "up", "wait_ready"]


def is_up(lab):
    return lab.path("cluster", "up").exists()


def up(lab, deadline=None):
    """Start the three nodes; returns once each is a member of the cluster
    with a DC elected (use `members` for details)."""
    if os.geteuid() != 0:
        raise LabError("the lab's cluster needs root (namespaces, cgroups, corosync)")
    if not host.CGROUP_ROOT.joinpath("cgroup.procs").exists():
        raise LabError(f"no cgroup v2 hierarchy at {host.CGROUP_ROOT}: the lab's cluster needs one")
    if any(lab.alive(name) for name in PROCESSES):
        raise LabError(f"a cluster is already up in {lab.dir}: run `infrapower lab down` first")
    deadline = deadline or time.monotonic() + READY_SECONDS
    try:
        host.create_network(lab)
        host.create_cgroups(lab)
        disks.prepare(lab)
        (lab.path("cluster", "power.log")).write_text("")
        lab.path("cluster", "up").write_text(str(lab.dir))
        module = "infrapower.lab.cluster"
        lab.spawn("cluster-relay", [lab_python(), "-m", f"{module}.relay", "--lab", lab.dir])
        lab.spawn("cluster-power", [lab_python(), "-m", f"{module}.power", "--lab", lab.dir])
        wait_ready(lab, deadline)
    except BaseException:
        down(lab)
        raise
    return lab


def down(lab):
    """Power every node off and remove the cluster's cgroups and namespaces:
    every step is tried, the first failure raised after the others ran
    (a cgroup that would not empty must not leave the relay and the
    namespaces behind)."""
    stopped = [name for name in PROCESSES if lab.pid(name) is not None]
    steps = (
        lambda: lab.stop("cluster-power"),  # first: it would boot the nodes again
        lambda: host.delete_cgroups(lab),
        lambda: lab.stop("cluster-relay"),
        lambda: host.delete_network(lab),
        lambda: lab.path("cluster", "up").unlink(missing_ok=True),
    )
    failure = None
    for step in steps:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - raised below, after the rest of the clean-up
            failure = failure or error
    if failure is not None:
        raise failure
    return stopped


def run(lab, node, argv, timeout=60, check=False, capture=True):
    """Run `argv` inside `node` (its mount, UTS, IPC, network and PID
    namespaces); returns the CompletedProcess."""
    if node not in NODES:
        raise LabError(f"no cluster node named {node!r} (nodes: {', '.join(NODES)})")
    pid = host.node_init_pid(lab, node)
    if pid is None:
        raise LabError(f"cluster node {node} is not running (no power, or crashed)")
    argv = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--", *[str(a) for a in argv]]
    try:
        proc = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LabError(f"{node}: {' '.join(argv[10:])}: no end after {timeout:g} s (a hung node?)") from None
    if check and proc.returncode != 0:
        raise LabError(f"{node}: {' '.join(argv[10:])}: {(proc.stderr or proc.stdout or '').strip()}")
    return proc


def members(lab, via):
    """{node: {"online", "dc", "member"}} as `via` sees the cluster:
    online in crm_mon, and joined (expected="member" in the CIB status:
    crm_mon shows a node online before the DC has it joined)."""
    mon = ElementTree.fromstring(run(lab, via, ["crm_mon", "-1", "--output-as=xml"], check=True, timeout=20).stdout)
    view = {}
    # Only the node list: resources name their nodes in <node> elements too.
    for node in mon.find("nodes").iter("node"):
        if node.get("name") in NODES:
            view[node.get("name")] = {
                "online": node.get("online") == "true",
                "dc": node.get("is_dc") == "true",
                "member": False,
            }
    status = ElementTree.fromstring(run(lab, via, ["cibadmin", "-Q", "-o", "status"], check=True, timeout=20).stdout)
    for state in status.iter("node_state"):
        if state.get("uname") in view:
            view[state.get("uname")]["member"] = (
                state.get("crmd") == "online" and state.get("join") == "member" and state.get("expected") == "member"
            )
    return view


def wait_members(lab, nodes, deadline, via=None):
    """Until every node of `nodes` is online and joined and a DC exists,
    as seen from `via` (default: the first of `nodes`)."""
    via = via or nodes[0]

    def joined():
        view = members(lab, via)
        return all(view.get(n, {}).get("online") and view[n]["member"] for n in nodes) and any(
            v["dc"] for v in view.values()
        )

    wait_until(joined, deadline, f"cluster members {', '.join(nodes)}")


def wait_ready(lab, deadline):
    wait_members(lab, list(NODES), deadline)


def fault(lab, node, kind):
    """crash (the whole node dies and stays dead until its power is
    cycled), hang (frozen), isolate (cable out), clear (undo hang and
    isolate; a crashed node boots again)."""
    from infrapower.lab.cluster.power import FAULT_FLAGS, flag

    if kind not in FAULTS:
        raise LabError(f"no node fault {kind!r} (faults: {', '.join(FAULTS)})")
    if node not in NODES:
        raise LabError(f"no cluster node named {node!r} (nodes: {', '.join(NODES)})")
    if kind == "clear":
        for name in FAULT_FLAGS:
            flag(lab, node, name).unlink(missing_ok=True)
        host.freeze_cgroup(lab, node, False)
        host.set_cable(lab, node, True)
        return
    if kind == "crash":
        flag(lab, node, "crashed").write_text("")
        host.kill_cgroup(lab, node)
    elif kind == "hang":
        flag(lab, node, "hung").write_text("")
        host.freeze_cgroup(lab, node, True)
    elif kind == "isolate":
        flag(lab, node, "isolated").write_text("")
        host.set_cable(lab, node, False)


def status(lab):
    """Per node: running, frozen, its faults."""
    from infrapower.lab.cluster.power import FAULT_FLAGS, flag

    return {
        node: {
            "running": bool(host.cgroup_pids(lab, node)),
            "frozen": host.is_frozen(lab, node),
            "faults": [name for name in FAULT_FLAGS if flag(lab, node, name).exists()],
            "address": host.node_address(node),
        }
        for node in NODES
    }


def memory(lab):
    """{node: bytes}: the proportional set size of its processes (their
    share of libqb's ring buffers in the node's /dev/shm included: they are
    mapped)."""
    result = {}
    for node in NODES:
        total = 0
        for pid in host.cgroup_pids(lab, node):
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            total += sum(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))
        result[node] = total
    return result


def power_log(lab):
    path = lab.path("cluster", "power.log")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
