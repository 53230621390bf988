"""A NUT driver program's life, as NUT 2.8.0's drivers/main.c lives it, for
drivers written in Python.

upsdrvctl runs `<driverpath>/<driver> [-D...] -a <section> [-r DIR] [-u USER]`
and waits for it to exit: a driver logs in to its device, opens its socket,
then forks to the background and the parent exits 0 (non-zero: upsdrvctl
says "Driver failed to start").  `upsdrvctl stop` sends SIGTERM to the PID
in `<NUT_ALTPIDPATH or NUT_STATEPATH>/<driver>-<section>.pid`.  The driver
reads its own section of `<NUT_CONFPATH>/ups.conf` (never argv: secrets
stay out of the process title).  NUT's standard options are honoured:
-a, -s, -x key=value, -D (debug, foreground), -F, -B, -q, -i, -u, -d
count (dump and exit), -k (refused: see the driver), -V, -h.

A driver plugs in as a `Device` (see below); this module does the rest:
options, ups.conf, user switch, PID file, socket (infrapower.nutdriver
.dstate), background, the loop, SIGTERM.
"""

import getopt
import logging
import logging.handlers
import os
import pwd
import signal
import stat
import sys
import threading
import time
from pathlib import Path

from infrapower.errors import ConfigError, InfrapowerError
from infrapower.nut.words import tokens
from infrapower.nutdriver import dstate

log = logging.getLogger(__name__)

# Debian's build of NUT 2.8.0 (`upsd -h`, `/lib/nut/snmp-ups -h`).
DEFAULT_CONFPATH, DEFAULT_STATEPATH, RUN_AS_USER = "/etc/nut", "/run/nut", "nut"
_DUPLICATE_GRACE = 5.0  # s a running instance gets to stop (main.c: 3 tries of 5 s)
_OPTIONS = "a:s:kFBDd:hx:Lqr:u:g:Vi:"  # drivers/main.c's getopt string
# What drivers/main.c handles itself in a ups.conf section, whatever the driver.
GENERIC_SETTINGS = frozenset({"driver", "port", "desc", "sdorder", "maxstartdelay", "nolock", "ignorelb",
                              "synchronous", "debug_min", "user", "group", "pollinterval", "sddelay"})


class DriverExit(InfrapowerError):
    """Why the driver stops at start-up: one line, exit status 1."""


def confpath():
    return os.environ.get("NUT_CONFPATH") or DEFAULT_CONFPATH


def statepath():
    return os.environ.get("NUT_STATEPATH") or DEFAULT_STATEPATH


def altpidpath():
    """common.c's altpidpath(): NUT_ALTPIDPATH, else NUT_STATEPATH, else the default."""
    return os.environ.get("NUT_ALTPIDPATH") or os.environ.get("NUT_STATEPATH") or DEFAULT_STATEPATH


def read_ups_conf(path, section):
    """({global key: value}, {key: value} of `section` or None) from a
    ups.conf in NUT's syntax (infrapower.nut.words); a lone flag has the
    value None; a later line wins, as in NUT."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    globals_, sections = {}, {}
    current = globals_
    for number, line in enumerate(text.splitlines(), start=1):
        words, _comment, open_quote = tokens(line, config=True)
        if open_quote:
            raise ConfigError(f"{path}:{number}: unterminated quote")
        if not words:
            continue
        if len(words) == 1 and words[0].startswith("[") and words[0].endswith("]"):
            current = sections.setdefault(words[0][1:-1], {})
        elif len(words) >= 3 and words[1] == "=":
            current[words[0]] = " ".join(words[2:])
        elif len(words) == 1:
            current[words[0]] = None
        else:
            raise ConfigError(f"{path}:{number}: expected `key = value`, `flag` or `[section]`")
    return globals_, sections.get(section)


class Device:
    """What a driver implements.  `init` and `first_poll` run before the
    fork (a failure there is a start-up failure); `start` runs in the
    background process and starts the device's own thread; afterwards the
    device calls `notify()` whenever `published()` or `finished()` has
    something new.  Everything but `start`, `published` and `finished` runs
    before the loop or in the device's thread."""

    name = "python-driver"
    version = "0"
    settings = frozenset()  # ups.conf keys of the driver's own
    sensitive = frozenset()  # never published as driver.parameter.*

    def init(self, config):
        """Check `config` (ups.conf section with -x overrides) and reach the device."""

    def first_poll(self):
        pass

    def start(self, notify):
        pass

    def stop(self):
        pass

    def published(self):
        return dstate.Published()

    def request(self, command, param, reply):
        """Run an instant command; `reply(code)` when done (any thread)."""
        reply(dstate.STAT_UNKNOWN)

    def shutdown(self):
        raise DriverExit(f"{self.name}: shutdown (-k) is not supported")


class Options:
    def __init__(self, argv):
        try:
            opts, rest = getopt.getopt(argv, _OPTIONS)
        except getopt.GetoptError as error:
            raise DriverExit(f"{error}; try -h for help") from None
        if rest:
            raise DriverExit("too many non-option arguments; try -h for help")
        self.section = self.upsname = None
        self.overrides, self.debug, self.background, self.quiet = {}, 0, None, 0
        self.user = self.dump = self.interval = None
        self.force_shutdown = self.help = self.version = self.list_vars = False
        for flag, value in opts:
            if flag == "-a":
                self.section = self.upsname = value
            elif flag == "-s":
                self.upsname = value
            elif flag == "-x":
                key, _, val = value.partition("=")
                self.overrides[key] = val if "=" in value else None
            elif flag == "-D":
                self.debug += 1
            elif flag in ("-F", "-B"):
                self.background = flag == "-B"
            elif flag == "-q":
                self.quiet += 1
            elif flag == "-u":
                self.user = value
            elif flag == "-d":
                self.dump = int(value)
            elif flag == "-i":
                self.interval = value
            elif flag == "-k":
                self.force_shutdown = True
            elif flag == "-h":
                self.help = True
            elif flag == "-V":
                self.version = True
            elif flag == "-L":
                self.list_vars = True
            # -r (chroot) and -g (group): accepted as upsdrvctl may pass them.
        if self.background is None:
            # As main.c: debugging or dumping stays in the foreground.
            self.background = not (self.debug or self.dump)


def _config(device, options):
    """The driver's settings: ups.conf's globals, then its section, then -x."""
    config = {}
    if options.section is not None:
        path = Path(confpath()) / "ups.conf"
        globals_, section = read_ups_conf(path, options.section)
        if section is None:
            raise DriverExit(f"Error: Section {options.section} not found in ups.conf ({path})")
        if "pollinterval" in globals_:
            config["pollinterval"] = globals_["pollinterval"]
        if "user" in globals_:
            config["user"] = globals_["user"]
        config.update(section)
    elif options.upsname is None:
        raise DriverExit("Error: specifying '-a id' or '-s id' is mandatory; try -h for help")
    if any(key in device.sensitive for key in options.overrides):
        # -x puts the value into argv, where every user of the machine reads it.
        raise DriverExit(f"Error: {', '.join(sorted(device.sensitive & set(options.overrides)))} "
                         "cannot be given with -x (it would show in the process list): put it in ups.conf")
    config.update(options.overrides)
    if options.interval is not None:
        config["pollinterval"] = options.interval
    unknown = sorted(set(config) - GENERIC_SETTINGS - device.settings)
    if unknown:
        raise DriverExit(f"Error: {options.upsname}: unknown setting {', '.join(unknown)} for {device.name} "
                         f"(it knows: {', '.join(sorted(device.settings))})")
    if not config.get("port"):
        raise DriverExit("Error: you must specify a port name in ups.conf or in '-x port=...'")
    return config


def _become(user):
    """Drop root for `user`, as NUT's become_user: the configured user,
    else NUT's `nut`; a non-root driver stays who it is."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise DriverExit(f"Error: user {user} not found: give one with -u or `user =` in ups.conf") from None
    os.setgid(entry.pw_gid)
    os.initgroups(entry.pw_name, entry.pw_gid)
    os.setuid(entry.pw_uid)


def _setup_logging(options, name):
    level = logging.DEBUG if options.debug else (logging.INFO if not options.quiet else logging.WARNING)
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{name}[%(process)d]: %(message)s"))
    root.addHandler(handler)


def _daemonize(name, pidfile):
    """main.c's background(): the parent exits 0 (upsdrvctl's signal that the
    driver started), the child goes on in a new session with stdio on
    /dev/null, so no pipe of upsdrvctl's caller stays open.  Logs go to
    syslog, and on to stderr when that is a log file.  The parent exits
    only once the PID file names the child: an `upsdrvctl stop` right after
    `start` must find the running driver, not the parent gone."""
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        os.read(ready_r, 1)
        os._exit(0)
    os.close(ready_r)
    os.setsid()
    _write_pid(pidfile)
    os.write(ready_w, b"x")
    os.close(ready_w)
    keep_stderr = False
    try:
        keep_stderr = stat.S_ISREG(os.fstat(2).st_mode)
    except OSError:
        pass
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if keep_stderr else (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    root = logging.getLogger()
    if not keep_stderr:
        for handler in list(root.handlers):
            root.removeHandler(handler)
    if os.path.exists("/dev/log"):
        syslog = logging.handlers.SysLogHandler("/dev/log")
        syslog.setFormatter(logging.Formatter(f"{name}[%(process)d]: %(message)s"))
        root.addHandler(syslog)


def _write_pid(path):
    path.write_text(f"{os.getpid()}\n")


def dump(published):
    """-d: what upsc would show, one `name: value` a line."""
    return "".join(f"{name}: {value}\n" for name, value in sorted(published.vars.items()))


class Loop:
    """The background process: the socket, the device's notifications
    (a pipe wakes the select), SIGTERM."""

    def __init__(self, device, path):
        self.device = device
        self.server = dstate.SocketServer(path, self.handle)
        self.current = device.published()
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        self.lock = threading.Lock()
        self.replies = []  # (connection, tracking id, code) from the device's thread

    def notify(self):
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:  # a wake-up is pending anyway
            pass

    def handle(self, conn, words):
        request = dstate.parse_request(words)
        if request is None:
            return
        if request.verb == "DUMPALL":
            self.server.send(conn, "".join(self.current.dump_lines()))
        elif request.verb == "PING":
            self.server.send(conn, "PONG\n")
        elif request.verb == "INSTCMD" and request.args:
            param = request.args[1] if len(request.args) > 1 else None

            def reply(code, conn=conn, tracking=request.tracking):
                if tracking is not None:
                    with self.lock:
                        self.replies.append((conn, tracking, code))
                    self.notify()

            self.device.request(request.args[0], param, reply)
        elif request.verb == "SET" and request.tracking is not None:
            self.server.send(conn, f"TRACKING {request.tracking} {dstate.STAT_INVALID}\n")

    def _woken(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        new = self.device.published()
        lines = self.current.change_lines(new)
        self.current = new
        if lines:
            self.server.broadcast("".join(lines))
        with self.lock:
            replies, self.replies = self.replies, []
        for conn, tracking, code in replies:
            # After the values: a SUCCESS comes once upsd has the read-back state.
            if conn.sock.fileno() in self.server.connections:
                self.server.send(conn, f"TRACKING {tracking} {code}\n")

    def run(self):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.server.watch(self.wake_r, self._woken)
        self.device.start(self.notify)
        try:
            while not self.stopping:
                self.server.poll(1.0)
        finally:
            # The socket first: upsd must see the driver gone at once, and
            # `upsdrvctl stop` SIGKILLs a driver still alive after 5 s, which
            # would leave the socket behind if the device took that long.
            self.server.close()
            self.device.stop()

    def _stop(self, signum, frame):
        log.info("Signal %d: exiting", signum)
        self.stopping = True
        self.notify()


def run(device, argv=None):
    """The driver program: returns its exit status (0, or 1 with one line)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = Options(argv)
        if options.help or options.version or options.list_vars:
            print(f"Network UPS Tools - {device.name} {device.version} (Python, fence-agents-infrapower)")
            if options.help:
                print(__doc__)
            if options.list_vars:
                print("\n".join(f"VALUE {key}" for key in sorted(device.settings)))
            return 0
        _setup_logging(options, device.name)
        config = _config(device, options)
        if options.force_shutdown:
            device.shutdown()
        # Secrets are read now, as root: the driver may run as `nut` next.
        device.init(config)
        _become(options.user or config.get("user") or RUN_AS_USER)
        pidfile = Path(altpidpath()) / f"{device.name}-{options.upsname}.pid"
        if not options.dump:
            os.chdir(statepath())
            _stop_duplicate(pidfile)
            _write_pid(pidfile)
        device.first_poll()
        if options.dump:
            print(dump(device.published()), end="", flush=True)
            return 0
        loop = Loop(device, dstate.socket_path(statepath(), device.name, options.upsname))
        loop.current = device.published()
        loop.server.open()
        if options.background:
            _daemonize(device.name, pidfile)  # the PID changes when backgrounding
        try:
            loop.run()
        finally:
            pidfile.unlink(missing_ok=True)
        return 0
    except InfrapowerError as error:
        print(f"{device.name}: {error}", file=sys.stderr, flush=True)
        return 1


def _stop_duplicate(pidfile):
    """main.c: a PID file naming a live driver means a second instance: stop it."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if pid == os.getpid():
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    log.warning("Duplicate driver instance detected (PID file %s exists)! Terminating other driver!", pidfile)
    # Until it is gone: on its way out it removes its socket and PID file,
    # which must not be ours by then.
    deadline = time.monotonic() + _DUPLICATE_GRACE
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise DriverExit(f"Error: the driver in {pidfile} (PID {pid}) did not stop")
