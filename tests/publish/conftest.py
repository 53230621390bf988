"""Fixtures of the publication tests: two network namespaces joined by a
veth pair.  The server side runs NUT's own upsd (/lib/nut/upsd) over
dummy-ups devices, listening on its veth address, and `infrapower publish`
beside it under a host name of its own (a UTS namespace); the client side
browses with python-zeroconf, with avahi-browse against an avahi-daemon of
its own (its own dbus-daemon, in a private mount namespace) and with
nut-scanner -A.  Everything started here is stopped by the finalisers."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from processes import POLL, run, stop_process, wait_for  # noqa: F401 (the tests import them from here)

REPO = Path(__file__).resolve().parents[2]
SERVER_ADDRESS, CLIENT_ADDRESS, PREFIX = "10.231.7.1", "10.231.7.2", 24
SERVER_ADDRESS6, CLIENT_ADDRESS6, PREFIX6 = "fd00:231::1", "fd00:231::2", 64  # a ULA, only in these namespaces
SERVER_HOST_NAME = "nutpub-server"
UPSD, DUMMY_UPS = "/lib/nut/upsd", "/lib/nut/dummy-ups"
NUT_PORT = 3493
SERVICE_TYPES = ("_nut._tcp", "_upsd._tcp")
# The interpreter that runs `infrapower publish` (default: the tests' own);
# e.g. one with Debian's older python-zeroconf, to check that one too.
PUBLISH_PYTHON = os.environ.get("INFRAPOWER_PUBLISH_PYTHON", sys.executable)




def pack_env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)


class Namespaces:
    """Two network namespaces and the veth pair between them."""

    def __init__(self, tag):
        suffix = f"{os.getpid()}{tag}"
        self.server, self.client = f"ipub-s-{suffix}", f"ipub-c-{suffix}"
        self.server_if, self.client_if = f"ipbs{suffix}"[-15:], f"ipbc{suffix}"[-15:]

    def create(self):
        for ns in (self.server, self.client):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", self.server_if, "netns", self.server, "type", "veth", "peer", "name", self.client_if,
            "netns", self.client)
        for ns, interface, address in ((self.server, self.server_if, SERVER_ADDRESS),
                                       (self.client, self.client_if, CLIENT_ADDRESS)):
            run("ip", "-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", interface)
        for ns, interface, address in ((self.server, self.server_if, SERVER_ADDRESS6),
                                       (self.client, self.client_if, CLIENT_ADDRESS6)):
            # nodad: usable at once (duplicate address detection takes ~1 s)
            run("ip", "-n", ns, "addr", "add", f"{address}/{PREFIX6}", "dev", interface, "nodad")
            run("ip", "-n", ns, "link", "set", interface, "up")
        return self

    def delete(self):
        for ns in (self.server, self.client):
            run("ip", "netns", "pids", ns, check=False)
            run("ip", "netns", "del", ns, check=False)

    def exec_argv(self, ns, *argv):
        return ["ip", "netns", "exec", ns, *argv]


class NutServer:
    """upsd and dummy-ups drivers in the server namespace, configured in a
    private NUT_CONFPATH; add_device() adds one as an admin would (ups.conf,
    the driver, upsd reloaded)."""

    def __init__(self, namespaces, directory, tls=False, ipv6=False):
        """upsd listens on loopback and the server's veth address: the IPv4
        one, or with `ipv6` the IPv6 one only."""
        self.ns = namespaces
        self.address = f"[{SERVER_ADDRESS6}]" if ipv6 else SERVER_ADDRESS
        self.conf, self.state = directory / "conf", directory / "state"
        for path in (self.conf, self.state):
            path.mkdir(mode=0o700)
        self.env = dict(os.environ, NUT_CONFPATH=str(self.conf), NUT_STATEPATH=str(self.state),
                        NUT_ALTPIDPATH=str(self.state))
        self.drivers, self.upsd, self.logs = {}, None, directory
        upsd_conf = (f"LISTEN ::1 {NUT_PORT}\nLISTEN {SERVER_ADDRESS6} {NUT_PORT}\n" if ipv6
                     else f"LISTEN 127.0.0.1 {NUT_PORT}\nLISTEN {SERVER_ADDRESS} {NUT_PORT}\n")
        if tls:
            upsd_conf += self._tls(directory)
        (self.conf / "upsd.conf").write_text(upsd_conf)
        (self.conf / "upsd.users").write_text("")
        (self.conf / "nut.conf").write_text("MODE=netserver\n")
        (self.conf / "ups.conf").write_text("")
        for name in ("upsd.conf", "upsd.users", "ups.conf"):
            os.chmod(self.conf / name, 0o640)

    @staticmethod
    def _tls(directory):
        """upsd.conf's lines for STARTTLS, with the lab's NSS database (a
        certificate this host's CAs do not know: offered, not verified)."""
        from infrapower.lab import nut

        class Place:  # what nut.make_tls needs of a lab: its directory
            def path(self, *parts):
                return directory.joinpath(*parts)

        nut.make_tls(Place())
        return f'CERTPATH {nut.tls_dir(Place()) / "nssdb"}\nCERTIDENT "{nut.TLS_NICKNAME}" "{nut.TLS_DB_PASSWORD}"\n'

    def _spawn(self, name, argv):
        log = open(self.logs / f"{name}.log", "ab")
        return subprocess.Popen(self.ns.exec_argv(self.ns.server, *argv), env=self.env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)

    def add_device(self, name, device_type, reload=True):
        (self.conf / f"{name}.dev").write_text(f"device.type: {device_type}\nups.status: OL\ndevice.mfr: Lab\n")
        with open(self.conf / "ups.conf", "a") as conf:
            conf.write(f"[{name}]\n  driver = dummy-ups\n  port = {name}.dev\n  desc = \"{device_type} {name}\"\n")
        self.drivers[name] = self._spawn(f"dummy-ups-{name}", [DUMMY_UPS, "-a", name, "-u", "root", "-F"])
        wait_for(lambda: (self.state / f"dummy-ups-{name}").exists() or self.drivers[name].poll() is not None,
                 20, f"dummy-ups {name}'s socket")
        assert self.drivers[name].poll() is None, (self.logs / f"dummy-ups-{name}.log").read_text()
        if reload and self.upsd is not None:
            self.upsd.send_signal(signal.SIGHUP)  # upsd re-reads ups.conf
            self.wait_devices()

    def devices(self):
        result = run(*self.ns.exec_argv(self.ns.server, "upsc", "-l", f"{self.address}:{NUT_PORT}"), check=False)
        return set(result.stdout.split()) if result.returncode == 0 else None

    def wait_devices(self):
        wanted = set(self.drivers)
        wait_for(lambda: self.devices() == wanted, 20, f"upsd serving {sorted(wanted)}")

    def start_upsd(self):
        self.upsd = self._spawn("upsd", [UPSD, "-F", "-u", "root"])
        self.wait_devices()

    def stop_upsd(self):
        stop_process(self.upsd)
        self.upsd = None

    def stop(self):
        self.stop_upsd()
        for process in self.drivers.values():
            stop_process(process)


class Publisher:
    """`infrapower publish` in the server namespace, under its own host
    name, from this checkout; its stderr goes to a log the tests read."""

    def __init__(self, launch, nut, directory, *options):
        """`launch`: the argv prefix that puts it in the server's namespaces."""
        self.log_path = directory / "publish.log"
        log = open(self.log_path, "ab")
        argv = [*launch, PUBLISH_PYTHON, "-m", "infrapower.cli.main", "publish", "--config-dir", str(nut.conf),
                "--interval", "0.5", *options]
        self.process = subprocess.Popen(argv, env=pack_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        cwd=REPO)

    def log(self):
        return self.log_path.read_text()

    def wait_log(self, text, seconds=30):
        return wait_for(lambda: self.log().count(text), seconds, f"{text!r} in the publisher's log:\n{self.log()}")

    def stop(self):
        stop_process(self.process)
        return self.process.returncode


class ZeroconfBrowser:
    """tests/publish/browse_zeroconf.py in the client namespace; `events`
    fills as it prints."""

    def __init__(self, namespaces, directory):
        argv = namespaces.exec_argv(namespaces.client, sys.executable, str(Path(__file__).with_name("browse_zeroconf.py")))
        self.stderr_path = directory / "browser.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                            text=True)
        self.events = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: self.events, 20, "the zeroconf browser to start")

    def _read(self):
        for line in self.process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "unreadable", "line": line})

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def views(self, host_name):
        """{service type: the newest resolved view of `host_name`'s
        service, or None (never seen, or removed since)}."""
        found = {kind: None for kind in SERVICE_TYPES}
        for event in list(self.events):
            kind = event.get("type", "").removesuffix(".local.")
            if kind in found and event["name"].startswith(host_name):
                if event["event"] == "removed":
                    found[kind] = None
                elif event["event"] in ("added", "updated"):
                    found[kind] = event
        return found

    def sees(self, host_name, devices):
        """The views, once both service types list exactly `devices`."""
        from infrapower.publish.txt import parse_devices

        found = self.views(host_name)
        return all(view and parse_devices(view["txt"]) == devices for view in found.values()) and found


@pytest.fixture(scope="module")
def browser(namespaces, tmp_path_factory):
    client = ZeroconfBrowser(namespaces, tmp_path_factory.mktemp("browser"))
    yield client
    client.stop()


def server_launch(namespaces):
    """Into the server's network namespace, under the server's host name."""
    return namespaces.exec_argv(namespaces.server, "unshare", "--uts", "sh", "-c",
                                f"hostname {SERVER_HOST_NAME} && exec \"$@\"", "sh")


class AvahiHost:
    """An avahi-daemon in a network namespace, with its own dbus-daemon,
    in a private mount namespace (and UTS namespace, for its host name)
    held by a `sleep` (tmpfs over /run/dbus and /run/avahi-daemon: the
    host's are untouched)."""

    def __init__(self, namespaces, ns, host_name=None):
        for path in ("/run/dbus", "/run/avahi-daemon"):
            os.makedirs(path, exist_ok=True)
        # An empty /etc/avahi/services too: the host's (NUT's static
        # nut.service among them) would publish the client as a NUT server.
        script = (f"hostname {host_name} && " if host_name else "") + (
                  "mount -t tmpfs tmpfs /run/dbus && mount -t tmpfs tmpfs /run/avahi-daemon && "
                  "mount -t tmpfs tmpfs /etc/avahi/services && "
                  "dbus-daemon --system --fork --print-pid && avahi-daemon -D --no-chroot --no-rlimits && "
                  "echo ready && exec sleep infinity")
        argv = namespaces.exec_argv(ns, "unshare", "--mount", "--uts", "--propagation", "private",
                                    "sh", "-c", script)
        self.holder = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        self.dbus_pid = None
        first = self.holder.stdout.readline().strip()
        if first.isdigit():
            self.dbus_pid = int(first)
        ready = self.holder.stdout.readline().strip()
        if ready != "ready":
            self.stop()
            raise AssertionError(f"avahi-daemon did not start in {ns}: {self.holder.stderr.read()}")

    def argv(self, *argv):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "-u", *argv]

    def run(self, *argv, timeout=60):
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=timeout)

    def stop(self):
        if self.holder.poll() is None:
            self.run("avahi-daemon", "-k", timeout=20)
        if self.dbus_pid:
            try:
                os.kill(self.dbus_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        stop_process(self.holder)


@pytest.fixture(scope="module")
def namespaces(request):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", "unshare", "nsenter", UPSD, DUMMY_UPS, "upsc"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool}")
    created = Namespaces(request.module.__name__.rpartition("_")[2][:2])
    try:
        yield created.create()
    finally:
        created.delete()


@pytest.fixture(scope="module")
def nut_server(namespaces, tmp_path_factory, request):
    """upsd with ups1 and pdu1; with STARTTLS when the module says NUT_TLS =
    True, on IPv6 when it says NUT_IPV6 = True."""
    server = NutServer(namespaces, tmp_path_factory.mktemp("publish-nut"), getattr(request.module, "NUT_TLS", False),
                       getattr(request.module, "NUT_IPV6", False))
    try:
        server.add_device("ups1", "ups", reload=False)
        server.add_device("pdu1", "pdu", reload=False)
        server.start_upsd()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def avahi_client(namespaces):
    if not (shutil.which("avahi-daemon") and shutil.which("dbus-daemon")):
        pytest.skip("needs avahi-daemon and dbus-daemon")
    client = AvahiHost(namespaces, namespaces.client)
    try:
        yield client
    finally:
        client.stop()
