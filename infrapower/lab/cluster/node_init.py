"""A cluster node's init: PID 1 inside the node's PID, mount, UTS and IPC
namespaces (entered by unshare, in the node's network namespace).

It makes the node its own machine (a private /run and /dev/shm: libqb's
ring buffers carry PIDs that clash across PID namespaces; its disks over
/etc/corosync, /var/lib/pacemaker ...; its host name), starts corosync
then pacemakerd in the foreground, reaps every orphan, and on SIGTERM
stops pacemakerd then corosync cleanly (a shutdown, not a power cut: a
power cut is cgroup.kill from outside).
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from infrapower.lab.cluster.disks import MOUNTS

STOP_GRACE = 60.0  # pacemakerd may take this long to stop its resources


def _mount(*args):
    subprocess.run(["mount", *args], check=True)


def make_machine(node, disk):
    _mount("--make-rprivate", "/")
    for target in ("/run", "/dev/shm"):
        _mount("-t", "tmpfs", "-o", "mode=755" if target == "/run" else "mode=1777", "tmpfs", target)
    for sub in ("lock", "crm", "pcsd"):
        Path("/run", sub).mkdir(exist_ok=True)
    for name, target in MOUNTS.items():
        _mount("--bind", str(Path(disk) / name), target)
    socket.sethostname(node)


class Init:
    def __init__(self, node, disk):
        self.node, self.disk = node, Path(disk)
        self.children = {}
        self.stopping = False

    def log(self, text):
        print(f"{time.strftime('%H:%M:%S')} {self.node} init: {text}", flush=True)

    def spawn(self, name, argv, env=None):
        out = open(self.disk / "log" / f"{name}.out", "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        self.children[name] = proc
        return proc

    def reap(self):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for name, proc in self.children.items():
                if proc.pid == pid:
                    proc.returncode = -1
                    self.log(f"{name} ended")

    def alive(self, name):
        proc = self.children.get(name)
        return proc is not None and proc.returncode is None

    def wait_corosync(self, deadline):
        while time.monotonic() < deadline and self.alive("corosync") and not self.stopping:
            probe = subprocess.run(["corosync-cfgtool", "-s"], capture_output=True, timeout=5)
            if probe.returncode == 0:
                return True
            self.reap()
            time.sleep(0.1)
        return False

    def run(self):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.log("boot")
        self.spawn("corosync", ["corosync", "-f"])
        if self.wait_corosync(time.monotonic() + 30):
            env = dict(
                os.environ,
                PCMK_logfile="/var/log/pacemaker/pacemaker.log",
                PCMK_node_start_state="default",
                HOSTNAME=self.node,
            )
            self.spawn("pacemakerd", ["pacemakerd", "-f"], env)
            self.log("cluster stack started")
        elif not self.stopping:
            # Halting makes the node boot again (the power watcher boots a
            # powered node that is not running): a retry, not a node that
            # runs forever without its cluster stack.
            self.log("corosync not ready in 30 s: halting")
            self.stopping = True
        while not self.stopping:
            self.reap()
            time.sleep(0.2)
        self.shutdown()

    def shutdown(self):
        for name in ("pacemakerd", "corosync"):
            proc = self.children.get(name)
            if proc is None or proc.returncode is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while self.alive(name) and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.1)
        self.log("halted")

    def _stop(self, signum, frame):
        self.stopping = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", required=True)
    parser.add_argument("--disk", required=True, help="the node's directory in the lab")
    args = parser.parse_args(argv)
    if os.getpid() != 1:
        sys.exit("node_init: must run as PID 1 of its own PID namespace")
    make_machine(args.node, args.disk)
    Init(args.node, args.disk).run()


if __name__ == "__main__":
    main()
