"""The one entry point of every agent of the pack: fencing.py's plumbing
(option table, stdin/argv, metadata and docs, the delay, validate-all,
the *_script options), the verified action (infrapower.fence.run_action),
exit codes and one-line errors.  An agent file holds only its option
table, its docs and a factory from options to its device (an `Agent`).
"""

import logging
import sys
import types

from infrapower.errors import InfrapowerError
from infrapower.fence import EXIT_ERROR, EXIT_OK, plugs_from, run_action

log = logging.getLogger(__name__)


# fencing.py options for its own action driver's fixed sleeps and retries;
# run_action polls instead, so no agent of the pack honours them, and its
# metadata (what `pcs stonith describe` shows) does not offer them.
NOT_HONOURED = ("power_wait", "stonith_status_sleep", "retry_on")


class Agent:
    """What makes one agent.

    `device_opt`: fencing.py's option names the agent offers; `options`:
    its own entries of fencing.py's option table; `adjust(all_opt)`:
    changes to fencing.py's own entries (defaults, help, choices);
    `hidden`: options fencing.py would add that the agent does not honour
    (kept out of its metadata); `settings(options)`: the typed settings
    (validation, before any delay or I/O); `open_device(settings, options)`:
    a context manager yielding the `infrapower.fence.Outlets` to act on."""

    # A plain class, not a dataclass: `dataclasses` (with `inspect`) costs
    # ~5 ms of every run, a tenth of `-o metadata`.
    def __init__(self, device_opt, docs, settings, open_device, options=None, adjust=None, hidden=()):
        self.device_opt, self.docs = device_opt, docs
        self.settings, self.open_device = settings, open_device
        self.options, self.adjust, self.hidden = options or {}, adjust, hidden


def main(agent, fence_libdir):
    """Run `agent` as fencing.py's agents run: never returns."""
    fencing = load_fencing(fence_libdir)
    import atexit

    atexit.register(fencing.atexit_handler)
    fencing.all_opt.update(agent.options)
    if agent.adjust:
        agent.adjust(fencing.all_opt)
    hidden = set(NOT_HONOURED) | set(agent.hidden)
    for dependencies in fencing.DEPENDENCY_OPT.values():
        dependencies[:] = [name for name in dependencies if name not in hidden]
    device_opt = list(agent.device_opt)
    # other_conditions: validate-all comes back here, so that the agent's
    # own checks (agent.settings) run for it too.
    options = fencing.check_input(device_opt, fencing.process_input(device_opt), other_conditions=True)
    fencing.show_docs(options, agent.docs)
    main_guard(lambda: _act(agent, fencing, options))


def _act(agent, fencing, options):
    plugs = plugs_from(options)  # a malformed plug is refused before any I/O
    settings = agent.settings(options)
    if options["--action"] == "validate-all":
        return EXIT_OK
    fencing.run_delay(options)
    with agent.open_device(settings, options) as device:
        return run_action(options, device, plugs)


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


def main_guard(body):
    """Run an agent's body: FenceError becomes one ERROR line and exit 1;
    no traceback ever reaches the user (it goes to the debug log)."""
    try:
        code = body()
    except InfrapowerError as error:
        # The root logger, as fencing.py's own messages: the same one-line
        # form ("ERROR: ...") for every error a user sees.
        logging.error("%s", error)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = EXIT_ERROR
    except Exception as error:  # last resort: the user gets one line
        log.debug("unexpected failure", exc_info=True)
        logging.error("%s: %s", type(error).__name__, error)
        code = EXIT_ERROR
    sys.exit(code or 0)
