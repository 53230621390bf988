"""What every agent of the pack does the same way around fencing.py.

fencing.py gives the option table, metadata, stdin parsing, the delay and
the *_script options.  Its action driver (fence_action) sleeps between
polls (power_wait, stonith_status_sleep) and prints Success for a reboot
whose power-on failed; the pack's agents use `run_action` instead: every
command is followed by reading the state back until it matches, within
power_timeout, and only a verified state is reported as success.
"""

import logging
import re
import sys
import time
import types

# Exit codes of the fence agent API.
EXIT_OK, EXIT_ERROR, EXIT_OFF = 0, 1, 2

# Each network exchange is bounded by shell_timeout (login_timeout for a
# login): fencing.py's defaults, 3 and 5 s.  Under pacemaker-fenced the
# library sets them (and power_timeout) to 0 = no limit, as pacemaker
# enforces its own; a single exchange still gets this bound.
DEFAULT_IO_TIMEOUT = 5.0
POLL_INTERVAL = 0.05


class FenceError(Exception):
    """A failure the user can act on: the message is one line saying what
    to change."""


class _DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module fencing.py imports but the agent
    may never use; the first attribute looked up imports the real one."""

    def __getattr__(self, attribute):
        real = sys.modules.get(self.__name__)
        if real is None or real is self:
            sys.modules.pop(self.__name__, None)
            __import__(self.__name__)
            real = sys.modules[self.__name__]
        return getattr(real, attribute)


# Modules fencing.py imports at load time that the pack's agents never use:
# pycurl serves only its HTTP helpers, and PyPI's pycurl 7.49 (its own
# libcurl and OpenSSL) costs ~20 ms, a fifth of a status.
DEFERRED_BY_DEFAULT = ("pycurl",)


class _MaskUnknownOptions(logging.Filter):
    """fencing.py warns of an option it does not know with the whole stdin
    line, value included, and Pacemaker logs the agent's stderr: a
    misspelt `pasword=...` would put the password in the cluster's logs.
    Its name stays (so the admin sees the typo), its value becomes ****."""

    PREFIX = "Parse error: Ignoring unknown option"

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith(self.PREFIX) and record.args:
            line = str(record.args[0])
            name, separator, _ = line.partition("=")
            record.args = (f"{name}{separator}****" if separator else line,) + tuple(record.args[1:])
        return True


def load_fencing(libdir, deferred=DEFERRED_BY_DEFAULT):
    """Import fence-agents' fencing.py from where the package put it;
    the `deferred` modules load on first use instead."""
    logging.getLogger().addFilter(_MaskUnknownOptions())
    for name in deferred:
        sys.modules.setdefault(name, _DeferredModule(name))
    if libdir not in sys.path:
        sys.path.append(libdir)
    try:
        import fencing
    except ImportError:
        sys.stderr.write(f"ERROR: fencing.py not found in {libdir}: install Debian's fence-agents package\n")
        sys.exit(EXIT_ERROR)
    return fencing


def timeout_option(options, name, default):
    """A timeout option in seconds; 0 or absent means `default` (forever is
    only for the verification loop, where pacemaker's timeout rules)."""
    try:
        value = float(options.get(name, 0) or 0)
    except ValueError:
        raise FenceError(f"{name} must be a number of seconds, not {options.get(name)!r}") from None
    return value if value > 0 else default


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


ASCII_NUMBER = re.compile(r"[0-9]+", re.ASCII)


def is_number(text):
    """An outlet number as an admin types it: ASCII digits only.  Python's
    str.isdigit and int() also take '３' (fullwidth) and '٣' (Arabic-Indic),
    which must not switch outlet 3."""
    return bool(ASCII_NUMBER.fullmatch(text))


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

    def status(self, plugs):  # -> {plug: state}
        raise NotImplementedError

    def check(self, plug, on):
        """Refuse (FenceError) a plug that cannot be switched, before any
        plug is touched: a node must not be left with one feed cut because
        its other feed was refused."""

    def switch(self, plug, on):
        raise NotImplementedError

    def listing(self):  # -> {id: (alias, state or None)}
        raise NotImplementedError

    def monitor(self):
        """Device reachable and credentials accepted; raise FenceError if not."""
        self.listing()

    def can_cycle(self):
        """Whether `cycle` exists (method=cycle); most devices have none."""
        return False

    def cycle(self, plug):
        """Tell the device to power-cycle one plug (off, then on by itself)."""
        raise NotImplementedError


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
    for plug in plugs:
        logging.debug("switching %s %s", plug, target)
        outlets.switch(plug, on)
    poll(
        lambda: outlets.status(plugs),
        lambda states: all(state == target for state in states.values()),
        timeout,
        f"power {target} not confirmed",
    )


def cycle_verified(outlets, plugs, timeout, before):
    """method=cycle: one command per plug, then read back until every plug
    has been seen without power (off, or pending on; `before` is what was
    read ahead of the command) and is on again.  A pending off or an
    unreadable state still counts as powered."""
    for plug in plugs:
        outlets.check(plug, False)
    for plug in plugs:
        logging.debug("power-cycling %s", plug)
        outlets.cycle(plug)
    # A plug found without power before the command has been seen down.
    went_down = {plug for plug, state in before.items() if state in ("off", "pending_on")}

    def done(states):
        went_down.update(plug for plug, state in states.items() if state in ("off", "pending_on"))
        return went_down == set(states) and all(state == "on" for state in states.values())

    poll(lambda: outlets.status(plugs), done, timeout, "power cycle not confirmed (never seen off, or not back on)")


def run_action(options, outlets, plugs):
    """The fence action on `plugs`; returns the exit code."""
    action = options["--action"]
    timeout = power_timeout(options)
    if action in ("list", "list-status"):
        separator = options.get("--separator", ",")
        for ident, (alias, state) in outlets.listing().items():
            fields = [str(ident), str(alias or "")]
            if action == "list-status":
                fields.append((state or "unknown").upper() if state in ("on", "off") else "UNKNOWN")
            print(separator.join(fields))
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


def main_guard(body):
    """Run an agent's body: FenceError becomes one ERROR line and exit 1;
    no traceback ever reaches the user (it goes to the debug log)."""
    try:
        code = body()
    except FenceError as error:
        logging.error("%s", error)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = EXIT_ERROR
    except Exception as error:  # last resort: the user gets one line
        logging.debug("unexpected failure", exc_info=True)
        logging.error("%s: %s", type(error).__name__, error)
        code = EXIT_ERROR
    sys.exit(code or 0)
