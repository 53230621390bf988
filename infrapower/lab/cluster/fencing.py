"""The cluster's fencing, as an admin would set it up: the commands
`infrapower chain --plan` prints for the lab (both feeds of each node in
one level), a fence_ipmi_psu device per node as level 2 (the BMC powers
the chassis off when the PDUs cannot), and location constraints that keep
each node's own devices off it (a node never fences itself).

Every command goes through pcs against a copy of the live CIB, pushed back
in one replace: the cluster never runs with half the fencing configured.
Keys live in the lab (cluster/keys, mode 0600), seen by the nodes (the
file system is shared): commands carry `password_script=cat FILE`.
"""

import os
import shlex
import subprocess
from pathlib import Path

from infrapower.lab.cluster import run
from infrapower.lab.cluster.host import NODES
from infrapower.lab.core import LabError, lab_python

PLAN_TIMEOUT = 60.0
PCS_TIMEOUT = 60.0
START_SECONDS = 60.0  # every fence device started (its first monitor passed)


def keys_dir(lab):
    return lab.path("cluster", "keys")


def plan_commands(lab):
    """The `pcs` lines of `infrapower chain --plan --health` for the
    running lab (which writes their key files into keys_dir)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    argv = [
        lab_python(), "-m", "infrapower.cli.main", "chain", "--lab", str(lab.dir), "--plan",
        "--secrets-dir", str(keys_dir(lab)), "--write-secrets", "--health",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=PLAN_TIMEOUT, env=env)
    if proc.returncode != 0:
        raise LabError(f"infrapower chain --plan failed for the lab: {proc.stderr.strip() or proc.stdout.strip()}")
    return [line for line in proc.stdout.splitlines() if line.startswith("pcs ")]


def _write_key(path, key):
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")


def bmc_commands(lab, nodes=NODES):
    """Level 2: one fence_ipmi_psu device per node, its BMC's admin key
    in a file."""
    from infrapower.lab import bmc

    lines = []
    for node in nodes:
        name = f"chain-{node}-ipmi"
        key = keys_dir(lab) / f"{name}.password"
        _write_key(key, bmc.ADMIN_PASSWORD)
        lines.append(
            " ".join(
                shlex.quote(word)
                for word in [
                    "pcs", "stonith", "create", name, "fence_ipmi_psu", "ip=127.0.0.1",
                    f"ipport={lab.port(f'bmc:{node}')}", f"username={bmc.ADMIN_USER}",
                    f"password_script=cat {key}", f"pcmk_host_list={node}",
                ]
            )
        )
        lines.append(f"pcs stonith level add 2 {node} {name}")
    return lines


def device_targets(commands):
    """{device: its node} from `pcs stonith create` lines."""
    targets = {}
    for line in commands:
        words = shlex.split(line)
        if words[1:3] == ["stonith", "create"]:
            for word in words[5:]:
                if word.startswith("pcmk_host_list="):
                    targets[words[3]] = word.split("=", 1)[1]
    return targets


def constraint_commands(commands):
    """Each device avoids the node it fences."""
    return [f"pcs constraint location {device} avoids {node}" for device, node in device_targets(commands).items()]


def apply(lab, via="clc", extra=()):
    """Configure fencing in the running cluster; returns the commands
    applied (pcs lines, as a person would type them) once every fence
    device they create runs (read back from crm_mon)."""
    import time

    commands = plan_commands(lab) + bmc_commands(lab)
    commands += constraint_commands(commands) + list(extra)
    apply_commands(lab, commands, via)
    wait_started(lab, sorted(device_targets(commands)), time.monotonic() + START_SECONDS, via)
    return commands


def started_devices(lab, via):
    """The resources crm_mon shows started and not failed, as `via` sees them."""
    from xml.etree import ElementTree

    mon = ElementTree.fromstring(run(lab, via, ["crm_mon", "-1", "--output-as=xml"], check=True, timeout=20).stdout)
    return {
        resource.get("id")
        for resource in mon.iter("resource")
        if resource.get("role") == "Started" and resource.get("failed") != "true"
    }


def wait_started(lab, devices, deadline, via="clc"):
    """Until every one of `devices` runs: applied is not working."""
    from infrapower.lab.core import wait_until

    missing = list(devices)

    def all_started():
        missing[:] = sorted(set(devices) - started_devices(lab, via))
        return not missing

    try:
        wait_until(all_started, deadline, "every fence device started")
    except LabError as error:
        raise LabError(f"fence devices not started: {', '.join(missing)} ({error})") from None


def apply_commands(lab, commands, via="clc"):
    """Run pcs lines against a copy of the live CIB, then push it once."""
    cib = lab.path("cluster", "fencing-cib.xml")
    cib.write_text(run(lab, via, ["cibadmin", "-Q"], check=True).stdout)
    for line in commands:
        words = shlex.split(line)
        if words[0] != "pcs":
            raise LabError(f"not a pcs command: {line}")
        proc = subprocess.run(
            ["pcs", "-f", str(cib), *words[1:]], capture_output=True, text=True, timeout=PCS_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise LabError(f"{line}: {proc.stderr.strip() or proc.stdout.strip()}")
    run(lab, via, ["cibadmin", "--replace", "--xml-file", str(cib)], check=True)
