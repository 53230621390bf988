"""What the fence_nut tests share besides fixtures: running the installed
agent with options on stdin, the fencing user's options, and a TCP peer
that misbehaves on demand."""

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from infrapower.lab import nut

AGENT = Path(os.environ.get("FENCE_NUT", "/usr/sbin/fence_nut"))


class Run:
    def __init__(self, result, seconds):
        self.rc, self.out, self.err, self.seconds = result.returncode, result.stdout, result.stderr, seconds

    def __repr__(self):
        return f"rc={self.rc} in {self.seconds:.2f} s\nstdout: {self.out}\nstderr: {self.err}"


def run_agent(options, timeout=60):
    """fence_nut with `options` ({name: value}) on stdin; a Run."""
    text = "".join(f"{key}={value}\n" for key, value in options.items())
    started = time.monotonic()
    result = subprocess.run([str(AGENT)], input=text, capture_output=True, text=True, timeout=timeout)
    return Run(result, time.monotonic() - started)


def fencer(lab, **options):
    """Options for the lab's least-privilege fencing user."""
    base = {
        "ip": nut.HOST,
        "ipport": lab.port("upsd"),
        "username": nut.FENCER_USER,
        "password": nut.FENCER_PASSWORD,
        "power_timeout": 5,
    }
    base.update(options)
    return base


class FakeUpsd:
    """A TCP peer you control, for what a real upsd will not do on demand.

    mode "silent": accepts and never answers; "proxy": forwards to the real
    upsd until a client line starts with `cut_at`, then closes the
    connection ("close") or stops forwarding while holding it open
    ("hang").  `accepted` holds the time of each accept (time.monotonic)."""

    def __init__(self, upstream_port=None, cut_at=None, on_cut="close", starttls=None, inject=b""):
        """`starttls`, a man in the middle of STARTTLS: "inject" appends
        `inject` in clear text right after upsd's OK STARTTLS, then relays
        the TLS bytes both ways; "strip" answers ERR FEATURE-NOT-CONFIGURED
        itself and keeps relaying in clear.  `lines` holds every line the
        client sent in clear."""
        self.upstream_port, self.cut_at, self.on_cut = upstream_port, cut_at, on_cut
        self.starttls, self.inject = starttls, inject
        self.lines = []
        self.accepted = []
        self.listener = socket.create_server((nut.HOST, 0))
        self.listener.settimeout(0.1)  # so the accept loop sees close()
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.held = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self.held.append(conn)
            if self.upstream_port is not None:
                threading.Thread(target=self._proxy, args=(conn,), daemon=True).start()

    def _proxy(self, client):
        upstream = socket.create_connection((nut.HOST, self.upstream_port))
        self.held.append(upstream)

        def backwards():
            injected = False
            try:
                while data := upstream.recv(4096):
                    if self.starttls == "inject" and not injected and b"OK STARTTLS\n" in data:
                        # In the same segment as upsd's answer, as an
                        # attacker on the path would send it.
                        data = data.replace(b"OK STARTTLS\n", b"OK STARTTLS\n" + self.inject, 1)
                        injected = True
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=backwards, daemon=True).start()
        buffer = b""
        try:
            while data := client.recv(4096):
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.lines.append(line.decode(errors="replace"))
                    if line == b"STARTTLS" and self.starttls == "strip":
                        client.sendall(b"ERR FEATURE-NOT-CONFIGURED\n")
                        continue
                    if line == b"STARTTLS" and self.starttls == "inject":
                        upstream.sendall(line + b"\n")
                        # From here on the client speaks TLS: relay bytes.
                        if buffer:
                            upstream.sendall(buffer)
                        while data := client.recv(4096):
                            upstream.sendall(data)
                        upstream.shutdown(socket.SHUT_RDWR)
                        return
                    if self.cut_at and line.startswith(self.cut_at.encode()):
                        if self.on_cut == "close":
                            client.shutdown(socket.SHUT_RDWR)
                            client.close()
                        upstream.close()
                        return  # "hang": the client's socket stays open, silent
                    upstream.sendall(line + b"\n")
        except OSError:
            pass

    def close(self):
        self.stopping.set()
        self.listener.close()
        for sock in self.held:
            # shutdown first: close() alone leaves the connection open while
            # a relay thread is blocked in recv() on it, and upsd (single-
            # threaded) would wait for a TLS handshake on it forever.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
