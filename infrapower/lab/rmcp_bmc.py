"""A test BMC speaking RMCP+ (IPMI 2.0) itself, for what ipmi_sim lacks:
the SHA-256 cipher suite 17 (ipmi_sim speaks 1-3 only), and faults on the
wire a real BMC never shows on demand (tampered RAKP and integrity codes,
replayed answers, wrong digests, a downgraded Open Session answer).

It is a peer for the reference client first: `ipmitool -I lanplus -C 17`
(and -C 3) logs in and switches its chassis, which proves the key
derivation the pack shares with it (infrapower.ipmi.rmcp's pure
functions) is the one real clients use.  Then fence_ipmi_psu is tested
against it.

What it answers: Get Channel Authentication Capabilities (IPMI 1.5
framing, before any session), Open Session, RAKP 1-4, and in a session
(integrity and AES-CBC-128 as the suite says) Set Session Privilege
Level, Get Device ID, Get Chassis Status, Chassis Control, Close Session;
any other command gets completion code 0xC1 (invalid command), as BMCs
answer what they lack.  Chassis power is its own state (no rack behind).

Run in a thread by tests (`with RmcpBmc(...) as bmc:`), faults switched
per test through `bmc.faults`, or as a process:
`python -m infrapower.lab.rmcp_bmc --port 6230 --user admin:PASSWORD:4`.
"""

import argparse
import hmac
import os
import select
import socket
import struct
import threading
import time

from infrapower.ipmi.rmcp import (
    CIPHER_SUITES,
    OPEN_SESSION_REQUEST,
    OPEN_SESSION_RESPONSE,
    RAKP1,
    RAKP2,
    RAKP3,
    RAKP4,
    ReplayWindow,
    pre_session_packet,
    rakp2_code,
    rakp3_code,
    rakp4_code,
    session_keys,
    unwrap_session_packet,
    wrap_session_packet,
)
from infrapower.ipmi.session import NETFN_APP, NETFN_CHASSIS

SUITES = (1, 2, 3, 17)
ADMINISTRATOR, OPERATOR, USER = 4, 3, 2
_RMCP = bytes([0x06, 0x00, 0xFF, 0x07])
_AUTH_NONE, _AUTH_RMCP_PLUS = 0x00, 0x06
_BMC_ADDRESS = 0x20
# RMCP+ status codes (§13.24) the BMC answers with.
_NO_MATCHING_SUITE, _UNAUTHORIZED_ROLE, _UNAUTHORIZED_NAME = 0x11, 0x09, 0x0D
_INVALID_INTEGRITY_VALUE = 0x0F
# Completion codes.
_OK, _INVALID_COMMAND, _INSUFFICIENT_PRIVILEGE, _LEVEL_NOT_AVAILABLE = 0x00, 0xC1, 0xD4, 0x81
# Faults a test switches on in `bmc.faults` (a set of these names).
FAULTS = {
    "rakp2_code": "RAKP 2's key exchange code has a flipped byte",
    "rakp2_sha1": "RAKP 2's code is HMAC-SHA1 in a SHA-256 suite (a wrong digest)",
    "rakp4_code": "RAKP 4's integrity check value has a flipped byte",
    "digest_constants": "K1/K2 from digest-long constants (32 bytes for SHA-256), the pre-fix client's bug",
    "integrity_code": "every session answer's AuthCode has a flipped byte",
    "unsigned": "session answers are sent without integrity code or encryption",
    "downgrade": "Open Session answers with no integrity and no confidentiality",
    "replay": "before each answer, the first answer ever sent to the same (netfn, cmd, rq_seq) is replayed",
    "duplicate": "every session answer is sent twice",
    "ignore_on": "Chassis Control answers success to power on and cycle, and the chassis stays off",
    "ignore_off": "Chassis Control answers success to power off, and the chassis stays on",
    "silent": "nothing is answered",
}


class RmcpBmc:
    """One simulated BMC on a UDP port of 127.0.0.1 (port 0: a free one).
    `users`: {name: (password, highest privilege level)}; `kg`: the BMC
    key (None: the user's password); `suites`: the cipher suites offered."""

    def __init__(self, users, *, host="127.0.0.1", port=0, suites=SUITES, kg=None, powered=True,
                 power_delay=0.0):
        self.users = {name.encode(): (password.encode(), level) for name, (password, level) in users.items()}
        self.suites = tuple(suites)
        self.kg = kg
        self.guid = os.urandom(16)
        self.powered = powered
        self.power_delay = power_delay  # seconds between Chassis Control and the power change
        self.faults = set()
        # A test's hook on every batch of outbound datagrams (e.g. a fuzzer
        # sending mutated copies first): datagrams in, datagrams out.
        self.mangle = None
        self.power_log = []  # "on"/"off", each change of chassis power
        self.commands = []  # (netfn, cmd) of every authenticated request served
        self.logins = 0  # sessions that completed RAKP 4
        self._pending = []  # (monotonic due, powered)
        self._sessions = {}  # BMC session id -> _BmcSession
        self._sent = {}  # (netfn, cmd, rq_seq) -> first packet sent, for the replay fault
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = None

    # -- life cycle -------------------------------------------------------

    def __enter__(self):
        self._thread = threading.Thread(target=self.serve, name=f"rmcp-bmc:{self.port}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()

    def serve(self):
        while not self._stop.is_set():
            self._apply_due_power()
            readable, _, _ = select.select([self._sock], [], [], 0.02)
            if not readable:
                continue
            try:
                data, peer = self._sock.recvfrom(4096)
            except OSError:
                continue
            if "silent" in self.faults:
                continue
            answers = self.handle(data)
            if self.mangle is not None and answers:
                answers = self.mangle(answers)
            for answer in answers:
                self._sock.sendto(answer, peer)

    def handle(self, data):
        """The datagrams answering one inbound datagram (none for what a
        BMC drops).  Any malformed input is dropped, never raised."""
        try:
            if len(data) < 5 or data[0] != 0x06 or data[3] & 0x1F != 0x07:
                return []
            if data[4] == _AUTH_NONE:
                return self._ipmi15(data)
            if data[4] != _AUTH_RMCP_PLUS or len(data) < 16:
                return []
            payload_type = data[5] & 0x3F
            session_id, _, length = struct.unpack_from("<IIH", data, 6)
            if payload_type == 0 and session_id:
                return self._session_message(data, session_id)
            body = data[16:16 + length]
            handler = {OPEN_SESSION_REQUEST: self._open_session, RAKP1: self._rakp1,
                       RAKP3: self._rakp3}.get(payload_type)
            return [] if handler is None or session_id else handler(body)
        except (IndexError, struct.error, ValueError, KeyError):
            return []

    # -- chassis ----------------------------------------------------------

    def _apply_due_power(self):
        now = time.monotonic()
        for due, powered in [item for item in self._pending if item[0] <= now]:
            self._pending.remove((due, powered))
            self._set_power(powered)

    def _set_power(self, powered):
        if powered != self.powered:
            self.powered = powered
            self.power_log.append("on" if powered else "off")

    def _chassis_control(self, request):
        if request in (0x01, 0x02) and "ignore_on" in self.faults or request == 0x00 and "ignore_off" in self.faults:
            return
        now = time.monotonic()
        if request == 0x00:
            self._pending.append((now + self.power_delay, False))
        elif request == 0x01:
            self._pending.append((now + self.power_delay, True))
        elif request == 0x02 and self.powered:
            self._pending.append((now + self.power_delay, False))
            self._pending.append((now + self.power_delay + 0.2, True))
        self._apply_due_power()

    def _command(self, session, netfn, command, data):
        """(completion code, data) of one request in a session."""
        if (netfn, command) == (NETFN_APP, 0x3B):  # Set Session Privilege Level
            wanted = data[0] & 0x0F
            if wanted == 0:
                return _OK, bytes([session.privilege])
            if wanted > session.highest:
                return _LEVEL_NOT_AVAILABLE, b""
            session.privilege = wanted
            return _OK, bytes([wanted])
        if (netfn, command) == (NETFN_APP, 0x01):  # Get Device ID
            return _OK, bytes([0x20, 0x81, 0x01, 0x00, 0x02, 0xBF, 0x00, 0x00, 0x00, 0x01, 0x00])
        if (netfn, command) == (NETFN_APP, 0x3C):  # Close Session
            self._sessions.pop(session.bmc_sid, None)
            return _OK, b""
        if (netfn, command) == (NETFN_CHASSIS, 0x01):  # Get Chassis Status
            return _OK, bytes([0x01 if self.powered else 0x00, 0x00, 0x00])
        if (netfn, command) == (NETFN_CHASSIS, 0x02):  # Chassis Control
            if session.privilege < OPERATOR:
                return _INSUFFICIENT_PRIVILEGE, b""
            if data[0] & 0x0F not in (0x00, 0x01, 0x02, 0x03, 0x05):
                return _INVALID_COMMAND, b""
            self._chassis_control(data[0] & 0x0F)
            return _OK, b""
        return _INVALID_COMMAND, b""

    # -- before a session: IPMI 1.5 framing (§13.6) ----------------------------

    def _ipmi15(self, data):
        """Get Channel Authentication Capabilities, the one command asked
        outside a session (ipmitool asks it first)."""
        if len(data) < 14:
            return []
        message = data[14:14 + data[13]]
        request = _parse_request(message)
        if request is None:
            return []
        netfn, command, data_bytes, _ = request
        if (netfn, command) != (NETFN_APP, 0x38):
            return []
        # Channel 1; RMCP+ and IPMI 2.0 extended data; non-null user names;
        # KG status when a BMC key is set; IPMI 1.5 and 2.0 connections.
        reply = bytes([0x01, 0x80, 0x04 | (0x20 if self.kg else 0), 0x02 if data_bytes[0] & 0x80 else 0x00,
                       0, 0, 0, 0])
        answer = _response(message, _OK, reply)
        return [_RMCP + struct.pack("<BIIB", _AUTH_NONE, 0, 0, len(answer)) + answer]

    # -- session set-up (§13.17-13.31) ------------------------------------

    def _open_session(self, body):
        tag, wanted, console_sid = body[0], body[1] & 0x0F, struct.unpack_from("<I", body, 4)[0]
        algorithms = (body[12] & 0x3F, body[20] & 0x3F, body[28] & 0x3F)
        number = next((n for n in self.suites if _algorithms(CIPHER_SUITES[n]) == algorithms), None)
        if number is None:
            return [pre_session_packet(OPEN_SESSION_RESPONSE, bytes([tag, _NO_MATCHING_SUITE, 0, 0])
                                       + struct.pack("<I", console_sid))]
        suite = CIPHER_SUITES[number]
        bmc_sid = struct.unpack("<I", os.urandom(4))[0] | 1
        self._sessions[bmc_sid] = _BmcSession(suite, bmc_sid, console_sid)
        announced = (0, 0, 0) if "downgrade" in self.faults else algorithms
        answer = bytes([tag, 0, wanted or ADMINISTRATOR, 0]) + struct.pack("<II", console_sid, bmc_sid)
        for kind, algorithm in enumerate(announced):
            answer += bytes([kind, 0, 0, 8, algorithm, 0, 0, 0])
        return [pre_session_packet(OPEN_SESSION_RESPONSE, answer)]

    def _rakp1(self, body):
        tag, bmc_sid = body[0], struct.unpack_from("<I", body, 4)[0]
        session = self._sessions.get(bmc_sid)
        if session is None or session.active:
            return []
        session.console_random, session.role = body[8:24], body[24]
        session.username = body[28:28 + body[27]]
        session.bmc_random = os.urandom(16)
        head = bytes([tag])
        console = struct.pack("<I", session.console_sid)
        user = self.users.get(session.username)
        if user is None:
            return [pre_session_packet(RAKP2, head + bytes([_UNAUTHORIZED_NAME, 0, 0]) + console)]
        session.password, session.highest = user
        if session.role & 0x0F > session.highest:
            return [pre_session_packet(RAKP2, head + bytes([_UNAUTHORIZED_ROLE, 0, 0]) + console)]
        suite = session.suite
        code = rakp2_code(suite, session.password, session.console_sid, bmc_sid, session.console_random,
                          session.bmc_random, self.guid, session.role, session.username)
        if "rakp2_sha1" in self.faults:
            code = rakp2_code(CIPHER_SUITES[3], session.password, session.console_sid, bmc_sid,
                              session.console_random, session.bmc_random, self.guid, session.role, session.username)
        if "rakp2_code" in self.faults:
            code = _flip(code)
        return [pre_session_packet(RAKP2, head + bytes([0, 0, 0]) + console + session.bmc_random + self.guid
                                   + code)]

    def _rakp3(self, body):
        tag, bmc_sid = body[0], struct.unpack_from("<I", body, 4)[0]
        session = self._sessions.get(bmc_sid)
        if session is None or session.bmc_random is None or session.password is None:
            return []
        console = struct.pack("<I", session.console_sid)
        suite = session.suite
        expected = rakp3_code(suite, session.password, session.bmc_random, session.console_sid, session.role,
                              session.username)
        if body[1] != 0 or body[8:] != expected:
            self._sessions.pop(bmc_sid, None)
            return [pre_session_packet(RAKP4, bytes([tag, _INVALID_INTEGRITY_VALUE, 0, 0]) + console)]
        sik, session.k1, session.k2 = session_keys(suite, session.password, self.kg, session.console_random,
                                                   session.bmc_random, session.role, session.username)
        if "digest_constants" in self.faults:
            size = len(sik)
            session.k1 = hmac.new(sik, b"\x01" * size, suite.hash).digest()
            session.k2 = hmac.new(sik, b"\x02" * size, suite.hash).digest()
        icv = rakp4_code(suite, sik, session.console_random, bmc_sid, self.guid)
        if "rakp4_code" in self.faults:
            icv = _flip(icv)
        session.active = True
        session.privilege = min(USER, session.highest)
        self.logins += 1
        return [pre_session_packet(RAKP4, bytes([tag, 0, 0, 0]) + console + icv)]

    # -- in a session (§13.28) --------------------------------------------

    def _session_message(self, data, bmc_sid):
        session = self._sessions.get(bmc_sid)
        if session is None or not session.active:
            return []
        packet = unwrap_session_packet(session.suite, data, session.k1, session.k2)
        if packet is None or not session.window.accept(packet.sequence):
            return []  # the BMC side of replay protection: the console's numbers once each
        request = _parse_request(packet.payload)
        if request is None:
            return []
        netfn, command, request_data, message = request
        self.commands.append((netfn, command))
        code, reply = self._command(session, netfn, command, request_data)
        answer = self._seal(session, _response(message, code, reply))
        key = (netfn, command, message[4] >> 2)
        stale = self._sent.setdefault(key, answer)
        answers = [answer]
        if "replay" in self.faults and stale is not answer:
            answers.insert(0, stale)
        if "duplicate" in self.faults:
            answers.append(answer)
        return answers

    def _seal(self, session, message):
        session.sequence = (session.sequence + 1) & 0xFFFFFFFF or 1
        if "unsigned" in self.faults:
            clear = CIPHER_SUITES[1]
            return wrap_session_packet(clear, session.console_sid, session.sequence, message, None, None)
        packet = wrap_session_packet(session.suite, session.console_sid, session.sequence, message, session.k1,
                                     session.k2)
        if "integrity_code" in self.faults and session.suite.integrity:
            packet = packet[:-1] + bytes([packet[-1] ^ 0x01])
        return packet


class _BmcSession:
    def __init__(self, suite, bmc_sid, console_sid):
        self.suite, self.bmc_sid, self.console_sid = suite, bmc_sid, console_sid
        self.console_random = self.bmc_random = self.username = self.password = None
        self.role = 0
        self.highest = USER
        self.privilege = USER
        self.k1 = self.k2 = None
        self.active = False
        self.sequence = 0
        self.window = ReplayWindow()


def _algorithms(suite):
    return suite.auth_algorithm, suite.integrity, 1 if suite.encrypted else 0


def _flip(code):
    return bytes([code[0] ^ 0x80]) + code[1:]


def _checksum(data):
    return (-sum(data)) & 0xFF


def _parse_request(message):
    """(netfn, cmd, data, message) of an IPMI request to the BMC with both
    checksums right, else None."""
    if len(message) < 7 or message[0] != _BMC_ADDRESS:
        return None
    if _checksum(message[:2]) != message[2] or _checksum(message[3:-1]) != message[-1]:
        return None
    return message[1] >> 2, message[5], message[6:-1], message


def _response(request, code, data):
    """The response message to `request` (addresses, LUNs and rq_seq
    mirrored, netfn + 1)."""
    header = bytes([request[3], ((request[1] >> 2) + 1) << 2 | request[4] & 0x03])
    body = bytes([_BMC_ADDRESS, request[4] & 0xFC | request[1] & 0x03, request[5], code]) + data
    return header + bytes([_checksum(header)]) + body + bytes([_checksum(body)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=6230)
    parser.add_argument("--user", action="append", required=True, metavar="NAME:PASSWORD:LEVEL",
                        help="a user with its highest privilege level (2 user, 3 operator, 4 administrator)")
    parser.add_argument("--suites", default=",".join(map(str, SUITES)))
    arguments = parser.parse_args(argv)
    users = {}
    for spec in arguments.user:
        name, password, level = spec.rsplit(":", 2)
        users[name] = (password, int(level))
    bmc = RmcpBmc(users, port=arguments.port, suites=[int(n) for n in arguments.suites.split(",")])
    print(f"RMCP+ test BMC on 127.0.0.1:{bmc.port}", flush=True)
    try:
        bmc.serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
