"""The publisher through the host's avahi-daemon, which a Debian server
with avahi already runs as its one mDNS responder (two responders on one
host would fight over the host name).  Each service is one `avahi-publish
-s` process: avahi-daemon registers it under its own host name, and
withdraws it with goodbye packets when the process ends, however it ends
(a crash of the publisher leaves nothing stale behind)."""

import logging
import os
import select
import shutil
import signal
import subprocess
import time

from infrapower.errors import InfrapowerError

log = logging.getLogger(__name__)

ESTABLISHED = "Established under name '"
REGISTER_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def daemon_running():
    """Whether an avahi-daemon runs here (`avahi-daemon --check`: its PID
    file names a live process) and avahi-publish can reach it."""
    if not (shutil.which("avahi-daemon") and shutil.which("avahi-publish")):
        return False
    try:
        return subprocess.run(["avahi-daemon", "--check"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _host_name():
    """avahi-daemon's host name, which it may have changed after a conflict
    (host-2.local): asked over D-Bus, else the kernel's."""
    try:
        reply = subprocess.run(["dbus-send", "--system", "--print-reply=literal", "--dest=org.freedesktop.Avahi", "/",
                                "org.freedesktop.Avahi.Server.GetHostNameFqdn"],
                               capture_output=True, text=True, timeout=5)
        if reply.returncode == 0 and reply.stdout.strip():
            return reply.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from infrapower.publish.responder import local_host_name

    return f"{local_host_name()}.local"


class AvahiPublisher:
    kind = "avahi-daemon"

    def __init__(self, addresses):
        self.processes = {}  # (type, name, port) -> (Popen, the TXT it carries, the name avahi gave)
        self.host_name = _host_name()

    def _start(self, service):
        argv = ["avahi-publish", "-s", service.name, service.type, str(service.port)]
        argv += [f"{key}={value}" for key, value in service.txt]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        # Registered = avahi-daemon says so after probing the name.
        deadline = time.monotonic() + REGISTER_TIMEOUT
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            text = seen.decode("utf-8", "replace")
            if ESTABLISHED in text:
                name = text.split(ESTABLISHED, 1)[1].split("'", 1)[0]
                return process, name
        self._stop(process)
        last = seen.decode("utf-8", "replace").strip().splitlines()
        raise InfrapowerError(f"avahi-publish could not publish {service.type}: "
                              f"{last[-1] if last else 'no answer from avahi-daemon'} (is avahi-daemon running?)")

    @staticmethod
    def _stop(process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # avahi-publish frees its entry group: goodbye packets
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()

    def publish(self, services):
        """Start what is new; a changed TXT (avahi-publish cannot change one
        in place) or a dead process (avahi-daemon restarted) is published
        again; returns the names avahi gave."""
        names = []
        wanted = {(service.type, service.name, service.port) for service in services}
        for key in set(self.processes) - wanted:
            self._stop(self.processes.pop(key)[0])
        for service in services:
            key = (service.type, service.name, service.port)
            current = self.processes.get(key)
            if current and current[1] == service.txt and current[0].poll() is None:
                names.append(current[2])
                continue
            if current:
                self._stop(current[0])
                del self.processes[key]
            process, name = self._start(service)
            self.processes[key] = (process, service.txt, name)
            names.append(name)
        return names

    def alive(self):
        return all(process.poll() is None for process, _, _ in self.processes.values())

    def withdraw(self):
        for process, _, _ in self.processes.values():
            self._stop(process)
        self.processes.clear()

    def close(self):
        self.withdraw()
