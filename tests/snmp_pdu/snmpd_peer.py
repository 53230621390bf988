"""net-snmp's snmpd (Debian package `snmpd`) as an SNMP peer independent of
pysnmp: started on 127.0.0.1 with the tests' own configuration, persistent
directory and an APC outlet table (snmpd_outlets.py via pass_persist);
one SNMPv3 user per auth × priv protocol fence_snmp_pdu offers.  Also a
UDP man in the middle to put between a client and it."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from infrapower.snmp.usm import AUTH_PROTOCOLS, PRIV_KEY_BYTES

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
OUTLETS_SCRIPT = Path(__file__).with_name("snmpd_outlets.py")
APC_SYSOID = ".1.3.6.1.4.1.318.1.3.4.4"  # apc_pdu (rPDU) in the generated tables
OUTLET_CONTROL = ".1.3.6.1.4.1.318.1.1.4.4.2.1.3"
COMMUNITY = "private"
NO_PDU_COMMUNITY = "nopdu"  # sees only MIB-2: a host that is no PDU
AUTH_KEY, PRIV_KEY = "auth-key-0123", "priv-key-4567"


def user_name(auth, priv=None):
    return "u_" + re.sub(r"[^a-z0-9]", "", auth.lower()) + (f"_{re.sub(r'[^a-z0-9]', '', priv.lower())}" if priv else "")


# Every combination fence_snmp_pdu offers: authPriv for auth × priv, authNoPriv per auth.
USERS = [(auth, priv) for auth in AUTH_PROTOCOLS for priv in PRIV_KEY_BYTES] + [(auth, None) for auth in AUTH_PROTOCOLS]


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Snmpd:
    """One snmpd with every USERS entry, `outlets` named outlets (all on)."""

    def __init__(self, directory, outlets=4):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.state_path = self.dir / "outlets.json"
        self.state_path.write_text(json.dumps({"outlets": {
            str(n): {"name": f"node{n}", "on": True} for n in range(1, outlets + 1)}}))
        self.config = self.dir / "snmpd.conf"
        self.config.write_text(self._config())
        self.process = None

    def _config(self):
        lines = [
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"sysObjectID {APC_SYSOID}",
            "sysDescr infrapower test snmpd",
            f"pass_persist .1.3.6.1.4.1.318.1.1.4 {sys.executable} {OUTLETS_SCRIPT} {self.state_path}",
            f"rwcommunity {COMMUNITY} 127.0.0.1",
            "view mib2 included .1.3.6.1.2.1",
            f"rocommunity {NO_PDU_COMMUNITY} 127.0.0.1 -V mib2",
        ]
        for auth, priv in USERS:
            name = user_name(auth, priv)
            lines.append(f"createUser {name} {auth} {AUTH_KEY}" + (f" {priv} {PRIV_KEY}" if priv else ""))
            lines.append(f"rwuser {name} {'priv' if priv else 'auth'}")
        return "\n".join(lines) + "\n"

    def start(self, ready_seconds=10):
        log = open(self.dir / "snmpd.log", "ab")
        # Not -C: that also skips the persistent file, where snmpd keeps its
        # engine ID and boots.  SNMPCONFPATH keeps /etc/snmp out instead.
        self.process = subprocess.Popen(
            [SNMPD, "-f", "-c", str(self.config), "-Lf", str(self.dir / "snmpd.log"),
             f"--persistentDir={self.dir / 'persistent'}", "-I", "-smux,mteTrigger,mteTriggerConf"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SNMPCONFPATH=str(self.dir / "persistent"), SNMP_PERSISTENT_DIR=str(self.dir / "persistent")))
        log.close()
        deadline = time.monotonic() + ready_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"snmpd exited: {(self.dir / 'snmpd.log').read_text()[-2000:]}")
            if self.snmpget(OUTLET_CONTROL + ".1", timeout=0.3) is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"snmpd did not answer within {ready_seconds} s")

    def stop(self):
        """Stop this snmpd (by its PID) and wait: it saves its persistent state then."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self):
        """A reboot of the engine: snmpEngineBoots goes up by one."""
        self.stop()
        return self.start()

    def snmpget(self, oid, timeout=2.0, community=COMMUNITY):
        """net-snmp's own client's answer (the value only), None if none."""
        try:
            result = subprocess.run(["snmpget", "-v2c", "-c", community, "-Oqv", "-t", str(timeout), "-r", "0",
                                     f"127.0.0.1:{self.port}", oid], capture_output=True, text=True, timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    def outlets_on(self):
        """{number: on} as the table's script holds it."""
        return {int(n): o["on"] for n, o in json.loads(self.state_path.read_text())["outlets"].items()}

    def set_outlet(self, number, on):
        state = json.loads(self.state_path.read_text())
        state["outlets"][str(number)]["on"] = on
        self.state_path.write_text(json.dumps(state))

    def persisted_users(self):
        """{user name: (auth key, priv key)} as snmpd localized them (the
        usmUser lines it saves at shutdown), bytes."""
        users = {}
        text = (self.dir / "persistent" / "snmpd.conf").read_text()
        for line in text.splitlines():
            if line.startswith("usmUser "):
                fields = line.split()
                # usmUser status storage engineID name secName cloneFrom authProto authKey privProto privKey public
                name = bytes.fromhex(fields[4][2:]).decode()
                users[name] = tuple(bytes.fromhex(field[2:]) if field.startswith("0x") else b"" for field in (fields[8], fields[10]))
        return users

    def engine_id(self):
        """snmpd's engine ID, from what it saved (oldEngineID)."""
        text = (self.dir / "persistent" / "snmpd.conf").read_text()
        return bytes.fromhex(re.search(r"^oldEngineID\s+0x([0-9a-fA-F]+)", text, re.M).group(1))


def agent_stdin(port, user=None, **extra):
    """fence_snmp_pdu's options as pacemaker-fenced passes them (stdin)."""
    options = {"ip": "127.0.0.1", "ipport": str(port)}
    if user is not None:
        auth, priv = user
        options.update({"snmp_version": "3", "username": user_name(auth, priv), "snmp_auth_prot": auth,
                        "password": AUTH_KEY, "snmp_sec_level": "authPriv" if priv else "authNoPriv"})
        if priv:
            options.update({"snmp_priv_prot": priv, "snmp_priv_passwd": PRIV_KEY})
    else:
        options["community"] = COMMUNITY
    options.update({key: str(value) for key, value in extra.items()})
    return "".join(f"{key}={value}\n" for key, value in options.items())


def run_agent(agent, port, user=None, timeout=30, **options):
    return subprocess.run([agent], input=agent_stdin(port, user, **options), capture_output=True, text=True, timeout=timeout)


class Proxy:
    """A UDP man in the middle on 127.0.0.1: datagrams from the client go
    to `server_port`, answers come back.  `on_request(data)` returns the
    datagrams to send the client first (forgeries) and whether to forward;
    `on_answer(data)` returns what to pass on instead (None: drop).  Every
    datagram seen is recorded in `requests` / `answers`."""

    def __init__(self, server_port, on_request=None, on_answer=None):
        self.server = ("127.0.0.1", server_port)
        self.on_request = on_request or (lambda data: ([], True))
        self.on_answer = on_answer or (lambda data: data)
        self.requests, self.answers = [], []
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(self.server)
        self.client = None
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=loop, daemon=True) for loop in (self._from_client, self._from_server)]
        for thread in self._threads:
            thread.start()

    def _from_client(self):
        self.front.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, self.client = self.front.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            self.requests.append(data)
            forgeries, forward = self.on_request(data)
            for forged in forgeries:
                self.front.sendto(forged, self.client)
            if forward:
                self.back.send(data)

    def _from_server(self):
        self.back.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = self.back.recv(65535)
            except (socket.timeout, OSError):
                continue
            self.answers.append(data)
            passed = self.on_answer(data)
            if passed is not None and self.client is not None:
                self.front.sendto(passed, self.client)

    def close(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.front.close()
        self.back.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()
