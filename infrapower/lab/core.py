"""The lab's processes: one directory holds the rack's state, every
simulator's configuration, logs and PID files, so `down` stops exactly the
lab's own processes and nothing else on the machine."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# LabError and PeerGone live in lab/errors.py (rack.py raises them too);
# imported here because every simulator module takes them from core.
from infrapower.lab.errors import LabError, PeerGone  # noqa: F401
from infrapower.lab.rack import Rack

PORTS_FILE = "ports.json"
WAIT_INTERVAL = 0.05  # between checks of a peer starting up


def free_port(kind):
    """A port nobody listens on right now (`tcp` or `udp`) on 127.0.0.1."""
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_python():
    """The interpreter that runs the simulators: the lab's environment
    (it has snmpsim), which is the one running this code when the CLI or
    pytest drive the lab."""
    return os.environ.get("INFRAPOWER_LAB_PYTHON", sys.executable)


class Lab:
    """A lab directory and the processes started from it."""

    def __init__(self, directory):
        self.dir = Path(directory).resolve()
        self.rack = Rack(self.dir)

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    # -- ports ---------------------------------------------------------------

    def ports(self):
        try:
            return json.loads(self.path(PORTS_FILE).read_text())
        except FileNotFoundError:
            return {}

    def set_port(self, name, port):
        ports = self.ports()
        ports[name] = port
        self.path(PORTS_FILE).write_text(json.dumps(ports, indent=1, sort_keys=True))

    def port(self, name):
        try:
            return self.ports()[name]
        except KeyError:
            raise LabError(f"the lab in {self.dir} has no port for {name}: is it up?") from None

    # -- processes -----------------------------------------------------------

    def spawn(self, name, argv, env=None, cwd=None):
        """Start a simulator in its own session, output to logs/NAME.log,
        PID to pids/NAME.pid."""
        self.path("logs").mkdir(parents=True, exist_ok=True)
        self.path("pids").mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.update(env or {})
        # Simulators import the lab's own modules (state, tables).
        root = str(Path(__file__).resolve().parents[2])
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, full_env.get("PYTHONPATH")]))
        full_env["INFRAPOWER_LAB_DIR"] = str(self.dir)
        with open(self.path("logs", f"{name}.log"), "ab") as log:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd or self.dir,
                start_new_session=True,
            )
        self.path("pids", f"{name}.pid").write_text(str(proc.pid))
        return proc

    def pid(self, name):
        try:
            return int(self.path("pids", f"{name}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def alive(self, name):
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie of ours still answers kill(0); look closer.
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    def signal(self, name, signum):
        pid = self.pid(name)
        if pid is not None:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, name, grace=3.0):
        """Stop one simulator by its PID file (its whole session)."""
        pid = self.pid(name)
        if pid is None:
            return
        for signum in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.killpg(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while self.alive(name) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if self.alive(name):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _reap(pid)
        self.path("pids", f"{name}.pid").unlink(missing_ok=True)

    def process_names(self):
        return sorted(p.stem for p in self.path("pids").glob("*.pid")) if self.path("pids").exists() else []

    def stop_all(self):
        for name in self.process_names():
            self.stop(name)


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(check, deadline, what):
    """Poll `check()` until it returns truthy or the monotonic deadline
    passes; the last exception (if any) explains the failure.

    The polling itself is the agents' own (`infrapower.fence.poll`); this
    adapts it to the lab: an absolute deadline, a peer that may not be up
    yet (its exceptions are remembered, not raised, except PeerGone), and
    a LabError when time runs out."""
    # Imported here: the chassis_control program ipmi_sim runs on every
    # status request imports this module and never waits.
    from infrapower.errors import FenceError
    from infrapower.fence import poll

    last = None

    def read():
        nonlocal last
        try:
            return check()
        except PeerGone:
            raise
        except Exception as exc:  # the peer may not be up yet
            last = exc
            return None

    try:
        return poll(read, bool, deadline - time.monotonic(), what, interval=WAIT_INTERVAL)
    except FenceError:
        detail = f": {last}" if last else ""
        raise LabError(f"{what} not ready in time{detail}") from None
