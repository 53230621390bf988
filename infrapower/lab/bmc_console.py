"""A client of ipmi_sim's emulator console: how the lab changes what a
running BMC shows (its PSU sensors)."""

import socket
import time

from infrapower.lab.errors import LabError


CONSOLE_TIMEOUT = 1.0


class Console:
    """ipmi_sim's emulator console (telnet-ish): one command per line,
    answered with an echo, optional `**error` lines and a `> ` prompt.
    ipmi_sim also copies its log (IPMI message dumps, "Session closed")
    to every console at any time, so answers are found by position (the
    prompt after our echo), never by "the buffer ends with a prompt"."""

    PROMPT = b"> "

    def __init__(self, port, timeout=CONSOLE_TIMEOUT):
        self.port = port
        self.timeout = timeout
        self.buffer = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self._read_until(lambda data: data.find(self.PROMPT))
            self.buffer = b""
        except BaseException:
            self.sock.close()
            raise

    def _read_until(self, find):
        """Read until find(buffer) >= 0, within `timeout` overall (a
        trickle of log lines must not keep us waiting forever)."""
        deadline = time.monotonic() + self.timeout
        while (position := find(self.buffer)) < 0:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise socket.timeout
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(4096)
            except socket.timeout:
                raise LabError(
                    f"BMC console on port {self.port}: no answer in {self.timeout} s, got {self.buffer[-300:]!r}"
                ) from None
            if not chunk:
                raise LabError(f"BMC console on port {self.port} closed the connection, got {self.buffer[-300:]!r}")
            self.buffer += chunk
        return position

    def run(self, command):
        echo = command.encode()
        self.buffer = b""
        self.sock.sendall(echo + b"\n")

        def prompt_after_echo(data):
            start = data.find(echo)
            return -1 if start < 0 else data.find(self.PROMPT, start + len(echo))

        prompt = self._read_until(prompt_after_echo)
        answer = self.buffer[self.buffer.find(echo) + len(echo):prompt].decode("latin-1")
        self.buffer = b""
        errors = [line.strip() for line in answer.splitlines() if line.strip().startswith("**")]
        if errors:
            raise LabError(f"BMC console on port {self.port}: {command!r} failed: {errors[0]}")
        return answer

    def close(self):
        self.sock.close()
