"""fence_nut's view of upsd: plugs resolved to device outlets, switched by
instant command, their results tracked, their states read back.

A plug is `OUTLET` on the default device or `DEVICE:OUTLET`; OUTLET is the
outlet number or what upsd calls it (`outlet.N.desc` or `outlet.N.name`).
A plug naming a device with no outlets (`ups1`, or `ups1:`) stands for the
device's whole load.
"""

import logging
import re

from infrapower.fence import FenceError, Outlets, poll
from infrapower.nut import NutError

OUTLET_VAR = re.compile(r"^outlet\.(\d+)\.(\w+)$")
WHOLE_LOAD = None


class NutOutlets(Outlets):
    def __init__(self, client, username, default_ups=None, command_timeout=5.0):
        self.client = client
        self.username = username
        self.default_ups = default_ups
        self.command_timeout = command_timeout
        self.tracking = None
        self._vars = {}
        self._commands = {}
        self._resolved = {}

    # -- what upsd knows -------------------------------------------------------

    def _call(self, what, func, *args):
        try:
            return func(*args)
        except NutError as error:
            raise FenceError(self._explain(error, what)) from None

    def _explain(self, error, what):
        if error.code == "UNKNOWN-UPS":
            try:
                known = ", ".join(sorted(self.client.list_ups())) or "none"
            except NutError:
                known = "unknown"
            return f"{what}: upsd has no such device (it has: {known}); check ups= or the plug"
        if error.code == "ACCESS-DENIED":
            return (
                f"{what}: upsd denied user '{self.username}': wrong password, or the user lacks "
                f"this command in upsd.users (instcmds = ...)"
            )
        return f"{what}: {error}"

    def variables(self, ups):
        if ups not in self._vars:
            self._vars[ups] = self._call(f"reading {ups}", self.client.list_var, ups)
        return self._vars[ups]

    def commands(self, ups):
        if ups not in self._commands:
            self._commands[ups] = set(self._call(f"reading commands of {ups}", self.client.list_cmd, ups))
        return self._commands[ups]

    def outlets(self, ups):
        """{number: {field: value}} of every outlet of `ups`."""
        result = {}
        for name, value in self.variables(ups).items():
            match = OUTLET_VAR.match(name)
            if match:
                result.setdefault(int(match.group(1)), {})[match.group(2)] = value
        # outlet.0 is NUT's "all outlets" pseudo-outlet on some PDUs.
        result.pop(0, None)
        return dict(sorted(result.items()))

    # -- plugs -------------------------------------------------------------------

    def resolve(self, plug):
        """(device, outlet number or WHOLE_LOAD) for a plug."""
        if plug in self._resolved:
            return self._resolved[plug]
        device, _, outlet = plug.rpartition(":")
        if not device:
            device, outlet = self.default_ups, plug
            if device is None:
                if plug in self._call("listing devices", self.client.list_ups):
                    device, outlet = plug, ""
                else:
                    raise FenceError(f"plug {plug!r} names no device: set ups= or write the plug as DEVICE:OUTLET")
        outlets = self.outlets(device)
        if outlet == "":
            resolved = (device, self._whole_load(device, outlets))
        elif outlet.isdigit() and int(outlet) in outlets:
            resolved = (device, int(outlet))
        else:
            wanted = outlet.casefold()
            matches = [
                number
                for number, fields in outlets.items()
                if wanted in (fields.get("desc", "").casefold(), fields.get("name", "").casefold())
            ]
            if len(matches) != 1:
                known = ", ".join(f"{n} ({f.get('desc') or f.get('name') or '-'})" for n, f in outlets.items())
                problem = "matches several outlets" if matches else "matches no outlet"
                raise FenceError(f"plug {plug!r} {problem} of {device} (outlets: {known or 'none'})")
            resolved = (device, matches[0])
        self._resolved[plug] = resolved
        return resolved

    def _whole_load(self, device, outlets):
        if outlets:
            raise FenceError(f"{device} has outlets: name one as {device}:OUTLET")
        missing = {"load.off", "load.on"} - self.commands(device)
        if missing:
            raise FenceError(f"{device} has no outlets and does not offer {', '.join(sorted(missing))}: it cannot be fenced")
        return WHOLE_LOAD

    def _state(self, device, outlet):
        if outlet is WHOLE_LOAD:
            status = self._call(f"reading {device}", self.client.get_var, device, "ups.status").split()
            return "off" if "OFF" in status else "on"
        value = self._call(f"reading {device} outlet {outlet}", self.client.get_var, device, f"outlet.{outlet}.status")
        return value.lower()

    # -- Outlets -----------------------------------------------------------------

    def status(self, plugs):
        return {plug: self._state(*self.resolve(plug)) for plug in plugs}

    def switch(self, plug, on):
        device, outlet = self.resolve(plug)
        target = "on" if on else "off"
        if outlet is WHOLE_LOAD:
            command = f"load.{target}"
        else:
            if self.outlets(device)[outlet].get("switchable", "yes").lower() == "no":
                raise FenceError(f"{device} outlet {outlet} is not switchable (outlet.{outlet}.switchable: no)")
            command = f"outlet.{outlet}.load.{target}"
        if command not in self.commands(device):
            raise FenceError(f"{device} does not offer {command} (upsd lists: {', '.join(sorted(self.commands(device))) or 'none'})")
        if self.tracking is None:
            self.tracking = self._call("enabling TRACKING", self.client.set_tracking, True)
        # No value argument: snmp-ups would write it straight into the PDU.
        tracking_id = self._call(f"{command} on {device}", self.client.instcmd, device, command)
        if tracking_id:
            self._await_tracking(device, command, tracking_id)

    def _await_tracking(self, device, command, tracking_id):
        """upsd's OK means only "passed to the driver"; TRACKING says whether
        the driver carried it out."""

        def read():
            try:
                return self.client.get_tracking(tracking_id)
            except NutError as error:
                raise FenceError(f"{command} on {device} failed in the driver ({error.code or error})") from None

        result = poll(read, lambda value: value != "PENDING", self.command_timeout, f"{command} on {device}")
        logging.debug("%s on %s: %s", command, device, result)

    def listing(self):
        devices = [self.default_ups] if self.default_ups else sorted(self._call("listing devices", self.client.list_ups))
        result = {}
        for device in devices:
            for number, fields in self.outlets(device).items():
                ident = str(number) if self.default_ups else f"{device}:{number}"
                alias = fields.get("desc") or fields.get("name") or ""
                state = fields.get("status", "").lower() or None
                result[ident] = (alias, state)
        return result

    def monitor(self):
        devices = [self.default_ups] if self.default_ups else sorted(self._call("listing devices", self.client.list_ups))
        for device in devices:
            try:
                self.client.get_var(device, "device.type")
            except NutError as error:
                # A device without device.type still answered; stale data,
                # a missing driver or an unknown name did not.
                if error.code != "VAR-NOT-SUPPORTED":
                    raise FenceError(self._explain(error, f"reading {device}")) from None
