"""The machine side of the lab's cluster: network namespaces, a bridge,
cgroups, entering a namespace.

Names carry a short hash of the lab directory, so two labs (or another
engineer's namespaces) never share one.  Nodes' network namespaces are
named (`ip netns`), so a node's network outlives its power cuts as a NIC
and its cable do; every address lives inside these namespaces only.
"""

import ctypes
import hashlib
import os
import subprocess
import time
from pathlib import Path

from infrapower.lab.errors import LabError

NODES = ("clc", "nc1", "nc2")
SUBNET = "10.77.0"  # inside the lab's namespaces only
CGROUP_ROOT = Path("/sys/fs/cgroup/unified")  # cgroup v2 on this machine kind (hybrid)
CLONE_NEWNET = 0x40000000


def tag(lab):
    return hashlib.sha1(str(lab.dir).encode()).hexdigest()[:5]


def switch_ns(lab):
    return f"ipl{tag(lab)}-sw"


def node_ns(lab, node):
    return f"ipl{tag(lab)}-{node}"


def node_address(node):
    return f"{SUBNET}.{NODES.index(node) + 1}"


def cgroup_dir(lab, node=None):
    base = CGROUP_ROOT / f"infrapower-lab-{tag(lab)}"
    return base / node if node else base


def ip(*args, check=True):
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def netns_exists(name):
    return Path("/run/netns", name).exists()


def create_network(lab, nodes=NODES):
    """The switch namespace with its bridge; per node a namespace with
    `eth0` on that bridge and loopback up."""
    switch = switch_ns(lab)
    delete_network(lab, nodes)
    ip("netns", "add", switch)
    ip("-n", switch, "link", "add", "br0", "type", "bridge")
    ip("-n", switch, "link", "set", "br0", "up")
    ip("-n", switch, "link", "set", "lo", "up")
    for node in nodes:
        ns = node_ns(lab, node)
        ip("netns", "add", ns)
        ip("-n", switch, "link", "add", f"v{node}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", switch, "link", "set", f"v{node}", "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{node_address(node)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")


def delete_network(lab, nodes=NODES):
    for name in [node_ns(lab, node) for node in nodes] + [switch_ns(lab)]:
        if netns_exists(name):
            ip("netns", "delete", name, check=False)


def set_cable(lab, node, connected):
    """Plug or unplug a node's cable at the switch (isolation)."""
    ip("-n", switch_ns(lab), "link", "set", f"v{node}", "up" if connected else "down")


# -- cgroups -----------------------------------------------------------------


def create_cgroups(lab, nodes=NODES):
    for node in nodes:
        cgroup_dir(lab, node).mkdir(parents=True, exist_ok=True)


def cgroup_pids(lab, node):
    try:
        text = (cgroup_dir(lab, node) / "cgroup.procs").read_text()
    except FileNotFoundError:
        return []
    return [int(pid) for pid in text.split()]


def kill_cgroup(lab, node):
    """Every process of the node dies at once: a power cut."""
    path = cgroup_dir(lab, node)
    if path.exists():
        (path / "cgroup.kill").write_text("1")


def freeze_cgroup(lab, node, frozen):
    path = cgroup_dir(lab, node)
    if path.exists():
        (path / "cgroup.freeze").write_text("1" if frozen else "0")


def is_frozen(lab, node):
    try:
        return (cgroup_dir(lab, node) / "cgroup.freeze").read_text().strip() == "1"
    except FileNotFoundError:
        return False


def delete_cgroups(lab, nodes=NODES):
    for node in nodes:
        path = cgroup_dir(lab, node)
        if path.exists():
            freeze_cgroup(lab, node, False)
            kill_cgroup(lab, node)
    for node in nodes:
        _rmdir_when_empty(cgroup_dir(lab, node))
    _rmdir_when_empty(cgroup_dir(lab))


def _rmdir_when_empty(path):
    """A killed cgroup empties as its processes exit: poll until it can go."""
    deadline = time.monotonic() + 5
    while path.exists():
        try:
            path.rmdir()
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"cgroup {path} still has processes after a kill") from None
            time.sleep(0.05)


def node_init_pid(lab, node):
    """The host PID of the node's init (PID 1 inside it), or None."""
    for pid in cgroup_pids(lab, node):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and len(line.split()) == 3 and line.split()[2] == "1":
                return pid
    return None


# -- entering a network namespace from Python ---------------------------------


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


class InNetns:
    """`with InNetns(name):` sockets created inside belong to that network
    namespace (and keep belonging to it afterwards)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        return self

    def __exit__(self, *exc):
        try:
            _setns(self.home)
        finally:
            os.close(self.home)
