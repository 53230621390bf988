"""Power coupling: a node runs exactly while its rack server has power.

This process watches the rack (infrapower.lab.rack) every TICK: a server
that loses power (both feeds, its PSUs, its UPS's battery, its BMC's
chassis) has every process of its node killed at once (cgroup.kill); one
whose power returns boots its node again.  Node faults live as flag files
in the node's directory: `crashed` (dead until its power is cycled, as a
panicked server without auto-reboot), `isolated` (cable out), `hung`
(cgroup frozen); a power cut clears them all, as pulling the plug clears
a hung machine.  Transitions go to cluster/power.log (JSON lines).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from infrapower.lab.cluster import host
from infrapower.lab.cluster.disks import node_dir
from infrapower.lab.core import Lab
from infrapower.lab.rack import POWER_LOG, next_due, powered_servers

TICK = 0.1
FAULT_FLAGS = ("crashed", "isolated", "hung")


def flag(lab, node, name):
    return node_dir(lab, node) / name


def boot_argv(lab, node):
    """What boots a node: unshare's new namespaces in the node's network,
    the node's init as PID 1."""
    return [
        "nsenter",
        f"--net=/run/netns/{host.node_ns(lab, node)}",
        "unshare",
        "--mount",
        "--uts",
        "--ipc",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        sys.executable,
        "-m",
        "infrapower.lab.cluster.node_init",
        "--node",
        node,
        "--disk",
        str(node_dir(lab, node)),
    ]


class Watcher:
    def __init__(self, lab):
        self.lab = lab
        self.nodes = [n for n in host.NODES if n in lab.rack.topology()["servers"]]
        self.procs = {}
        self.state = lab.rack.read()
        self.stamp = lab.rack.stamp()
        self.stopping = False
        self.log_offset = self._log_size()

    def log(self, node, event):
        entry = {"t": time.time(), "node": node, "event": event}
        with open(self.lab.path("cluster", "power.log"), "a") as out:
            out.write(json.dumps(entry) + "\n")

    def _log_size(self):
        try:
            return self.lab.rack.dir.joinpath(POWER_LOG).stat().st_size
        except FileNotFoundError:
            return 0

    def refresh(self):
        """Re-read the rack when it changed; returns the servers that lost
        power since the last read, however briefly (an off and on between
        two ticks is still a power cut: it shows in the power log)."""
        if next_due(self.state) <= time.time() or self.lab.rack.stamp() != self.stamp:
            self.state = self.lab.rack.read()
            self.stamp = self.lab.rack.stamp()
        if self._log_size() == self.log_offset:
            return set()
        with open(self.lab.rack.dir / POWER_LOG) as log:
            log.seek(self.log_offset)
            text = log.read()
        complete = text[: text.rfind("\n") + 1]
        self.log_offset += len(complete.encode())
        lost = set()
        for line in complete.splitlines():
            event = json.loads(line) if line.strip() else {}
            if event.get("kind") == "server" and event.get("state") == "off":
                lost.add(event["name"])
        return lost

    def boot(self, node):
        cgroup = host.cgroup_dir(self.lab, node)
        host.freeze_cgroup(self.lab, node, False)
        out = open(node_dir(self.lab, node) / "log" / "init.out", "ab")

        def enter_cgroup():
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

        env = dict(os.environ)
        self.procs[node] = subprocess.Popen(
            boot_argv(self.lab, node),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=enter_cgroup,
            start_new_session=True,
        )
        out.close()
        self.log(node, "boot")

    def power_off(self, node):
        host.kill_cgroup(self.lab, node)
        for name in FAULT_FLAGS:
            flag(self.lab, node, name).unlink(missing_ok=True)
        host.freeze_cgroup(self.lab, node, False)
        host.set_cable(self.lab, node, True)
        self.log(node, "power lost")

    def running(self, node):
        return bool(host.cgroup_pids(self.lab, node))

    def reap(self):
        for node, proc in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[node]

    def step(self):
        lost = self.refresh()
        powered = powered_servers(self.lab.rack.topology(), self.state)
        for node in self.nodes:
            if not powered[node] or node in lost:
                if self.running(node) or any(flag(self.lab, node, n).exists() for n in FAULT_FLAGS):
                    self.power_off(node)
            elif not self.running(node) and not flag(self.lab, node, "crashed").exists():
                self.boot(node)
        self.reap()

    def run(self):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        while not self.stopping:
            self.step()
            time.sleep(TICK)

    def _stop(self, signum, frame):
        self.stopping = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True)
    args = parser.parse_args(argv)
    lab = Lab(Path(args.lab))
    Watcher(lab).run()


if __name__ == "__main__":
    main()
