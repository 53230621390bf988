"""A real single-node corosync + Pacemaker cluster on 127.0.0.1, for
proving the agents under pacemaker-fenced (root only).

Corosync and Pacemaker read system paths (/etc/corosync,
/var/lib/pacemaker), so `start` backs up what it replaces into the lab
directory and `stop` puts it back.  Both daemons run in the foreground
through `Lab.spawn`, so `Lab.stop_all()` also ends them if a test dies
before calling `stop`.

The lab's servers (clc, nc1, nc2) are not cluster nodes: the fencer fences
any target that a registered device claims through `pcmk_host_list` /
`pcmk_host_map`, node or not (`stonith_admin --reboot clc` works; see
tests/lab/test_pacemaker.py).

Start-up is fast because the CIB is seeded before pacemakerd starts: with
Pacemaker's default `dc-deadtime` (20 s) a lone controller waits that long
for a DC that does not exist before electing itself.
"""

import contextlib
import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree

from infrapower.lab.core import LabError, PeerGone, wait_until

CLUSTER_NAME = "infrapower-lab"
NODE_NAME = "infrapower-lab-node"

COROSYNC_DIR = Path("/etc/corosync")
COROSYNC_CONF = COROSYNC_DIR / "corosync.conf"
COROSYNC_AUTHKEY = COROSYNC_DIR / "authkey"
CIB_DIR = Path("/var/lib/pacemaker/cib")
# pacemaker-fenced 2.1.5 runs agents only from here (compiled in).
FENCE_AGENT_DIR = Path("/usr/sbin")

# Written into our corosync.conf so a leftover from a crashed lab is never
# mistaken for the machine's own configuration and "restored" later.
OWN_CONF_MARKER = "# written by infrapower.lab.pacemaker"

# Processes that mean a cluster stack not started by this lab is running.
CLUSTER_PROCESSES = ("corosync", "pacemakerd", "pacemaker-fenced", "pacemaker-controld", "pacemaker-based")

# What a lab cluster needs: fencing on (it is what we test); a one-node
# cluster is quorate anyway, but `ignore` keeps the fencer usable should
# corosync report otherwise; a short dc-deadtime makes the lone node elect
# itself at once (2.7 s to a DC at 100 ms, 4.6 s at 2 s, ~30 s at the
# default 20 s); no stonith-watchdog since there is no sbd.
LAB_PROPERTIES = {
    "stonith-enabled": "true",
    "no-quorum-policy": "ignore",
    "dc-deadtime": "500ms",
    "stonith-watchdog-timeout": "0",
}

PCS_TIMEOUT = 60.0


def _conf_text(lab):
    return f"""{OWN_CONF_MARKER} for the lab in {lab.dir}
totem {{
    version: 2
    cluster_name: {CLUSTER_NAME}
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}}

logging {{
    to_stderr: yes
    to_logfile: yes
    logfile: {lab.path("logs", "corosync-file.log")}
    to_syslog: no
    timestamp: on
}}

quorum {{
    provider: corosync_votequorum
}}

nodelist {{
    node {{
        name: {NODE_NAME}
        nodeid: 1
        ring0_addr: 127.0.0.1
    }}
}}
"""


def _backup_dir(lab):
    return lab.path("pacemaker", "backup")


def _owned_marker(lab):
    return lab.path("pacemaker", "owns-system-paths")


def _running_cluster_processes():
    """(pid, name) of every cluster daemon in this network namespace (one
    in another, such as the lab's 3-node cluster, cannot clash: corosync's
    and libqb's sockets are per network namespace)."""
    found = []
    own_net = os.readlink("/proc/self/ns/net")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            net = os.readlink(entry / "ns" / "net")
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if comm in CLUSTER_PROCESSES and state != "Z" and net == own_net:
            found.append((int(entry.name), comm))
    return found


def _refuse_foreign_cluster(lab):
    own = {lab.pid("corosync"), lab.pid("pacemakerd")} - {None}
    # Pacemaker's sub-daemons are children of our pacemakerd.
    foreign = [(pid, name) for pid, name in _running_cluster_processes() if pid not in own and _ppid(pid) not in own]
    if foreign:
        listing = ", ".join(f"{name} (pid {pid})" for pid, name in foreign)
        raise LabError(
            f"a cluster stack not started by this lab is running: {listing}; "
            "stop it first (the lab must not touch a real cluster)"
        )


def _ppid(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def _save_system_config(lab):
    """Move the machine's corosync.conf/authkey and CIB aside, once: a second
    start after a crash must not back up the lab's own leftovers."""
    backup = _backup_dir(lab)
    backup.mkdir(parents=True, exist_ok=True)
    for original in (COROSYNC_CONF, COROSYNC_AUTHKEY):
        saved = backup / original.name
        if not original.exists() or saved.exists():
            continue
        if original == COROSYNC_CONF and original.read_text(errors="replace").startswith(OWN_CONF_MARKER):
            continue
        shutil.copy2(original, saved)
    saved_cib = backup / "cib"
    if not saved_cib.exists() and any(CIB_DIR.iterdir()):
        shutil.copytree(CIB_DIR, saved_cib)


def _restore_system_config(lab):
    backup = _backup_dir(lab)
    for original in (COROSYNC_CONF, COROSYNC_AUTHKEY):
        saved = backup / original.name
        if saved.exists():
            shutil.copy2(saved, original)
            saved.unlink()
        elif original.exists() and original.read_text(errors="replace").startswith(OWN_CONF_MARKER):
            original.unlink()
    _clear_cib()
    saved_cib = backup / "cib"
    if saved_cib.exists():
        shutil.copytree(saved_cib, CIB_DIR, dirs_exist_ok=True)
        shutil.rmtree(saved_cib)


def _clear_cib():
    for item in CIB_DIR.iterdir():
        if item.is_dir():
            shutil.rmtree(item)
        else:
            item.unlink()


def _seed_cib(lab):
    """An empty CIB with the lab's properties, written where pacemaker-based
    reads it at start (no .sig file: it accepts that with a warning)."""
    seed = lab.path("pacemaker", "seed-cib.xml")
    seed.write_text(_run(["cibadmin", "--empty"], "cibadmin --empty").stdout)
    env = dict(os.environ, CIB_file=str(seed))
    for name, value in LAB_PROPERTIES.items():
        _run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], f"seeding {name}", env=env)
    _clear_cib()
    target = CIB_DIR / "cib.xml"
    shutil.copyfile(seed, target)
    uid = pwd.getpwnam("hacluster").pw_uid
    gid = grp.getgrnam("haclient").gr_gid
    os.chown(target, uid, gid)
    os.chmod(target, 0o600)


def _run(argv, what, timeout=30.0, env=None, input=None):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: `{' '.join(argv)}` did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{what}: `{' '.join(argv)}` exited {proc.returncode}: {detail}")
    return proc


# -- lifecycle -------------------------------------------------------------


def start(lab):
    """Write the lab's corosync.conf, seed a clean CIB and start corosync and
    pacemakerd; returns at once (use `wait_ready`).  Refuses when a cluster
    stack this lab did not start is running."""
    if os.geteuid() != 0:
        raise LabError("the Pacemaker lab needs root (corosync and pacemaker use system paths)")
    if lab.alive("corosync") or lab.alive("pacemakerd"):
        stop(lab)
    _refuse_foreign_cluster(lab)
    lab.path("pacemaker").mkdir(parents=True, exist_ok=True)
    lab.path("logs").mkdir(parents=True, exist_ok=True)
    _save_system_config(lab)
    _owned_marker(lab).write_text(str(os.getpid()))
    COROSYNC_CONF.write_text(_conf_text(lab))
    _seed_cib(lab)
    lab.path("pacemaker", "started-at").write_text(repr(time.monotonic()))
    try:
        lab.spawn("corosync", ["corosync", "-f"])
        # pacemakerd gives up if corosync's IPC is not there yet.
        wait_until(_corosync_ready, time.monotonic() + 20, "corosync (see logs/corosync.log)")
        lab.spawn("pacemakerd", ["pacemakerd", "-f"])
    except BaseException:
        stop(lab)  # give the machine its configuration back
        raise


def _corosync_ready():
    proc = subprocess.run(["corosync-cfgtool", "-s"], capture_output=True, text=True, timeout=5)
    return proc.returncode == 0


def dc_node(timeout=5.0):
    """The DC's name, or None while there is none.  `crm_mon -1` answers at
    once in every state; `crmadmin -D` blocks for its whole timeout while
    the controller is still pending, so it makes a poor poll."""
    proc = subprocess.run(
        ["crm_mon", "-1", "--output-as=xml"], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        return None
    try:
        summary = ElementTree.fromstring(proc.stdout).find("summary/current_dc")
    except ElementTree.ParseError:
        return None
    if summary is None or summary.get("present") != "true":
        return None
    return summary.get("name")


def _fencer_ready():
    proc = subprocess.run(["stonith_admin", "--list-registered", "--timeout", "5"], capture_output=True, timeout=15)
    # rc 0 with devices, rc 105 (ENODEV-ish "no such device") when none yet.
    return proc.returncode in (0, 105)


def wait_ready(lab, deadline):
    """Until a DC is elected and the fencer answers; returns seconds since
    `start` (the figure the lab reports)."""
    for name in ("corosync", "pacemakerd"):
        if not lab.alive(name):
            raise LabError(f"{name} is not running: see {lab.path('logs', name + '.log')}")

    def ready():
        if not lab.alive("pacemakerd"):
            raise PeerGone(f"pacemakerd exited: see {lab.path('logs', 'pacemakerd.log')} and /var/log/pacemaker/")
        return dc_node(timeout=2.0) and _fencer_ready()

    wait_until(ready, deadline, "Pacemaker DC")
    try:
        started = float(lab.path("pacemaker", "started-at").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return time.monotonic() - started


def stop(lab, grace=60.0):
    """pacemakerd first (it stops its sub-daemons in order), then corosync;
    then restore the machine's configuration."""
    for name in ("pacemakerd", "corosync"):
        pid = lab.pid(name)
        if pid is not None and lab.alive(name):
            # Only the main process: pacemakerd shuts its children down in
            # order; a signal to the whole group would race it.
            lab.signal(name, signal.SIGTERM)
            try:
                wait_until(lambda: not lab.alive(name), time.monotonic() + grace, f"{name} shutdown")
            except LabError:
                pass  # lab.stop below escalates to SIGKILL
        lab.stop(name)
    # Only a lab that took over the system paths gives them back: stopping
    # a lab that never started must not wipe anybody's CIB.
    if _owned_marker(lab).exists():
        _restore_system_config(lab)
        _owned_marker(lab).unlink()
    _uninstall_agents(lab)


# -- operating the cluster -------------------------------------------------


def pcs(lab, *args, timeout=PCS_TIMEOUT):
    """Run `pcs ARGS`; raises LabError with pcs's own message on failure."""
    return _run(["pcs", *[str(a) for a in args]], "pcs", timeout=timeout)


def fence(lab, action, target, timeout=60):
    """Ask the fencer to `reboot`, `off` or `on` TARGET, as Pacemaker would;
    returns (exit code, combined output)."""
    flags = {"reboot": "--reboot", "off": "--fence", "on": "--unfence"}
    if action not in flags:
        raise ValueError(f"fence action must be one of {sorted(flags)}, not {action!r}")
    argv = ["stonith_admin", flags[action], target, "--timeout", str(int(timeout))]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
    except subprocess.TimeoutExpired as exc:
        return 124, f"stonith_admin did not return within {timeout + 30} s: {exc.output or ''}"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def history(lab, target="*"):
    """`stonith_admin --history TARGET --verbose` as text."""
    return _run(["stonith_admin", "--history", target, "--verbose"], "stonith history").stdout


def _installed_list(lab):
    return lab.path("pacemaker", "installed-agents")


def install_agent(lab, agent_path):
    """Make an agent of ours visible to the fencer, which runs agents only
    from /usr/sbin: a symlink there, removed again by `stop`.  Refuses to
    shadow a file it did not create (fence-agents' own, or an install)."""
    agent_path = Path(agent_path).resolve()
    link = FENCE_AGENT_DIR / agent_path.name
    if not agent_path.name.startswith("fence_") or not os.access(agent_path, os.X_OK):
        raise LabError(f"{agent_path} is not an executable fence_* agent")
    if link.is_symlink() and Path(os.readlink(link)) == agent_path:
        pass
    elif link.exists() or link.is_symlink():
        raise LabError(f"{link} exists and is not the lab's link to {agent_path}; not replacing it")
    else:
        link.symlink_to(agent_path)
    listing = _installed_list(lab)
    listing.parent.mkdir(parents=True, exist_ok=True)
    known = listing.read_text().split() if listing.exists() else []
    if str(link) not in known:
        listing.write_text("\n".join(known + [str(link)]) + "\n")
    return link


def _uninstall_agents(lab):
    listing = _installed_list(lab)
    if not listing.exists():
        return
    for line in listing.read_text().split():
        link = Path(line)
        if link.is_symlink():
            link.unlink()
    listing.unlink()


def create_device(lab, name, agent, **params):
    """`pcs stonith create NAME AGENT key=value...`; Python-friendly names
    work too (`pcmk_host_list` as is, `status_file` stays `status_file`).
    The agent must be installed where the fencer looks (/usr/sbin)."""
    args = ["stonith", "create", name, agent, *(f"{key}={value}" for key, value in params.items())]
    pcs(lab, *args)
    # The fencer registers devices from the CIB asynchronously.
    wait_until(
        lambda: _registered(name),
        time.monotonic() + 30,
        f"fence device {name} registration",
    )


def _registered(name):
    """Is `name` among the fencer's devices (whole words: nut1 is not nut10)?"""
    return name in _run(["stonith_admin", "--list-registered"], "list devices").stdout.split()


@contextlib.contextmanager
def fence_device(lab, name, agent, **params):
    """A fence device for the duration of a `with` block, deleted after
    even when the block fails, so the shared cluster stays clean."""
    create_device(lab, name, agent, **params)
    try:
        yield name
    finally:
        delete_device(lab, name)


def delete_device(lab, name):
    pcs(lab, "stonith", "delete", name)
    wait_until(lambda: not _registered(name), time.monotonic() + 30, f"fence device {name} removal")
