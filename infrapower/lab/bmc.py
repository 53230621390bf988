"""The lab's BMCs: one real `ipmi_sim` (OpenIPMI) per server of the rack,
spoken to over RMCP+ on 127.0.0.1 by real clients (ipmitool, pyghmi,
fence_ipmilan).

What each BMC knows comes from the rack, never from itself:

- chassis power: ipmi_sim asks an external program (`chassis_control` in
  lan.conf) for `get power` on every status request and runs `set power
  0|1` for on/off/cycle.  That program is this module's `chassis` entry
  point (bmc_chassis.py); it answers from `powered_servers()` (chassis on
  AND a healthy PSU fed), so a server whose feeds are cut reports off, as
  a real one would.
- PSU status sensors (IPMI sensor type 0x08, offsets 0 present, 1 failure,
  3 input lost): ipmi_sim cannot ask anyone for a sensor value, so a small
  watcher process (`bmc-sync`) polls the rack's state file and pushes every
  change to the BMC's emulator console (`sensor_set_bit`).  Callers never
  have to remember to sync; `sync_sensors()` exists for those that want the
  BMC to show a change before they go on (set_psu_fault does).
- PSU input voltage and current (sensor types 0x02/0x03, entity power
  supply, direction input): 230 V and 1.2 A while the PSU's feed is live,
  0 V and 0 A when it is not; the same watcher pushes them
  (`sensor_set_value`).
- FRU data: a server board FRU (id 0) and one FRU per PSU with maker,
  model, serial, part number and a standard Power Supply Information
  multirecord (capacity in W); rating also as a product extra field.

BMC loss is SIGSTOP of the ipmi_sim process: requests vanish unanswered,
as with a hung or unplugged controller.  SIGCONT brings it back.

The modules: bmc_data (users, sensor numbering, FRU and SDR encoders,
pure), bmc_config (the files ipmi_sim starts from), bmc_console (its
emulator console), bmc_sync (what the sensors should show, the watcher),
bmc_chassis (chassis_control); this one starts and stops the BMCs, injects
their faults and is what the rest of the lab, the CLI and the tests use.

Layout under `lab.path("bmc", server)`: lan.conf, bmc.emu, sdrs (sdrcomp
source), *.fru, the chassis wrapper, shown.json (the PSU bits and input
readings the BMC currently shows, kept under `bmc/console.lock`) and
ipmi_sim's state dir.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from infrapower.lab.bmc_chassis import chassis
from infrapower.lab.bmc_config import write_config
from infrapower.lab.bmc_console import Console
from infrapower.lab.bmc_data import (
    ADMIN_PASSWORD, ADMIN_USER, CIPHER_SUITE, OPERATOR_PASSWORD, OPERATOR_USER, PSU_RATING_WATTS, USERS,
    board_fru, bmc_directory, build_fru, credentials, numbered_psus, process_name, psu_fru,
)
from infrapower.lab.bmc_sync import bmc_is_down, console_lock, desired_sensors, sync_sensors, watch
from infrapower.lab.core import LabError, lab_python, wait_until
from infrapower.lab.rack import PSU_FAULTS, psu_health

# What the lab, the CLI, the tests and the bench import from here,
# wherever it is defined now.
__all__ = [
    "ADMIN_PASSWORD", "ADMIN_USER", "CIPHER_SUITE", "OPERATOR_PASSWORD", "OPERATOR_USER", "PSU_RATING_WATTS",
    "Console", "board_fru", "build_fru", "chassis", "credentials", "desired_sensors", "ipmitool_argv", "main",
    "process_name", "psu_fru", "set_bmc_down", "set_psu_fault", "start", "status", "stop", "sync_sensors",
    "wait_ready", "watch",
]

SYNC_PROCESS = "bmc-sync"


# -- what clients need to know ------------------------------------------------


def ipmitool_argv(lab, server, user=ADMIN_USER, password=None, timeout=1, retries=1):
    """An ipmitool command line for this server's BMC, up to the subcommand."""
    if password is None:
        password = {name: pw for name, pw, _, _ in USERS.values()}[user]
    argv = ["ipmitool", "-I", "lanplus", "-C", str(CIPHER_SUITE), "-H", "127.0.0.1"]
    argv += ["-p", str(lab.port(f"bmc:{server}")), "-U", user, "-P", password]
    argv += ["-N", str(timeout), "-R", str(retries)]
    if user == OPERATOR_USER:
        argv += ["-L", "OPERATOR"]
    return argv


# -- lifecycle ----------------------------------------------------------------


# ipmi_sim dies of SIGPIPE when a console client hangs up before reading
# its greeting (seen: a bare connect-and-close killed it).  Python's
# subprocess restores SIGPIPE to default in children, so ignore it in a
# shell that then execs ipmi_sim (same PID, the ignore survives exec).
_IGNORE_SIGPIPE = ["sh", "-c", 'trap "" PIPE; exec "$0" "$@"']


def start(lab, servers=None):
    """Write every BMC's configuration and start its ipmi_sim, plus the
    sensor watcher.  Returns at once; call wait_ready()."""
    if shutil.which("ipmi_sim") is None or shutil.which("sdrcomp") is None:
        raise LabError("ipmi_sim/sdrcomp not found: install the Debian package openipmi")
    topology = lab.rack.topology()
    lab.path("bmc").mkdir(parents=True, exist_ok=True)
    with console_lock(lab):
        state = lab.rack.read()
        for server in servers or topology["servers"]:
            lab.stop(process_name(server))
            write_config(lab, server, topology, state)
            bmc_dir = bmc_directory(lab, server)
            lab.spawn(
                process_name(server),
                [*_IGNORE_SIGPIPE, "ipmi_sim", "-c", bmc_dir / "lan.conf", "-f", bmc_dir / "bmc.emu", "-s", bmc_dir / "state", "-n"],
                cwd=bmc_dir,
            )
    lab.stop(SYNC_PROCESS)
    lab.spawn(SYNC_PROCESS, [lab_python(), "-m", "infrapower.lab.bmc", "sync", "--lab", lab.dir])


def stop(lab):
    lab.stop(SYNC_PROCESS)
    for server in lab.rack.topology()["servers"]:
        lab.stop(process_name(server))


def _rmcp_ping(ports, deadline):
    """ASF presence ping (RMCP class 6) to every port until each answers
    with a pong: proves the LAN side is up without a session."""
    waiting = set(ports)
    ping = bytes.fromhex("0600ff06" "000011be" "80" "01" "00" "00")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while waiting and time.monotonic() < deadline:
            for port in waiting:
                sock.sendto(ping, ("127.0.0.1", port))
            end = time.monotonic() + 0.05
            while waiting and time.monotonic() < end:
                try:
                    data, (_host, port) = sock.recvfrom(512)
                except socket.timeout:
                    break
                except ConnectionRefusedError:  # ICMP from a port not bound yet
                    continue
                if len(data) >= 9 and data[8] == 0x40:
                    waiting.discard(port)
    return waiting


def wait_ready(lab, deadline, servers=None):
    """Poll until every BMC answers an RMCP ping and its console accepts."""
    servers = list(servers or lab.rack.topology()["servers"])
    ports = {lab.port(f"bmc:{server}"): server for server in servers}
    while True:
        for server in servers:
            if not lab.alive(process_name(server)):
                log = lab.path("logs", f"{process_name(server)}.log")
                raise LabError(f"BMC of {server} (ipmi_sim) exited at start; see {log} and {bmc_directory(lab, server)}")
        silent = _rmcp_ping(ports, min(deadline, time.monotonic() + 0.2))
        if not silent:
            break
        if time.monotonic() >= deadline:
            names = ", ".join(ports[p] for p in sorted(silent))
            raise LabError(f"BMC of {names} did not answer RMCP ping; see {lab.path('logs')}")
    for server in servers:
        port = lab.port(f"bmc-console:{server}")
        # A full prompt, not a bare connect: see _IGNORE_SIGPIPE.
        wait_until(lambda: Console(port, timeout=0.5).close() or True, deadline, f"BMC console of {server}")
    if not lab.alive(SYNC_PROCESS):
        raise LabError(f"BMC sensor watcher exited; see {lab.path('logs', SYNC_PROCESS + '.log')}")


# -- run-time control ---------------------------------------------------------


def set_psu_fault(lab, server, psu, kind):
    """Fail (`failed`), pull (`absent`) or repair (None) a PSU; returns
    once the BMC's sensors show it (unless the BMC is down)."""
    if kind is not None and kind not in PSU_FAULTS:
        raise LabError(f"unknown PSU fault {kind!r}: use one of {PSU_FAULTS} or None")
    if psu not in lab.rack.topology()["servers"][server]["psus"]:
        raise LabError(f"{server} has no {psu}")
    lab.rack.set_fault(f"{server}:{psu}", kind)
    sync_sensors(lab, [server])


def set_bmc_down(lab, server, down):
    """BMC loss: SIGSTOP makes ipmi_sim a black hole (no answer at all);
    SIGCONT brings it back, then its sensors catch up with the rack."""
    name = process_name(server)
    if down:
        # Recorded first so no push starts against a stopped console.
        lab.rack.set_fault(f"bmc:{server}", "down")
        with console_lock(lab):  # let a push in flight finish
            lab.signal(name, signal.SIGSTOP)
    else:
        lab.signal(name, signal.SIGCONT)
        lab.rack.set_fault(f"bmc:{server}", None)
        sync_sensors(lab, [server])


def _query_power(argvs, timeout=3.0):
    """Run `chassis power status` against several BMCs at once."""
    procs = {
        server: subprocess.Popen(argv + ["chassis", "power", "status"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        for server, argv in argvs.items()
    }
    answers = {}
    for server, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        answers[server] = out.strip().rsplit(" ", 1)[-1] if "Chassis Power is" in out else None
    return answers


def status(lab):
    """Per server: ports, chassis power as its BMC reports it (None when
    the BMC does not answer), PSU health per the rack, BMC up/down."""
    topology = lab.rack.topology()
    state = lab.rack.read()
    servers = list(topology["servers"])
    up = [s for s in servers if lab.alive(process_name(s)) and not bmc_is_down(state, s)]
    power = _query_power({s: ipmitool_argv(lab, s) for s in up})
    health = psu_health(topology, state)
    return {
        server: {
            "port": lab.ports().get(f"bmc:{server}"),
            "console_port": lab.ports().get(f"bmc-console:{server}"),
            "bmc": "down" if bmc_is_down(state, server) else ("up" if server in up else "stopped"),
            "power": power.get(server),
            "psus": {psu: health[f"{server}:{psu}"] for _n, psu in numbered_psus(topology, server)},
            "users": credentials(),
            "cipher_suite": CIPHER_SUITE,
        }
        for server in servers
    }


# -- entry points -------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m infrapower.lab.bmc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chassis_cmd = sub.add_parser("chassis", help="ipmi_sim's chassis_control program")
    chassis_cmd.add_argument("--lab", default=os.environ.get("INFRAPOWER_LAB_DIR"), required=False)
    chassis_cmd.add_argument("--server", required=True)
    chassis_cmd.add_argument("operation")
    chassis_cmd.add_argument("params", nargs="*")
    sync_cmd = sub.add_parser("sync", help="push rack changes to the BMCs' PSU sensors")
    sync_cmd.add_argument("--lab", default=os.environ.get("INFRAPOWER_LAB_DIR"))
    args = parser.parse_args(argv)
    if not args.lab:
        parser.error("--lab (or INFRAPOWER_LAB_DIR) is required")
    if args.command == "chassis":
        return chassis(args.lab, args.server, args.operation, args.params)
    return watch(args.lab)


if __name__ == "__main__":
    sys.exit(main())
