"""fence_nut's view of upsd: plugs resolved to device outlets, switched by
instant command, their results tracked, their states read back.

A plug is `OUTLET` on the default device or `DEVICE:OUTLET`; OUTLET is the
outlet number or what upsd calls it (`outlet.N.desc` or `outlet.N.name`).
A plug naming a device with no outlets (`ups1`, or `ups1:`) stands for the
device's whole load.

Daisy chains: snmp-ups serves a chain of PDUs behind one network card as
one device whose units' outlets are `device.U.outlet.N.*` (U from 1, the
master), with `device.U.outlet.N.load.off|on` commands.  Their plugs are
`UNIT:OUTLET` on the default device, or `DEVICE:UNIT:OUTLET`, as
fence_snmp_pdu writes a chained outlet; a plain number there is unit 1's
outlet, as in fence_snmp_pdu.

An outlet is switched by the instant command `outlet.N.load.off|on` (the
user needs it in `instcmds`), or, where the device offers no such command
but lists `outlet.N.status` as writable (snmp-ups' apc_pdu mapping:
"switched by writing the status"), by `SET VAR outlet.N.status off|on` (the
user needs `actions = SET`).  Either way the result is tracked and the
status read back; nothing is reported done before the status says so.
"""

import logging
import re
import time
from contextlib import contextmanager

from infrapower.fence import FenceError, Outlets, is_number, poll
from infrapower.nut.client import NutClient, NutError

log = logging.getLogger(__name__)

# `outlet.N.field`, or `device.U.outlet.N.field` on a daisy chain.
OUTLET_VAR = re.compile(r"^(?:device\.(\d+)\.)?outlet\.(\d+)\.(\w+)$", re.ASCII)
# What upsd accepts as a device name in a plug: printable ASCII without
# blanks, quotes, backslashes or the ':' that separates the outlet.
DEVICE_NAME = re.compile(r"[!#-9;-\[\]-~]+", re.ASCII)
WHOLE_LOAD = None

# Every NUT driver polls its device every pollinterval seconds (NUT's
# default: 2) and publishes driver.parameter.pollinterval; snmp-ups reads
# the outlet table only in its full walk, at the first poll after pollfreq
# seconds (its default: 30), so its outlet states may be that much older.
DEFAULT_POLLINTERVAL = 2.0
SNMP_UPS_DEFAULT_POLLFREQ = 30.0
# Beyond the poll period: the poll itself and its way through upsd.
POLL_MARGIN = 1.0
# What an snmp-ups walk of a PDU may take beyond that (a slow PDU's agent).
SNMP_UPS_WALK = 2.0


class _TrackingAnswer(FenceError):
    """upsd's answer to GET TRACKING was an error: the command failed."""


class Order:
    """A command sent to one plug, until upsd shows its result: what the
    driver read before the command may still be what upsd serves, so the
    target state counts only once the driver has polled since.

    Two proofs of a poll after the command: the state was seen different
    from the target after the command was carried out and then changed to
    it (only with TRACKING: its SUCCESS comes over the driver's socket after
    every value the driver published before running the command), or a
    whole poll period has passed since the command was carried out."""

    def __init__(self, target, fresh_after, tracked):
        self.target = target
        self.fresh_at = time.monotonic() + fresh_after
        self.tracked = tracked
        self.changed = False

    def vouch(self, state):
        """`state` as upsd serves it, or "cached STATE" while it may
        predate the command."""
        if state != self.target:
            self.changed = self.changed or self.tracked
            return state
        if self.changed or time.monotonic() >= self.fresh_at:
            return state
        return f"cached {state}"


class NutOutlets(Outlets):
    # upsd serves what its driver read at its last poll.
    reads_are_live = False

    def __init__(self, client, username, default_ups=None, command_timeout=5.0):
        self.client = client
        self.username = username
        self.default_ups = default_ups
        self.command_timeout = command_timeout
        self.tracking = None
        self._vars = {}
        self._commands = {}
        self._writable = {}
        self._resolved = {}
        self._orders = {}  # plug: Order, for commands not yet seen through
        self._listed_unread = True  # LIST VAR's states not yet reported (used only while no order exists)
        self._age_told = set()

    # -- what upsd knows -------------------------------------------------------

    def _call(self, what, func, *args, grant=None):
        """func(*args), a NutError turned into a FenceError that says what
        to change; `grant` is the upsd.users line an ACCESS-DENIED needs."""
        try:
            return func(*args)
        except NutError as error:
            raise FenceError(self._explain(error, what, grant)) from None

    def _explain(self, error, what, grant=None):
        if error.code == "UNKNOWN-UPS":
            try:
                known = ", ".join(sorted(self.client.list_ups())) or "none"
            except NutError:
                known = "unknown"
            return f"{what}: upsd has no such device (it has: {known}); check ups= or the plug"
        if error.code == "ACCESS-DENIED":
            if not self.username:
                return f"{what}: upsd wants a user for this: set username and password"
            needs = f"`{grant}`" if grant else "this command (instcmds = ...)"
            return (
                f"{what}: upsd denied user '{self.username}': wrong password, or [{self.username}] "
                f"in upsd.users lacks {needs}"
            )
        return f"{what}: {error}"

    def login(self, password):
        """USERNAME/PASSWORD (upsd accepts any: a wrong one shows later)."""
        self._call("logging in", self.client.login, self.username, password)

    def variables(self, ups):
        if ups not in self._vars:
            self._vars[ups] = self._call(f"reading {ups}", self.client.list_var, ups)
        return self._vars[ups]

    def commands(self, ups):
        if ups not in self._commands:
            self._commands[ups] = set(self._call(f"reading commands of {ups}", self.client.list_cmd, ups))
        return self._commands[ups]

    def writable(self, ups):
        """The variables upsd lists as writable (LIST RW) on `ups`."""
        if ups not in self._writable:
            self._writable[ups] = set(self._call(f"reading writable variables of {ups}", self.client.list_rw, ups))
        return self._writable[ups]

    def outlets(self, ups):
        """{outlet: {field: value}} of every outlet of `ups`: an outlet is
        its number, or (unit, number) on a daisy chain."""
        result = {}
        for name, value in self.variables(ups).items():
            match = OUTLET_VAR.match(name)
            if match:
                unit, number = match.group(1), int(match.group(2))
                # outlet.0 (device.U.outlet.0) is NUT's "all outlets"
                # pseudo-outlet on some PDUs.
                if number:
                    outlet = number if unit is None else (int(unit), number)
                    result.setdefault(outlet, {})[match.group(3)] = value
        return dict(sorted(result.items(), key=lambda item: _sort_key(item[0])))

    def units(self, ups):
        """The daisy-chained units upsd shows outlets of (none: no chain)."""
        return sorted({outlet[0] for outlet in self.outlets(ups) if isinstance(outlet, tuple)})

    # -- plugs -------------------------------------------------------------------

    def resolve(self, plug):
        """(device, outlet or WHOLE_LOAD) for a plug."""
        if plug in self._resolved:
            return self._resolved[plug]
        device, unit, outlet = self._split(plug)
        outlets = self.outlets(device)
        if outlet == "" and unit is None:
            resolved = (device, self._whole_load(device, outlets))
        else:
            resolved = (device, self._find(plug, device, unit, outlet, outlets))
        self._resolved[plug] = resolved
        return resolved

    def _split(self, plug):
        """(device, unit or None, outlet text) as the plug writes them."""
        parts = plug.split(":")
        if len(parts) > 3:
            raise FenceError(f"plug {plug!r}: write OUTLET, UNIT:OUTLET, DEVICE:OUTLET or DEVICE:UNIT:OUTLET")
        if len(parts) == 3:
            device, unit, outlet = parts
            self._check_device_name(plug, device)
            if not is_number(unit):
                raise FenceError(f"plug {plug!r}: {unit!r} is not a unit number; write DEVICE:UNIT:OUTLET (e.g. pdu1:2:3)")
            if outlet == "":
                raise FenceError(f"plug {plug!r} names no outlet of unit {unit}; write DEVICE:UNIT:OUTLET (e.g. pdu1:2:3)")
            return device, int(unit), outlet
        device, _, outlet = plug.rpartition(":")
        if device and self.default_ups and is_number(device) and self.units(self.default_ups):
            # UNIT:OUTLET on the default device, a daisy chain.
            return self.default_ups, int(device), outlet
        if device:
            self._check_device_name(plug, device)
            return device, None, outlet
        if self.default_ups is not None:
            return self.default_ups, None, plug
        if plug in self._call("listing devices", self.client.list_ups):
            return plug, None, ""
        raise FenceError(f"plug {plug!r} names no device: set ups= or write the plug as DEVICE:OUTLET")

    @staticmethod
    def _check_device_name(plug, device):
        if not DEVICE_NAME.fullmatch(device):
            raise FenceError(f"plug {plug!r}: {device!r} is not a NUT device name; write plugs as DEVICE:OUTLET")

    def _find(self, plug, device, unit, outlet, outlets):
        """The outlet a plug's OUTLET (number or name) means, among the
        outlets of `unit` (None: any unit) of `device`."""
        units = self.units(device)
        if unit is not None and units and unit not in units:
            raise FenceError(f"plug {plug!r}: {device} has no unit {unit} (its daisy chain has units {_listed(units)})")
        if unit is not None and not units and unit != 1:
            raise FenceError(f"plug {plug!r}: {device} is no daisy chain (upsd shows no device.N.outlet variables): "
                             f"write the plug as {device}:OUTLET")
        if units:
            # On a chain, a unit's outlets are (unit, number); a plain
            # number is unit 1's outlet, as fence_snmp_pdu reads it.
            candidates = {o: f for o, f in outlets.items() if unit is None or (isinstance(o, tuple) and o[0] == unit)}
            wanted = (unit or 1, int(outlet)) if is_number(outlet) else None
        else:
            candidates = outlets
            wanted = int(outlet) if is_number(outlet) else None
        if wanted in candidates:
            return wanted
        # Names as upsd spells them (outlet.N.desc or outlet.N.name),
        # exactly: a near miss must not switch another node's outlet.
        matches = [o for o, fields in candidates.items() if outlet in (fields.get("desc"), fields.get("name"))]
        where = f"{device} unit {unit}" if unit is not None and units else device
        if wanted is not None and not matches:
            raise FenceError(f"plug {plug!r}: {where} has no outlet {int(outlet)} "
                             f"(outlets: {_listed(_ident(o) for o in candidates) or 'none'})")
        if len(matches) != 1:
            known = ", ".join(f"{_ident(o)} ({f.get('desc') or f.get('name') or '-'})" for o, f in candidates.items())
            problem = f"matches {len(matches)} outlets ({_listed(_ident(o) for o in matches)})" if matches else "matches no outlet"
            raise FenceError(f"plug {plug!r} {problem} of {where} (outlets: {known or 'none'})")
        return matches[0]

    def _whole_load(self, device, outlets):
        if outlets:
            raise FenceError(f"{device} has outlets: name one as {device}:OUTLET")
        missing = {"load.off", "load.on"} - self.commands(device)
        if missing:
            raise FenceError(f"{device} has no outlets and does not offer {', '.join(sorted(missing))}: it cannot be fenced")
        return WHOLE_LOAD

    @staticmethod
    def _variable(outlet):
        return "ups.status" if outlet is WHOLE_LOAD else f"{_prefix(outlet)}.status"

    @staticmethod
    def _state(outlet, value):
        if outlet is WHOLE_LOAD:
            return "off" if "OFF" in value.split() else "on"
        return value.lower()

    def _read_states(self, places):
        """{(device, outlet): state}: every variable in one pipelined
        round trip; the first read of an action, before any command, takes
        the values LIST VAR brought when the plugs were resolved (as old as
        a GET's: both are upsd's copy of its driver's last poll)."""
        places = list(dict.fromkeys(places))
        listed, self._listed_unread = self._listed_unread, False
        if listed and not self._orders and all(self._variable(o) in self.variables(d) for d, o in places):
            return {(d, o): self._state(o, self.variables(d)[self._variable(o)]) for d, o in places}
        values = self._call("reading states", self.client.get_vars, [(d, self._variable(o)) for d, o in places])
        states = {}
        for (device, outlet), value in zip(places, values):
            if isinstance(value, NutError):
                what = f"reading {device}" if outlet is WHOLE_LOAD else f"reading {device} {_label(outlet)}"
                raise FenceError(self._explain(value, what))
            states[device, outlet] = self._state(outlet, value)
        return states

    # -- Outlets -----------------------------------------------------------------

    def status(self, plugs):
        places = {plug: self.resolve(plug) for plug in plugs}
        for device, _ in places.values():
            self._tell_age(device)
        read = self._read_states(places.values())
        states = {}
        for plug in plugs:
            state = read[places[plug]]
            order = self._orders.get(plug)
            states[plug] = order.vouch(state) if order else state
        return states

    def refresh_seconds(self, device):
        """How old upsd's outlet states of `device` may be: its driver's
        poll period (see DEFAULT_POLLINTERVAL) plus POLL_MARGIN."""
        variables = self.variables(device)
        period = _seconds(variables.get("driver.parameter.pollinterval"), DEFAULT_POLLINTERVAL)
        if variables.get("driver.name") == "snmp-ups":
            # snmp-ups walks when time(NULL) > lastpoll + pollfreq, with
            # whole seconds and lastpoll set when the walk ends: the next
            # walk may start pollfreq + 1 s + one loop after the last one,
            # and its values reach upsd during the walk (SNMP_UPS_WALK).
            period += _seconds(variables.get("driver.parameter.pollfreq"), SNMP_UPS_DEFAULT_POLLFREQ) + 1 + SNMP_UPS_WALK
        return period + POLL_MARGIN

    def _tell_age(self, device):
        if device not in self._age_told:
            self._age_told.add(device)
            log.debug(
                "%s: upsd serves what its driver read at its last poll: a state may be up to %g s old", device, self.refresh_seconds(device)
            )

    def check(self, plug, on):
        """How `plug` would be switched, refusing what cannot work before
        any feed is touched: ("instcmd", command) or ("set", None)."""
        device, outlet = self.resolve(plug)
        target = "on" if on else "off"
        if outlet is WHOLE_LOAD:
            command = f"load.{target}"
        else:
            if self.outlets(device)[outlet].get("switchable", "yes").lower() == "no":
                raise FenceError(f"{device} {_label(outlet)} is not switchable ({_prefix(outlet)}.switchable: no)")
            command = f"{_prefix(outlet)}.load.{target}"
        if command in self.commands(device):
            return "instcmd", command
        if outlet is not WHOLE_LOAD and self._switched_by_status(device, outlet):
            if self.variables(device).get("driver.name") == "snmp-ups":
                # snmp-ups (2.8.0 and master) sends a written outlet.N.status
                # to the PDU as an SNMP string; PDUs switched that way (APC's
                # sPDUOutletCtl) want an integer and refuse it.
                raise FenceError(
                    f"{device} has no outlet commands and snmp-ups cannot write its outlet status: "
                    "NUT cannot switch this PDU's outlets; fence it over SNMP directly (fence_snmp_pdu)"
                )
            return "set", None
        offered = ", ".join(sorted(self.commands(device))) or "none"
        raise FenceError(
            f"{device} offers neither {command} nor a writable {_prefix(outlet)}.status "
            f"(commands: {offered}): NUT cannot switch this outlet"
            if outlet is not WHOLE_LOAD
            else f"{device} does not offer {command} (commands: {offered})"
        )

    def switch(self, plug, on):
        method, command = self.check(plug, on)
        device, outlet = self.resolve(plug)
        target = "on" if on else "off"
        if method == "instcmd":
            tracked = self._instcmd(device, command)
        else:
            tracked = self._set_status(device, outlet, target)
        # From here on, the state counts only once the driver has polled.
        self._orders[plug] = Order(target, self.refresh_seconds(device), tracked)

    def _switched_by_status(self, device, outlet):
        """snmp-ups' apc_pdu way: no outlet commands, a writable status."""
        return f"{_prefix(outlet)}.status" in self.writable(device)

    def _enable_tracking(self):
        if self.tracking is None:
            self.tracking = self._call("enabling TRACKING", self.client.set_tracking, True)

    def _instcmd(self, device, command):
        self._enable_tracking()
        # No value argument: snmp-ups would write it straight into the PDU.
        tracking_id = self._call(
            f"{command} on {device}", self.client.instcmd, device, command, grant=f"instcmds = {command}"
        )
        return self._await_tracking(device, command, tracking_id)

    def _set_status(self, device, outlet, target):
        variable = f"{_prefix(outlet)}.status"
        accepted = self._call(f"reading the values of {variable} on {device}", self.client.list_enum, device, variable)
        value = next((v for v in accepted if v.casefold() == target), None if accepted else target)
        if value is None:
            raise FenceError(f"{device} accepts only {', '.join(accepted)} for {variable}: no value means {target}")
        self._enable_tracking()
        what = f"SET {variable}={value} on {device}"
        tracking_id = self._call(what, self.client.set_var, device, variable, value, grant="actions = SET")
        return self._await_tracking(device, what, tracking_id)

    def _await_tracking(self, device, what, tracking_id):
        """upsd's OK means only "passed to the driver"; TRACKING says whether
        the driver carried it out.  Returns whether the command was tracked
        (False only for a upsd without TRACKING: older than NUT 2.8.0)."""
        if not tracking_id:
            if self.tracking:
                raise FenceError(f"{what}: upsd has TRACKING on but gave no tracking id: its result cannot be known")
            return False

        def read():
            try:
                return self.client.get_tracking(tracking_id)
            except NutError as error:
                if error.code not in ("FAILED", "INVALID-ARGUMENT", "UNKNOWN"):
                    raise _TrackingAnswer(self._explain(error, f"{what}: reading its TRACKING result")) from None
                raise _TrackingAnswer(f"{what}: the driver reported {error.code} (TRACKING)") from None

        try:
            result = poll(read, lambda value: value != "PENDING", self.command_timeout, f"{what} (TRACKING)")
        except _TrackingAnswer:
            raise
        except FenceError:
            # The TRACKING wait is bounded by shell_timeout, not power_timeout.
            raise FenceError(f"{what}: the driver gave no TRACKING result within {self.command_timeout:g} s "
                             "(raise shell_timeout if the driver is slow to carry out commands)") from None
        log.debug("%s: %s", what, result)
        if result != "SUCCESS":
            raise FenceError(f"{what}: upsd answered {result!r} for its TRACKING result, not SUCCESS")
        return True

    def _devices(self):
        """The device `ups` names, else every device upsd serves."""
        if self.default_ups:
            return [self.default_ups]
        return sorted(self._call("listing devices", self.client.list_ups))

    def listing(self):
        devices = self._devices()
        result = {}
        for device in devices:
            for outlet, fields in self.outlets(device).items():
                ident = _ident(outlet) if self.default_ups else f"{device}:{_ident(outlet)}"
                alias = fields.get("desc") or fields.get("name") or ""
                state = fields.get("status", "").lower() or None
                result[ident] = (alias, state)
        return result

    def monitor(self):
        """upsd answers, the login is accepted as far as upsd lets a client
        find out, and every device (the `ups`, or all) has live data."""
        devices = self._devices()
        for device in devices:
            try:
                self.client.get_var(device, "device.type")
            except NutError as error:
                # A device without device.type still answered; stale data,
                # a missing driver or an unknown name did not.
                if error.code != "VAR-NOT-SUPPORTED":
                    raise FenceError(self._explain(error, f"reading {device}")) from None
        # upsd accepts any USERNAME/PASSWORD; the only side-effect-free check
        # of a password is SET on a variable no device has (see
        # NutClient.check_set_grant), and it is conclusive only for a user
        # that must have SET: the one fencing a device switched by writing
        # outlet.N.status.  For an instcmds-only user, upsd 2.8.0 offers no
        # probe that would not run a command.
        if self.username and self.default_ups and self._needs_set(self.default_ups):
            if not self._call(f"checking the login on {self.default_ups}", self.client.check_set_grant, self.default_ups):
                raise FenceError(
                    f"upsd denied user '{self.username}' SET on {self.default_ups}: wrong password, or "
                    f"[{self.username}] in upsd.users lacks `actions = SET` (its outlets are switched by "
                    f"writing outlet.N.status)"
                )

    def _needs_set(self, device):
        return any(
            f"{_prefix(outlet)}.load.off" not in self.commands(device) and self._switched_by_status(device, outlet)
            for outlet in self.outlets(device)
        )


def _prefix(outlet):
    """upsd's name of an outlet: `outlet.3`, or `device.2.outlet.3`."""
    return f"device.{outlet[0]}.outlet.{outlet[1]}" if isinstance(outlet, tuple) else f"outlet.{outlet}"


def _label(outlet):
    return f"unit {outlet[0]} outlet {outlet[1]}" if isinstance(outlet, tuple) else f"outlet {outlet}"


def _ident(outlet):
    """The plug that names an outlet of the default device: `3`, `2:3`."""
    return f"{outlet[0]}:{outlet[1]}" if isinstance(outlet, tuple) else str(outlet)


def _sort_key(outlet):
    return (0, outlet, 0) if isinstance(outlet, int) else (1, *outlet)


def _listed(items):
    return ", ".join(str(item) for item in items)


def _seconds(text, default):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    return value if value >= 0 else default


@contextmanager
def open_outlets(settings):
    """fence_nut's device: connected (TLS as the settings say), logged in
    when a user is set, closed afterwards."""
    with NutClient(settings).connect() as client:
        outlets = NutOutlets(client, settings.username, settings.ups, command_timeout=settings.timeout)
        try:
            if settings.username:
                outlets.login(settings.password)
            yield outlets
        finally:
            log.debug("upsd requests: %d", client.requests)
