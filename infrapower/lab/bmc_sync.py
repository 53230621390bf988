"""What the BMCs' PSU sensors should show, and the `bmc-sync` watcher that
pushes every rack change to them.

ipmi_sim cannot ask anyone for a sensor value, so this side pushes: the
watcher polls the rack's state file and sends what differs from what the
BMC shows (`bmc/SERVER/shown.json`, kept under `bmc/console.lock`) to its
emulator console.  `sync_sensors()` is for callers that want the BMC to
show a change before they go on.
"""

import contextlib
import faulthandler
import fcntl
import json
import os
import signal
import sys
import time

from infrapower.lab.bmc_console import Console
from infrapower.lab.bmc_data import (
    BMC_ADDRESS, PSU_INPUT_AMPS, PSU_INPUT_SENSORS, PSU_INPUT_VOLTS, PSU_OFFSETS, PSU_SENSOR_BASE, bmc_directory,
    input_sensor_number, numbered_psus, process_name, raw_reading,
)
from infrapower.lab.core import Lab
from infrapower.lab.errors import LabError
from infrapower.lab.rack import STATE_FILE, feeds, next_due


SYNC_INTERVAL = 0.05


# -- what the BMC should show -------------------------------------------------


def desired_sensors(topology, state, server):
    """Per PSU of `server`: the sensor bits its BMC should show now."""
    fed = feeds(topology, state)
    shown = {}
    for _number, psu in numbered_psus(topology, server):
        fault = state["faults"].get(f"{server}:{psu}", {}).get("kind")
        present = fault != "absent"
        shown[psu] = {
            "present": present,
            "failure": present and fault == "failed",
            # An absent PSU reports nothing at all; a failed one still
            # senses whether its input is live.
            "input_lost": present and not fed[f"{server}:{psu}"],
            # What the PSU measures at its input: nothing when unfed or
            # pulled (a failed PSU still measures its live input, but
            # draws no current).
            "input_voltage": PSU_INPUT_VOLTS if present and fed[f"{server}:{psu}"] else 0.0,
            "input_current": PSU_INPUT_AMPS if present and fed[f"{server}:{psu}"] and fault != "failed" else 0.0,
        }
    return shown


def bmc_is_down(state, server):
    return state["faults"].get(f"bmc:{server}", {}).get("kind") == "down"


# -- pushing it ---------------------------------------------------------------


@contextlib.contextmanager
def console_lock(lab):
    """Serialises pushes (watcher and direct callers) so the last pusher
    always pushes the newest rack state and shown.json stays true."""
    with open(lab.path("bmc", "console.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_shown(lab, server):
    try:
        return json.loads((bmc_directory(lab, server) / "shown.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def write_shown(lab, server, shown):
    path = bmc_directory(lab, server) / "shown.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(shown, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _push(lab, server, topology, desired, shown):
    """Send the bits that differ; events go to the SEL as a real BMC's would."""
    changes = []
    for number, psu in numbered_psus(topology, server):
        for name, offset in PSU_OFFSETS.items():
            if shown.get(psu, {}).get(name) != desired[psu][name]:
                sensor = PSU_SENSOR_BASE + number - 1
                changes.append(f"sensor_set_bit {BMC_ADDRESS:#x} 0 {sensor:#x} {offset} {int(desired[psu][name])} 1")
        for name in PSU_INPUT_SENSORS:
            if shown.get(psu, {}).get(name) != desired[psu][name]:
                sensor = input_sensor_number(name, number)
                raw = raw_reading(name, desired[psu][name])
                changes.append(f"sensor_set_value {BMC_ADDRESS:#x} 0 {sensor:#x} {raw} 0")
    if not changes:
        return []
    try:
        console = Console(lab.port(f"bmc-console:{server}"))
    except OSError as exc:
        raise LabError(f"BMC console of {server} unreachable: {exc}; see {lab.path('logs', process_name(server) + '.log')}")
    try:
        for command in changes:
            console.run(command)
    except OSError as exc:
        raise LabError(f"BMC console of {server} stopped answering: {exc}") from None
    finally:
        console.close()
    return changes


def sync_sensors(lab, servers=None):
    """Make the BMCs' PSU sensors show the rack's state now; BMCs that are
    down are skipped (the watcher catches them up when they return).
    Returns (rack state, {server: commands sent})."""
    topology = lab.rack.topology()
    pushed = {}
    with console_lock(lab):
        state = lab.rack.read()
        for server in servers or topology["servers"]:
            if bmc_is_down(state, server):
                continue
            desired = desired_sensors(topology, state, server)
            shown = _read_shown(lab, server)
            if desired != shown:
                pushed[server] = _push(lab, server, topology, desired, shown)
                write_shown(lab, server, desired)
    return state, pushed


def watch(lab_dir, interval=SYNC_INTERVAL):
    """The `bmc-sync` process: push every rack change to the BMCs."""
    lab = Lab(lab_dir)
    # `kill -USR1` prints where the watcher is, should it ever seem stuck.
    faulthandler.register(signal.SIGUSR1, file=sys.stdout)
    state_file = lab.path(STATE_FILE)
    seen = None
    due = 0.0
    while True:
        # The content, not the mtime: two writes within one kernel timer
        # tick can share an mtime; the file is a few KB, replaced atomically.
        try:
            content = state_file.read_bytes()
        except FileNotFoundError:
            return 0  # the lab was removed under us
        if content != seen or time.time() >= due:
            seen = content
            try:
                state, pushed = sync_sensors(lab)
                due = next_due(state)
                for server, commands in pushed.items():
                    print(f"{time.strftime('%H:%M:%S')} {server}: {'; '.join(commands)}", flush=True)
            except (LabError, OSError, ValueError, KeyError) as exc:
                print(f"{time.strftime('%H:%M:%S')} sync failed, retrying in 1 s: {exc}", flush=True)
                due = time.time() + 1.0
        time.sleep(interval)
