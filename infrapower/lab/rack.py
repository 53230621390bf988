"""The lab's physics: which outlet feeds which PSU, and who is powered.

Every simulator (the SNMP PDUs, the NUT test driver, the BMCs' chassis
scripts) runs in its own process, so the rack's state lives in one JSON file
in the lab directory, changed only under an exclusive lock.  Each change
recomputes what follows from it (feeds, PSU input, server power) and appends
every transition to the power log with the time it physically happened, so
tests can assert order ("both feeds off before either came back").

A switching delay is recorded as a pending change with its due time; whoever
reads the state next settles it, stamped with the due time, not the read time.

UPS physics: each UPS has its mains (`mains`) apart from its output (`on`).
Mains gone, the output stays on from a battery whose charge falls linearly
(full to empty in the UPS's `runtime` seconds, default UPS_RUNTIME), low
battery below `low_battery` percent; at empty the output goes off
("depleted") and its load loses power.  Mains back: the output comes back
on if the battery had cut it (a UPS's auto-restart, not after load.off) and
the battery recharges (full in `recharge` seconds).  The charge is stored
with the time it was true (`charge`, `at`) and computed for any later time,
so the falls to low battery and to empty are due changes like a switching
delay: settled, and logged, at the time they happen.  So is a delayed
output cut (NUT's load.off.delay: `off_at`, cancelled by shutdown.stop).
"""

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

from infrapower.lab.errors import LabError

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
POWER_LOG = "power.log"
TOPOLOGY_FILE = "rack.json"

OUTLET_FAULTS = ("stuck_on", "stuck_off", "slow", "silent")
PSU_FAULTS = ("failed", "absent")
MAINS_VOLTS = 230.0  # what a powered inlet or PSU input reads
UPS_RUNTIME = 60.0  # seconds from a full battery to empty at the lab's load
UPS_LOW_BATTERY = 20.0  # percent of charge: LB below it
UPS_RECHARGE = 120.0  # seconds from empty to full on mains
CHARGE_SLACK = 1e-3  # percent: two charges closer than this are one


def default_topology():
    """The spec's rack: a cloud controller and two node controllers, each
    with two PSUs; PSU1 of every server on PDU1, PSU2 on PDU2; PDU1 fed by
    UPS1, PDU2 by UPS2.  PDU2 switches through its pending states."""
    servers = {}
    for outlet, (name, role) in enumerate(
        [("clc", "cloud controller"), ("nc1", "node controller"), ("nc2", "node controller")], start=1
    ):
        servers[name] = {"role": role, "psus": {"psu1": f"pdu1:{outlet}", "psu2": f"pdu2:{outlet}"}}
    return {
        "servers": servers,
        "pdus": {
            "pdu1": {"mapping": "apc_pdu", "sysoid": ".1.3.6.1.4.1.318.1.3.4.5", "outlets": 8, "units": 1, "ups": "ups1", "switch_delay": 0.0},
            "pdu2": {"mapping": "eaton_epdu", "outlets": 8, "units": 1, "ups": "ups2", "switch_delay": 0.3},
        },
        "upses": {"ups1": {}, "ups2": {}},
    }


def outlet_id(pdu, number, unit=1):
    """`pdu1:3` on a single unit, `pdu3:2.5` for outlet 5 of daisy-chained unit 2."""
    return f"{pdu}:{number}" if unit == 1 else f"{pdu}:{unit}.{number}"


def pdu_outlet_ids(pdu_name, pdu):
    return [
        outlet_id(pdu_name, number, unit)
        for unit in range(1, pdu.get("units", 1) + 1)
        for number in range(1, pdu["outlets"] + 1)
    ]


def outlet_names(topology):
    """What each PDU calls its outlets: the server it feeds, as an admin
    would label them (so Pacemaker's dynamic host list works), else
    the vendor-style default."""
    names = {}
    for pdu_name, pdu in topology["pdus"].items():
        for oid in pdu_outlet_ids(pdu_name, pdu):
            names[oid] = "Outlet " + oid.split(":", 1)[1]
    for server, spec in topology["servers"].items():
        for outlet in spec["psus"].values():
            names[outlet] = server
    return names


class Rack:
    """The shared state of one lab directory."""

    def __init__(self, lab_dir):
        self.dir = Path(lab_dir)

    # -- files ---------------------------------------------------------------

    def topology(self):
        try:
            return json.loads((self.dir / TOPOLOGY_FILE).read_text())
        except FileNotFoundError:
            raise LabError(f"no lab in {self.dir}: run `infrapower lab up` first") from None

    @contextlib.contextmanager
    def _locked(self):
        with open(self.dir / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self):
        return json.loads((self.dir / STATE_FILE).read_text())

    def _store(self, state):
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.dir / STATE_FILE)

    def _log(self, events):
        if events:
            with open(self.dir / POWER_LOG, "a") as log:
                for event in sorted(events, key=lambda e: e["t"]):
                    log.write(json.dumps(event, sort_keys=True) + "\n")

    # -- lifecycle -----------------------------------------------------------

    def create(self, topology):
        """Everything powered, nothing faulty: a rack as found on a good day."""
        now = time.time()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / TOPOLOGY_FILE).write_text(json.dumps(topology, indent=1, sort_keys=True))
        state = {
            "outlets": {
                oid: {"on": True, "pending": None}
                for name, pdu in topology["pdus"].items()
                for oid in pdu_outlet_ids(name, pdu)
            },
            "upses": {name: new_ups(spec, now) for name, spec in topology["upses"].items()},
            "chassis": {name: True for name in topology["servers"]},
            "faults": {},
            "derived": {},
        }
        events = _derive(topology, state, now)
        with self._locked():
            self._store(state)
            (self.dir / POWER_LOG).write_text("")
            self._log(events)

    def change(self, mutate=None):
        """Settle what is due, apply `mutate(topology, state, now)` if given,
        recompute and log; returns (state, mutate's result)."""
        topology = self.topology()
        with self._locked():
            state = self._load()
            now = time.time()
            events = _settle(topology, state, now)
            result = None
            if mutate is not None:
                result = mutate(topology, state, now)
                events += _derive(topology, state, now)
            if events or mutate is not None:
                self._store(state)
                self._log(events)
        return state, result

    def read(self):
        return self.change()[0]

    def stamp(self):
        """What identifies this version of the state file: every change
        replaces the file, so a new inode tells even where two changes
        share an mtime; None when the lab is gone."""
        try:
            info = os.stat(self.dir / STATE_FILE)
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def power_log(self):
        path = self.dir / POWER_LOG
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- what simulators do --------------------------------------------------

    def reset(self):
        """Every outlet, UPS and chassis on, nothing pending, no fault: the
        rack as a test expects to find it."""

        def mutate(topology, state, now):
            state["faults"].clear()
            for slot in state["outlets"].values():
                slot.update(on=True, pending=None)
                slot.pop("then", None)
            for name, slot in state["upses"].items():
                slot.update(new_ups(topology["upses"][name], now))
            for server in state["chassis"]:
                state["chassis"][server] = True

        self.change(mutate)

    def switch_outlet(self, outlet, on, delay=0.0):
        """A PDU was told to switch; returns False where a fault keeps it
        from obeying (the PDU still accepted the command, as real ones do)."""

        def mutate(topology, state, now):
            fault = state["faults"].get(outlet, {})
            kind = fault.get("kind")
            if (kind == "stuck_on" and not on) or (kind == "stuck_off" and on):
                return False
            wait = fault.get("seconds", delay) if kind == "slow" else delay
            slot = state["outlets"][outlet]
            if wait > 0 and slot["on"] != on:
                slot["pending"] = {"on": on, "due": now + wait}
            else:
                slot["pending"] = None
                slot["on"] = on
            return True

        return self.change(mutate)[1]

    def cycle_outlet(self, outlet, off_seconds, delay=0.0):
        """Off now (or after delay), back on `off_seconds` later."""
        if not self.switch_outlet(outlet, False, delay):
            return False

        def mutate(topology, state, now):
            slot = state["outlets"][outlet]
            pending = slot["pending"]
            off_at = pending["due"] if pending else now
            # The on-phase is queued behind the off-phase.
            slot["then"] = {"on": True, "due": off_at + off_seconds}
            return True

        return self.change(mutate)[1]

    def set_ups(self, ups, on):
        """The UPS's output, as load.off/load.on switch it."""

        def mutate(topology, state, now):
            slot = _ups_slot(state, ups)
            advance_ups(slot, now)
            slot["on"] = on
            slot["off_by"] = None if on else "command"

        self.change(mutate)

    def schedule_ups_off(self, ups, delay):
        """load.off.delay: the output goes off `delay` seconds from now
        (None: cancel a countdown, as shutdown.stop does)."""

        def mutate(topology, state, now):
            _ups_slot(state, ups)["off_at"] = None if delay is None else now + delay

        self.change(mutate)

    def set_mains(self, ups, on, runtime=None):
        """Mains behind a UPS fail (on battery from now) or come back;
        `runtime` (seconds, full battery to empty) replaces the UPS's."""

        def mutate(topology, state, now):
            slot = _ups_slot(state, ups)
            advance_ups(slot, now)
            if runtime is not None:
                slot["runtime"] = float(runtime)
            slot["mains"] = on
            if on and slot.get("off_by") == "depleted":
                slot["on"], slot["off_by"] = True, None

        self.change(mutate)

    def set_chassis(self, server, on):
        def mutate(topology, state, now):
            state["chassis"][server] = on

        self.change(mutate)

    def set_fault(self, target, kind=None, **params):
        """Inject (kind given) or clear (kind None) a fault on an outlet,
        PSU (`server:psu1`), BMC (`bmc:server`) or NUT device (`nut:dev`)."""

        def mutate(topology, state, now):
            if kind is None:
                state["faults"].pop(target, None)
            else:
                state["faults"][target] = dict(params, kind=kind, since=now)

        self.change(mutate)


# -- pure functions over (topology, state) ----------------------------------


def _settle(topology, state, now):
    """Apply every pending outlet change that is due, in time order, so that
    derived transitions carry the time they happened."""
    events = []
    while True:
        due = [
            (slot["pending"]["due"], outlet)
            for outlet, slot in state["outlets"].items()
            if slot.get("pending") and slot["pending"]["due"] <= now
        ]
        due += [
            (slot["then"]["due"], outlet)
            for outlet, slot in state["outlets"].items()
            if slot.get("then") and not slot.get("pending") and slot["then"]["due"] <= now
        ]
        crossings = _ups_dues(state)
        due += [(at, ups) for ups, (at, _) in crossings.items() if at <= now]
        cuts = _ups_cuts(state)
        due += [(at, ups) for ups, at in cuts.items() if at <= now]
        if not due:
            return events
        at, outlet = min(due)
        if cuts.get(outlet) == at:
            slot = state["upses"][outlet]
            advance_ups(slot, at)
            if slot["on"]:  # already off (a battery run out): it stays so, auto-restart kept
                slot.update(on=False, off_by="command")
            slot["off_at"] = None
            events += _derive(topology, state, at)
            continue
        if outlet in crossings:
            _ups_crossing(state["upses"][outlet], at, crossings[outlet][1])
            events += _derive(topology, state, at)
            continue
        slot = state["outlets"][outlet]
        if slot.get("pending"):
            slot["on"] = slot["pending"]["on"]
            slot["pending"] = None
        else:
            slot["on"] = slot.pop("then")["on"]
        events += _derive(topology, state, at)


def next_due(state):
    """When the next pending outlet change takes effect (epoch seconds;
    inf when nothing is pending): someone must read the rack by then."""
    dues = [
        slot[phase]["due"]
        for slot in state["outlets"].values()
        for phase in ("pending", "then")
        if slot.get(phase)
    ]
    dues += [at for at, _ in _ups_dues(state).values()]
    dues += list(_ups_cuts(state).values())
    return min(dues, default=float("inf"))


# -- UPS batteries -----------------------------------------------------------


def new_ups(spec, now):
    """A UPS on mains with a full battery; `spec` is its topology entry
    (optional runtime, low_battery, recharge)."""
    return {
        "on": True,
        "off_by": None,
        "mains": True,
        "charge": 100.0,
        "at": now,
        "runtime": float(spec.get("runtime", UPS_RUNTIME)),
        "low_battery": float(spec.get("low_battery", UPS_LOW_BATTERY)),
        "recharge": float(spec.get("recharge", UPS_RECHARGE)),
        "off_at": None,  # a load.off.delay countdown's end (epoch seconds)
    }


def _ups_slot(state, ups):
    try:
        slot = state["upses"][ups]
    except KeyError:
        raise LabError(f"no UPS named {ups!r} in the rack (UPSes: {', '.join(state['upses'])})") from None
    # A state file written before batteries existed: fill in a full one.
    for key, value in new_ups({}, slot.get("at", time.time())).items():
        slot.setdefault(key, value)
    return slot


def _charge_rate(slot):
    """Percent per second: draining on battery, filling on mains."""
    if not slot.get("mains", True):
        return -100.0 / max(slot["runtime"], 1e-3) if slot["on"] else 0.0
    return 100.0 / max(slot["recharge"], 1e-3)


def ups_charge(slot, t):
    """The battery's charge (percent) at time `t`."""
    if "charge" not in slot:
        return 100.0
    charge = slot["charge"] + _charge_rate(slot) * (t - slot["at"])
    return min(100.0, max(0.0, charge))


def ups_runtime(slot, t):
    """Seconds of battery left at `t` at the lab's load."""
    return ups_charge(slot, t) / 100.0 * slot.get("runtime", UPS_RUNTIME)


def ups_status(slot, t):
    """What the UPS reports at `t`: OFF, OL, OL CHRG, OB DISCHRG, OB DISCHRG LB."""
    if not slot["on"]:
        return "OFF"
    charge = ups_charge(slot, t)
    if not slot.get("mains", True):
        return "OB DISCHRG LB" if charge <= slot.get("low_battery", UPS_LOW_BATTERY) + CHARGE_SLACK else "OB DISCHRG"
    return "OL CHRG" if charge < 100.0 else "OL"


def advance_ups(slot, t):
    """Store the charge as of `t`, before anything changes its rate."""
    slot["charge"], slot["at"] = ups_charge(slot, t), t


def _ups_cuts(state):
    """Per UPS counting down to an output cut (load.off.delay): when."""
    return {ups: slot["off_at"] for ups, slot in state["upses"].items() if slot.get("off_at") is not None}


def _ups_dues(state):
    """Per UPS on battery: (when, charge) of its next crossing: low
    battery, then empty."""
    dues = {}
    for ups, slot in state["upses"].items():
        if slot.get("mains", True) or not slot["on"] or "charge" not in slot:
            continue
        low = slot["low_battery"]
        # Epoch seconds carry ~1e-7 s: the charge stored at a crossing is
        # set to the crossing's value, and compared with some slack.
        target = low if slot["charge"] > low + CHARGE_SLACK else 0.0
        dues[ups] = (slot["at"] + (slot["charge"] - target) / -_charge_rate(slot), target)
    return dues


def _ups_crossing(slot, at, charge):
    """A due crossing: low battery reached, or the battery empty and the
    output cut."""
    slot["charge"], slot["at"] = charge, at
    if charge <= 0.0:
        slot.update(on=False, off_by="depleted")


def feeds(topology, state):
    """Per PSU (`server:psu1`): does live power reach its input?"""
    result = {}
    for server, spec in topology["servers"].items():
        for psu, outlet in spec["psus"].items():
            pdu = outlet.split(":", 1)[0]
            ups = topology["pdus"][pdu]["ups"]
            result[f"{server}:{psu}"] = state["outlets"][outlet]["on"] and state["upses"][ups]["on"]
    return result


def psu_health(topology, state):
    """Per PSU: ok, input_lost, failed or absent: what its BMC sensors say."""
    fed = feeds(topology, state)
    health = {}
    for psu, live in fed.items():
        fault = state["faults"].get(psu, {}).get("kind")
        health[psu] = fault if fault in PSU_FAULTS else ("ok" if live else "input_lost")
    return health


def powered_servers(topology, state):
    """A server runs while its chassis is on and any healthy PSU is fed."""
    health = psu_health(topology, state)
    return {
        server: state["chassis"][server] and any(health[f"{server}:{psu}"] == "ok" for psu in spec["psus"])
        for server, spec in topology["servers"].items()
    }


def battery_level(slot, t):
    """full, charging, discharging, low or empty: the battery as the power
    log tells it."""
    charge = ups_charge(slot, t)
    if charge <= CHARGE_SLACK and not slot.get("mains", True):
        return "empty"
    if not slot.get("mains", True) and slot["on"]:
        return "low" if charge <= slot.get("low_battery", UPS_LOW_BATTERY) + CHARGE_SLACK else "discharging"
    return "full" if charge >= 100.0 else "charging"


def _derive(topology, state, at):
    """Recompute derived facts; return the transitions as log events."""
    current = {}
    for outlet, slot in state["outlets"].items():
        current[("outlet", outlet)] = "on" if slot["on"] else "off"
    for ups, slot in state["upses"].items():
        current[("ups", ups)] = "on" if slot["on"] else "off"
        current[("mains", ups)] = "on" if slot.get("mains", True) else "off"
        current[("battery", ups)] = battery_level(slot, at)
    for psu, health in psu_health(topology, state).items():
        current[("psu", psu)] = health
    for server, on in powered_servers(topology, state).items():
        current[("server", server)] = "on" if on else "off"
    previous = state.get("derived", {})
    events = []
    for (kind, name), value in current.items():
        key = f"{kind} {name}"
        if previous.get(key) != value:
            events.append({"t": at, "kind": kind, "name": name, "state": value})
    state["derived"] = {f"{kind} {name}": value for (kind, name), value in current.items()}
    return events
