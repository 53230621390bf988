"""Helpers of the scan tests: `infrapower scan` as a process, and relays
from a standard port of another loopback address to a lab peer's
random port of 127.0.0.1: nut-scanner only scans the standard ports
(161, 3493), so this is how it sees the lab's peers (root binds them)."""

import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

import infrapower

PACKAGE_ROOT = str(Path(infrapower.__file__).resolve().parent.parent)


def scan(*argv, env=None, timeout=60):
    """`infrapower scan ARGV` as a process, with this test's copy of the pack."""
    environment = {**os.environ, "PYTHONPATH": PACKAGE_ROOT, **(env or {})}
    return subprocess.run([sys.executable, "-m", "infrapower.cli.main", "scan", *argv], capture_output=True, text=True,
                          env=environment, timeout=timeout)


class UdpRelay:
    def __init__(self, host, port, target_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.target = ("127.0.0.1", target_port)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        upstream = {}  # client address -> socket towards the target
        while not self.stop:
            readable, _, _ = select.select([self.sock, *upstream.values()], [], [], 0.1)
            for sock in readable:
                try:
                    if sock is self.sock:
                        data, peer = self.sock.recvfrom(65535)
                        if peer not in upstream:
                            upstream[peer] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            upstream[peer].connect(self.target)
                        upstream[peer].send(data)
                    else:
                        data = sock.recv(65535)
                        peer = next(p for p, s in upstream.items() if s is sock)
                        self.sock.sendto(data, peer)
                except OSError:
                    continue
        for sock in upstream.values():
            sock.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


class TcpRelay:
    def __init__(self, host, port, target_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.target = ("127.0.0.1", target_port)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client):
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        with client, server:
            while not self.stop:
                readable, _, _ = select.select([client, server], [], [], 0.1)
                for sock in readable:
                    try:
                        data = sock.recv(65535)
                        if data:
                            (server if sock is client else client).sendall(data)
                    except OSError:
                        data = b""
                    if not data:
                        return

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()
