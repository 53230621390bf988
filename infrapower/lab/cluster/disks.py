"""What each cluster node keeps on its "disk": corosync.conf, its CIB, its
logs, in per-node directories of the lab that its init bind-mounts over
the system paths (they survive a power cut, as a disk does).

The corosync token is short for tests (TOKEN_MS): a lost node is noticed
after token + consensus (1.2 x token) ~ 2.2 s instead of ~6.6 s at
corosync's default 3000 ms; the price, on a loaded 2-core machine, is a
node wrongly declared lost when it is starved for over a second.
"""

import grp
import os
import pwd
import shutil
import subprocess

from infrapower.lab.cluster.host import NODES, node_address
from infrapower.lab.errors import LabError

CLUSTER_NAME = "infrapower-cluster"
TOKEN_MS = 1000
# Where each per-node directory is mounted inside the node.
MOUNTS = {
    "etc-corosync": "/etc/corosync",
    "lib-corosync": "/var/lib/corosync",
    "lib-pacemaker": "/var/lib/pacemaker",
    "log": "/var/log/pacemaker",
}
PACEMAKER_SUBDIRS = ("cib", "pengine", "blackbox", "cores")
# Seeded before the first start: fencing on, an inquorate partition stops
# (an isolated node must never fence the others), a short dc-deadtime
# (the default 20 s delays the first election).
PROPERTIES = {
    "stonith-enabled": "true",
    "no-quorum-policy": "stop",
    "dc-deadtime": "2s",
    "stonith-watchdog-timeout": "0",
    "cluster-recheck-interval": "1min",
}


def node_dir(lab, node):
    return lab.path("cluster", "nodes", node)


def corosync_conf(nodes=NODES):
    entries = "".join(
        f"""    node {{
        name: {node}
        nodeid: {index}
        ring0_addr: {node_address(node)}
    }}
"""
        for index, node in enumerate(nodes, start=1)
    )
    return f"""# written by infrapower.lab.cluster
totem {{
    version: 2
    cluster_name: {CLUSTER_NAME}
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: {TOKEN_MS}
}}

logging {{
    to_stderr: yes
    to_logfile: yes
    logfile: /var/log/pacemaker/corosync.log
    to_syslog: no
    timestamp: on
}}

quorum {{
    provider: corosync_votequorum
}}

nodelist {{
{entries}}}
"""


def prepare(lab, nodes=NODES):
    """Fresh disks for every node: corosync.conf and a seeded CIB."""
    seed = _seed_cib(lab)
    uid, gid = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
    for node in nodes:
        root = node_dir(lab, node)
        if root.exists():
            shutil.rmtree(root)
        for name in MOUNTS:
            (root / name).mkdir(parents=True)
        (root / "etc-corosync" / "corosync.conf").write_text(corosync_conf(nodes))
        for sub in PACEMAKER_SUBDIRS:
            path = root / "lib-pacemaker" / sub
            path.mkdir()
            os.chown(path, uid, gid)
            os.chmod(path, 0o750)
        cib = root / "lib-pacemaker" / "cib" / "cib.xml"
        cib.write_text(seed)
        os.chown(cib, uid, gid)
        os.chmod(cib, 0o600)
        os.chown(root / "log", uid, gid)
        os.chmod(root / "log", 0o770)


def _seed_cib(lab):
    path = lab.path("cluster", "seed-cib.xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_run(["cibadmin", "--empty"]).stdout)
    env = dict(os.environ, CIB_file=str(path))
    for name, value in PROPERTIES.items():
        _run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], env=env)
    return path.read_text()


def _run(argv, env=None):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc
