"""The safety core every agent shares: a fence action on plugs, each
command followed by reading the state back until it matches, within
power_timeout; only a verified state is reported as success.

fencing.py's own action driver (fence_action) sleeps between polls
(power_wait, stonith_status_sleep) and prints Success for a reboot whose
power-on failed; the pack's agents use `run_action` instead.  Devices
implement `Outlets`; infrapower.agent wires it to fencing.py.  This module
does no I/O of its own and is unit-tested against a fake device
(tests/unit).
"""

import logging
import time

from infrapower.errors import FenceError
from infrapower.options import timeout_option

log = logging.getLogger(__name__)

# Exit codes of the fence agent API.
EXIT_OK, EXIT_ERROR, EXIT_OFF = 0, 1, 2

POLL_INTERVAL = 0.05


def power_timeout(options):
    """How long to wait for a state to be reached; None = no limit."""
    return timeout_option(options, "--power-timeout", None)


def plugs_from(options):
    """The plugs of `plug`/`port`, split the way fencing.py documents
    (plug_separator, default ",").  Refused before any I/O: an empty plug
    (`1,,2`, a trailing separator), blanks around a plug, control
    characters.  A plug that is not exactly what the admin meant must not
    switch an outlet that merely looks like it; each agent then checks the
    plug's own grammar (numbers are ASCII digits only)."""
    text = options.get("--plug", "")
    if not text:
        return []
    separator = options.get("--plug-separator") or ","
    plugs = text.split(separator)
    for plug in plugs:
        if not plug:
            raise FenceError(f"plug {text!r} has an empty element: write plugs as OUTLET{separator}OUTLET with nothing between separators")
        if plug != plug.strip():
            raise FenceError(f"plug {plug!r} has blanks around it: write it without them")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in plug):
            raise FenceError(f"plug {plug!r} holds a control character")
    return plugs


def is_number(text):
    """An outlet number as an admin types it: ASCII digits only.  Python's
    str.isdigit and int() also take '３' (fullwidth) and '٣' (Arabic-Indic),
    which must not switch outlet 3."""
    return text.isascii() and text.isdigit()


def poll(read, accept, timeout, what, interval=POLL_INTERVAL):
    """Call `read()` until `accept(value)`; returns the value.  Raises
    FenceError naming `what` and the last value seen when time runs out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = read()
        if accept(value):
            return value
        if deadline is not None and time.monotonic() >= deadline:
            raise FenceError(f"{what}: still {describe(value)} after {timeout:g} s (raise power_timeout if the device is slow)")
        time.sleep(interval)


def describe(value):
    if isinstance(value, dict):
        return ", ".join(f"{plug} {state}" for plug, state in value.items())
    return str(value)


class Outlets:
    """What an agent implements for `run_action`: plugs in, states out.
    States are "on", "off", or anything else (pending, unknown) while the
    device is getting there.

    `reads_are_live`: whether `status` reads the device itself.  Where it
    may serve a cached value (upsd serves its driver's last poll), a state
    read before a command proves nothing: every on/off is sent even when
    the state already looks right, and `status` must only report a state
    read after the command reached the device (see NutOutlets)."""

    reads_are_live = True
    # The plugs an agent without a plug option acts on (a BMC's chassis).
    implicit_plugs = ()

    def status(self, plugs):  # -> {plug: state}
        raise NotImplementedError

    def check(self, plug, on):
        """Refuse (FenceError) a plug that cannot be switched, before any
        plug is touched: a node must not be left with one feed cut because
        its other feed was refused."""

    def switch(self, plug, on):
        raise NotImplementedError

    def switch_all(self, plugs, on):
        """Command every plug (after `check` passed for all): one `switch`
        each, unless the device can do them in one request."""
        for plug in plugs:
            log.debug("switching %s %s", plug, "on" if on else "off")
            self.switch(plug, on)

    def listing(self):  # -> {id: (alias, state or None)}
        raise NotImplementedError

    def listing_rows(self, with_state):
        """The fields of each line of list / list-status."""
        for ident, (alias, state) in self.listing().items():
            fields = [str(ident), str(alias or "")]
            if with_state:
                fields.append(state.upper() if state in ("on", "off") else "UNKNOWN")
            yield fields

    def status_details(self):
        """Lines `status` prints after its Status line."""
        return []

    def extra_action(self, action):
        """An action of this device's own (fence_ipmi_psu's diag): its exit
        code, or None when `action` is not one."""
        return None

    def monitor(self):
        """Device reachable and credentials accepted; raise FenceError if not."""
        self.listing()

    def can_cycle(self):
        """Whether `cycle` exists (method=cycle); most devices have none."""
        return False

    def cycle(self, plug):
        """Tell the device to power-cycle one plug (off, then on by itself)."""
        raise NotImplementedError

    def cycle_all(self, plugs):
        """Power-cycle every plug (after `check` passed for all): one
        `cycle` each, unless the device can start them in one request
        (then the feeds also go down together)."""
        for plug in plugs:
            log.debug("power-cycling %s", plug)
            self.cycle(plug)


def overall(states):
    """A node is on while any of its plugs is on; off only when all are off."""
    values = set(states.values())
    if "on" in values:
        return "on"
    if values == {"off"}:
        return "off"
    return "unknown"


def switch_verified(outlets, plugs, on, timeout):
    """Command every plug, then read them all back until every one reached
    the target: a node with two feeds is off only when both are."""
    target = "on" if on else "off"
    for plug in plugs:
        outlets.check(plug, on)
    outlets.switch_all(plugs, on)
    poll(
        lambda: outlets.status(plugs),
        lambda states: all(state == target for state in states.values()),
        timeout,
        f"power {target} not confirmed",
    )


def cycle_verified(outlets, plugs, timeout, before):
    """method=cycle: one command per plug (one request for all where the
    device can: cycle_all), then read back until one read
    has found every plug without power at once (off, or pending on) and a
    later one every plug on again.  A node with two feeds lost power only
    if both were down in the same read: each plug seen down in a read of
    its own proves nothing (the cycles may not overlap).  A pending off or
    an unreadable state still counts as powered.  `before`, read ahead of
    the command, counts only if every plug was down in it."""
    for plug in plugs:
        outlets.check(plug, False)
    outlets.cycle_all(plugs)

    def all_down(states):
        return all(state in ("off", "pending_on") for state in states.values())

    seen_down = [all_down(before) and set(before) == set(plugs)]

    def done(states):
        if all_down(states):
            seen_down[0] = True
        return seen_down[0] and all(state == "on" for state in states.values())

    poll(lambda: outlets.status(plugs), done, timeout, "power cycle not confirmed (never seen off, or not back on)")


def run_action(options, outlets, plugs):
    """The fence action on `plugs`; returns the exit code."""
    action = options["--action"]
    timeout = power_timeout(options)
    plugs = plugs or list(outlets.implicit_plugs)
    own = outlets.extra_action(action)
    if own is not None:
        return own
    if action in ("list", "list-status"):
        separator = options.get("--separator", ",")
        for fields in outlets.listing_rows(action == "list-status"):
            print(separator.join(field.replace(separator, " ") for field in fields))
        return EXIT_OK
    if action == "monitor":
        outlets.monitor()
        return EXIT_OK
    if not plugs:
        raise FenceError("no plug given: set plug (or port) to the outlet(s) feeding the node")
    states = outlets.status(plugs)
    if action == "status":
        state = overall(states)
        if state not in ("on", "off"):
            raise FenceError(f"unknown power state: {describe(states)}")
        print(f"Status: {state.upper()}")
        for line in outlets.status_details():
            print(line)
        return EXIT_OK if state == "on" else EXIT_OFF
    if action in ("on", "off"):
        target = action
        if outlets.reads_are_live and all(state == target for state in states.values()):
            print(f"Success: Already {target.upper()}")
            return EXIT_OK
        switch_verified(outlets, plugs, target == "on", timeout)
        print(f"Success: Powered {target.upper()}")
        return EXIT_OK
    if action == "reboot" and str(options.get("--method", "onoff")).lower() == "cycle":
        if not outlets.can_cycle():
            raise FenceError("method=cycle: this device has no power-cycle command; use method=onoff")
        if overall(states) == "off":
            # Devices refuse to cycle what is off (fence-agents#596), and
            # the node is fenced already: power it on.
            switch_verified(outlets, plugs, True, timeout)
        else:
            cycle_verified(outlets, plugs, timeout, states)
        print("Success: Rebooted")
        return EXIT_OK
    if action == "reboot":
        if not outlets.reads_are_live or any(state != "off" for state in states.values()):
            switch_verified(outlets, plugs, False, timeout)
        try:
            switch_verified(outlets, plugs, True, timeout)
        except FenceError as error:
            raise FenceError(f"node fenced (every plug verified off) but it did not come back on: {error}") from None
        print("Success: Rebooted")
        return EXIT_OK
    raise FenceError(f"action {action} is not supported by this agent")
