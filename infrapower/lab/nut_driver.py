"""A NUT driver for the lab, written in Python: serves one device to upsd.

upsd does not care what program sits behind a driver socket: it reads
`driver = NAME` from ups.conf and connects to `<NUT_STATEPATH>/NAME-<device>`,
then speaks the driver-socket protocol (NUT's docs/sock-protocol.txt,
drivers/dstate.c): it sends DUMPALL, PING, INSTCMD ... [TRACKING id] and
SET ... [TRACKING id]; the driver answers with SETINFO/ADDCMD/DATAOK/DUMPDONE,
PONG and TRACKING <id> <code>, and pushes SETINFO whenever a value changes.
So this process is a real peer for a real upsd, with no USB or serial UPS.

It serves, from the lab's rack state (infrapower.lab.rack):
- a UPS of the topology (`ups1`, `ups2`): the rack's UPS physics as NUT
  shows them: ups.status OL / OL CHRG / OB DISCHRG / OB DISCHRG LB / OFF,
  battery.charge and battery.runtime falling on battery, input.voltage 0
  without mains (Rack.set_mains); the faults `on_battery`, `low_battery`
  (param `charge`) show a battery state without the physics; load.off /
  load.on (-> Rack.set_ups), load.off.delay (the output off after
  ups.delay.shutdown seconds, topology `shutdown_delay`, default 20, counted
  down in ups.timer.shutdown, -1 when idle; shutdown.stop cancels it;
  the countdown is the rack's, Rack.schedule_ups_off), beeper.enable /
  beeper.disable (driver-local, no physics);
- the test PDU `tpdu` with 4 outlets, outlet 4 not switchable; its outlets
  live in the rack (outlets `tpdu:N`) when the topology has a PDU named
  "tpdu", otherwise inside this process (the rack's physics has no use for a
  PDU that feeds nothing, and the SNMP simulators must not serve it).

Faults come from the rack state, key `nut:<device>` (Rack.set_fault), and are
re-read every tick, so they can be injected and cleared at run time:
  tracking_failed  INSTCMD reports a failure (param `code`, default 3 = FAILED)
  cmd_not_supported the driver withdraws its commands (DELCMD): upsd answers
                   ERR CMD-NOT-SUPPORTED
  stale            DATASTALE: upsd answers ERR DATA-STALE
  slow             commands take effect `seconds` (default 3) later
  ignore_commands  commands report success, nothing changes
  no_reply         commands are swallowed: no effect, no TRACKING answer
                   (GET TRACKING stays PENDING)
  slow_poll        the driver reads its device only every `seconds` (default
                   5) and publishes that as driver.parameter.pollinterval, as
                   a real driver does: upsd serves states up to that old,
                   commands included (snmp-ups does not re-read after one)
  frozen           the driver stops reading its socket (no PONG, no
                   updates): upsd declares the data stale by itself after
                   MAXAGE (15 s; measured 15.8 s)
  gone             the socket is closed and removed: DRIVER-NOT-CONNECTED
                   (measured ~0.05 s after the fault is set)
  status_writable  not a fault but a mode of tpdu: the outlet commands are
                   withdrawn and outlet.N.status becomes writable (RW, enum
                   on/off), switched by SET VAR: snmp-ups' apc_pdu way, as a
                   driver that maps "off" to the device's value would do it
                   (snmp-ups 2.8.0 does not: it sends the string).  The
                   faults above apply to SET as to INSTCMD, except that only
                   one fault is active at a time.
Clearing a fault restores normal behaviour; after `gone`, upsd reconnects
by itself (measured ~0.05 s here; it retries a lost driver every 2 s at most).
"""

import argparse
import math
import os
import signal
import time
from pathlib import Path

from infrapower.lab.rack import (
    UPS_LOW_BATTERY,
    UPS_RUNTIME,
    Rack,
    next_due,
    outlet_names,
    ups_charge,
    ups_runtime,
    ups_status,
)
from infrapower.nutdriver import dstate
from infrapower.nutdriver.dstate import STAT_FAILED, STAT_HANDLED, STAT_INVALID, STAT_UNKNOWN, Published

DRIVER_NAME = "infrapower-lab"  # what ups.conf says; names the socket
DRIVER_VERSION = "0.1"
TEST_PDU = "tpdu"
TEST_PDU_OUTLETS = 4
UNSWITCHABLE_OUTLETS = (4,)
DEFAULT_CYCLE_SECONDS = 1.0
UPS_SHUTDOWN_DELAY = 20.0  # load.off.delay's countdown (NUT's usual ups.delay.shutdown)
TICK = 0.05  # how often the rack state is checked for changes

FAULT_KINDS = (
    "tracking_failed",
    "cmd_not_supported",
    "stale",
    "slow",
    "ignore_commands",
    "no_reply",
    "frozen",
    "gone",
    "status_writable",
)



def socket_path(state_dir, device):
    """Where upsd looks for this device's driver (see the module doc)."""
    return dstate.socket_path(state_dir, DRIVER_NAME, device)


# -- what the device is -------------------------------------------------------


class InternalOutlets:
    """The test PDU's relays when the rack does not model them."""

    def __init__(self, count):
        self.on = {n: True for n in range(1, count + 1)}

    def names(self):
        return {n: f"Outlet {n}" for n in self.on}

    def states(self, rack_state):
        return dict(self.on)

    def switch(self, number, on, driver):
        self.on[number] = on

    def cycle(self, number, off_seconds, driver):
        self.on[number] = False
        driver.later(off_seconds, lambda: self.switch(number, True, driver))


class RackOutlets:
    """The test PDU's relays as outlets `tpdu:N` of the rack, so that
    whatever they feed loses power as it would in the room."""

    def __init__(self, rack, pdu_spec):
        self.rack = rack
        self.count = pdu_spec["outlets"]

    def _id(self, number):
        return f"{TEST_PDU}:{number}"

    def names(self):
        labels = outlet_names(self.rack.topology())
        return {n: labels[self._id(n)] for n in range(1, self.count + 1)}

    def states(self, rack_state):
        return {n: rack_state["outlets"][self._id(n)]["on"] for n in range(1, self.count + 1)}

    def switch(self, number, on, driver):
        self.rack.switch_outlet(self._id(number), on)

    def cycle(self, number, off_seconds, driver):
        self.rack.cycle_outlet(self._id(number), off_seconds)


class UpsModel:
    """A UPS of the topology, powered on/off through the rack."""

    kind = "ups"

    def __init__(self, rack, name):
        self.rack, self.name = rack, name
        # Not fencing's business: there so that tests can show the fencer
        # user is refused commands the device does support.
        self.beeper = "enabled"
        spec = rack.topology()["upses"].get(name, {})
        self.shutdown_delay = float(spec.get("shutdown_delay", UPS_SHUTDOWN_DELAY))

    def variables(self, rack_state, fault):
        slot = rack_state["upses"][self.name]
        now = time.time()
        on, mains = slot["on"], slot.get("mains", True)
        kind = fault.get("kind")
        # The rack's battery (infrapower.lab.rack): drains on battery, fills on mains.
        status = ups_status(slot, now)
        charge = ups_charge(slot, now)
        runtime = ups_runtime(slot, now)
        if on and mains and kind in ("on_battery", "low_battery"):
            # A fault shows a battery state without touching the physics.
            status = "OB DISCHRG" if kind == "on_battery" else "OB DISCHRG LB"
            charge = fault.get("charge", 55 if kind == "on_battery" else 8)
            runtime = charge / 100.0 * slot.get("runtime", UPS_RUNTIME)
            mains = False
        return {
            "device.type": "ups",
            "device.mfr": "Infrapower Lab",
            "device.model": "Lab UPS 3000",
            "device.serial": f"LAB-{self.name.upper()}",
            "ups.mfr": "Infrapower Lab",
            "ups.model": "Lab UPS 3000",
            "ups.status": status,
            "ups.load": "35" if on else "0",
            "battery.charge": str(int(round(charge))),
            "battery.charge.low": f"{slot.get('low_battery', UPS_LOW_BATTERY):g}",
            "battery.runtime": str(int(runtime)),
            "input.voltage": "230.0" if mains else "0.0",
            "output.voltage": "230.0" if on else "0.0",
            "ups.beeper.status": self.beeper,
            # NUT's countdown to an output cut: -1 while none runs.
            "ups.delay.shutdown": f"{self.shutdown_delay:g}",
            "ups.timer.shutdown": "-1" if slot.get("off_at") is None else str(max(0, math.ceil(slot["off_at"] - now))),
        }

    def commands(self):
        def beeper(value):
            def run(driver):
                self.beeper = value

            return run

        return {
            "load.off": lambda driver: self.rack.set_ups(self.name, False),
            "load.on": lambda driver: self.rack.set_ups(self.name, True),
            "load.off.delay": lambda driver: self.rack.schedule_ups_off(self.name, self.shutdown_delay),
            "shutdown.stop": lambda driver: self.rack.schedule_ups_off(self.name, None),
            "beeper.enable": beeper("enabled"),
            "beeper.disable": beeper("disabled"),
        }


class PduModel:
    """The test PDU: per-outlet status and commands, one outlet fixed."""

    kind = "pdu"

    def __init__(self, outlets, cycle_seconds):
        self.outlets, self.cycle_seconds = outlets, cycle_seconds
        self.labels = outlets.names()

    def variables(self, rack_state, fault):
        states = self.outlets.states(rack_state)
        values = {
            "device.type": "pdu",
            "device.mfr": "Infrapower Lab",
            "device.model": "Lab PDU 4",
            "device.serial": "LAB-TPDU",
            "outlet.count": str(len(states)),
            # What snmp-ups 2.8.0 publishes for a PDU (status_commit with
            # nothing to say); left out, upsd would show "WAIT" instead.
            "ups.status": "",
        }
        for number, on in states.items():
            prefix = f"outlet.{number}"
            values[f"{prefix}.id"] = str(number)
            values[f"{prefix}.desc"] = self.labels[number]
            values[f"{prefix}.status"] = "on" if on else "off"
            values[f"{prefix}.switchable"] = "no" if number in UNSWITCHABLE_OUTLETS else "yes"
        return values

    def commands(self):
        switchable = [n for n in self.labels if n not in UNSWITCHABLE_OUTLETS]
        commands = {}
        for n in switchable:
            commands[f"outlet.{n}.load.off"] = lambda driver, n=n: self.outlets.switch(n, False, driver)
            commands[f"outlet.{n}.load.on"] = lambda driver, n=n: self.outlets.switch(n, True, driver)
            commands[f"outlet.{n}.load.cycle"] = lambda driver, n=n: self.outlets.cycle(n, self.cycle_seconds, driver)

        def all_outlets(on):
            def run(driver):
                for n in switchable:
                    self.outlets.switch(n, on, driver)

            return run

        commands["load.off"] = all_outlets(False)
        commands["load.on"] = all_outlets(True)
        return commands

    def writable_status(self):
        """{outlet.N.status: (accepted values, setter(driver, value))} of
        the switchable outlets, for the status_writable mode."""
        return {
            f"outlet.{n}.status": (("on", "off"), lambda driver, value, n=n: self.outlets.switch(n, value == "on", driver))
            for n in self.labels
            if n not in UNSWITCHABLE_OUTLETS
        }


def device_model(rack, device, cycle_seconds):
    topology = rack.topology()
    if device in topology["upses"]:
        return UpsModel(rack, device)
    if device == TEST_PDU:
        if TEST_PDU in topology["pdus"]:
            return PduModel(RackOutlets(rack, topology["pdus"][TEST_PDU]), cycle_seconds)
        return PduModel(InternalOutlets(TEST_PDU_OUTLETS), cycle_seconds)
    raise SystemExit(f"{device}: not a UPS of the topology nor {TEST_PDU}")


# -- the driver ---------------------------------------------------------------


class Driver:
    """One device's driver: the driver socket (infrapower.nutdriver.dstate),
    a 50 ms loop that re-reads the rack and pushes what changed, commands
    applied to the rack.  Commands are functions `action(driver)`; delayed
    effects are `action()` closures in `scheduled`."""

    def __init__(self, lab_dir, device, state_dir, cycle_seconds):
        self.rack = Rack(lab_dir)
        self.device = device
        self.server = dstate.SocketServer(socket_path(state_dir, device), self.handle)
        self.model = device_model(self.rack, device, cycle_seconds)
        self.all_commands = self.model.commands()
        self.scheduled = []  # (due, action()): delayed effects (slow fault, cycle)
        self.published = Published()
        self.state = self.rack.read()
        self.state_stamp = self.rack.stamp()
        self.stopping = False
        self.next_poll = 0.0  # monotonic time of the next slow_poll read

    # -- helpers ---------------------------------------------------------

    def fault(self):
        return self.state["faults"].get(f"nut:{self.device}", {})

    def later(self, seconds, action):
        self.scheduled.append((time.monotonic() + seconds, action))

    # -- what upsd should know ---------------------------------------------

    def desired(self):
        fault = self.fault()
        kind = fault.get("kind")
        values = dict(self.model.variables(self.state, fault))
        values.update(
            {
                "driver.name": DRIVER_NAME,
                "driver.version": DRIVER_VERSION,
                "driver.version.internal": DRIVER_VERSION,
                "driver.parameter.port": str(self.rack.dir),
                "driver.parameter.pollinterval": f"{self.poll_seconds():g}",
            }
        )
        cmds = set() if kind == "cmd_not_supported" else set(self.all_commands)
        rw = {}
        if kind == "status_writable":
            rw = {var: values_ for var, (values_, _) in self.writable_variables().items()}
            cmds = {c for c in cmds if not c.startswith("outlet.")}
        return Published(values, cmds, rw, kind == "stale")

    def poll_seconds(self):
        fault = self.fault()
        return float(fault.get("seconds", 5.0)) if fault.get("kind") == "slow_poll" else 1.0

    def poll_due(self):
        """Whether this loop publishes: every loop (50 ms), except under
        slow_poll, where the device is read every poll_seconds."""
        if self.fault().get("kind") != "slow_poll":
            return True
        now = time.monotonic()
        if now < self.next_poll:
            return False
        self.next_poll = now + self.poll_seconds()
        return True

    def writable_variables(self):
        return self.model.writable_status() if hasattr(self.model, "writable_status") else {}

    def publish(self):
        """Push what changed since the last publication."""
        new = self.desired()
        lines = self.published.change_lines(new)
        self.published = new
        if lines:
            self.server.broadcast("".join(lines))

    # -- requests from upsd ------------------------------------------------

    def handle(self, conn, words):
        request = dstate.parse_request(words)
        if request is None:
            return
        code = None  # None: no TRACKING answer (no_reply fault, or nothing to track)
        if request.verb == "DUMPALL":
            self.server.send(conn, "".join(self.published.dump_lines()))
        elif request.verb == "PING":
            self.server.send(conn, "PONG\n")
        elif request.verb == "INSTCMD" and request.args:
            code = self.instcmd(request.args[0])
        elif request.verb == "SET" and len(request.args) >= 2:
            code = self.setvar(request.args[0], request.args[1])
        if request.tracking is not None and code is not None:
            self.server.send(conn, f"TRACKING {request.tracking} {code}\n")

    def setvar(self, name, value):
        """SET, writable only in the status_writable mode; returns the
        handler code (a real driver's setvar answers INVALID for a variable
        it cannot write), or None for no answer."""
        self.refresh()
        writable = self.writable_variables() if self.fault().get("kind") == "status_writable" else {}
        if name not in writable:
            return STAT_INVALID
        accepted, setter = writable[name]
        if value not in accepted:
            return STAT_INVALID
        return self.carry_out(lambda driver: setter(driver, value))

    def instcmd(self, name):
        """Run a command; returns the handler code, or None for no answer."""
        self.refresh()  # a fault injected just before the command counts
        kind = self.fault().get("kind")
        action = self.all_commands.get(name)
        if kind == "no_reply":
            return None
        if action is None:
            return STAT_UNKNOWN
        if kind == "cmd_not_supported":
            return STAT_INVALID
        if kind == "status_writable" and name.startswith("outlet."):
            return STAT_UNKNOWN
        return self.carry_out(action)

    def carry_out(self, action):
        """Apply a command or a SET as the current fault allows."""
        fault = self.fault()
        kind = fault.get("kind")
        if kind == "no_reply":
            return None
        if kind == "tracking_failed":
            return int(fault.get("code", STAT_FAILED))
        if kind == "ignore_commands":
            return STAT_HANDLED
        if kind == "slow":
            self.later(float(fault.get("seconds", 3.0)), lambda: action(self))
        else:
            action(self)
        self.refresh(force=True)
        return STAT_HANDLED

    # -- the loop ----------------------------------------------------------

    def refresh(self, force=False):
        """Re-read the rack when its file changed, when a pending change
        of the rack falls due (reading settles it), or when forced."""
        if force or next_due(self.state) <= time.time() or self.rack.stamp() != self.state_stamp:
            self.state = self.rack.read()
            self.state_stamp = self.rack.stamp()

    def run_due(self):
        now = time.monotonic()
        due = [item for item in self.scheduled if item[0] <= now]
        if due:
            self.scheduled = [item for item in self.scheduled if item[0] > now]
            for _, action in sorted(due, key=lambda item: item[0]):
                action()
            self.refresh(force=True)

    def run(self):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.published = self.desired()
        self.server.open()
        print(f"{DRIVER_NAME}: serving {self.device} on {self.server.path}", flush=True)
        try:
            while not self.stopping:
                self.refresh()
                self.run_due()
                kind = self.fault().get("kind")
                if kind == "gone" and self.server.is_open:
                    print(f"{self.device}: fault 'gone': closing the socket", flush=True)
                    self.server.close()
                elif kind != "gone" and not self.server.is_open:
                    print(f"{self.device}: back: reopening the socket", flush=True)
                    self.published = self.desired()
                    self.server.open()
                if kind != "frozen" and self.poll_due():
                    self.publish()
                if self.server.is_open:
                    # Frozen: requests pile up unread, as with a driver stuck in I/O.
                    self.server.poll(TICK, read=kind != "frozen")
                    if kind == "frozen":
                        time.sleep(TICK)  # the unread socket stays readable
                else:
                    time.sleep(TICK)
        finally:
            self.server.close()

    def _stop(self, signum, frame):
        self.stopping = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True, help="the lab directory (rack state)")
    parser.add_argument("--device", required=True, help="ups1, ups2, ... or tpdu")
    parser.add_argument("--state-dir", help="NUT_STATEPATH (default: LAB/nut/state)")
    parser.add_argument(
        "--cycle-seconds", type=float, default=DEFAULT_CYCLE_SECONDS, help="off time of outlet.N.load.cycle"
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir or os.environ.get("NUT_STATEPATH") or str(Path(args.lab) / "nut" / "state")
    Driver(args.lab, args.device, state_dir, args.cycle_seconds).run()


if __name__ == "__main__":
    main()
