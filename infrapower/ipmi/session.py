"""A lean IPMI 2.0 (RMCP+) client session: UDP, one BMC, every exchange
bounded by a deadline.

Why not pyghmi's session: importing it costs ~60 ms (pyghmi.ipmi.command
~0.29 s), it runs an I/O thread with module-wide session tables, retries on
its own timers (~5 s for a dead BMC whatever the caller configured) and
silently lowers the privilege it was asked for.  A fence agent's `status`
must beat fence_ipmilan's whole run (~0.2 s), and a dead BMC must fail
within the configured timeout, so the session is done here: stdlib plus
AES from the system's libcrypto (infrapower.ciphers).
pyghmi still decodes what the BMC says (FRU areas, SDR records, code
tables): see infrapower.ipmi.

The packets and keys are infrapower.ipmi.rmcp's pure functions; this module
is the exchange: login, commands, retransmission, deadlines.  Spec
references are to IPMI v2.0 rev. 1.1 (§13 RMCP+, §22 session commands).
Suite 0 (no authentication) is refused.

Inbound packets are trusted only once they pass every check: RMCP+
framing, this session's id, the integrity code (suites 2, 3, 17), a
session sequence number not seen before and newer than any answer
accepted before the request was sent (a replayed or delayed old answer
never answers a new request, even once the 6-bit rq_seq wraps), and the
IPMI message checksums.  Anything else is dropped, never raised.
"""

import hmac
import logging
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from infrapower.errors import FenceError
from infrapower.ipmi.rmcp import (
    CIPHER_SUITES,
    OPEN_SESSION_REQUEST,
    OPEN_SESSION_RESPONSE,
    RAKP1,
    RAKP2,
    RAKP3,
    RAKP4,
    ReplayWindow,
    effective_kg,
    is_newer,
    parse_pre_session_packet,
    parse_response,
    pre_session_packet,
    rakp2_code,
    rakp3_code,
    rakp4_code,
    request_message,
    session_keys,
    unwrap_session_packet,
    wrap_session_packet,
)
from infrapower.ports import IPMI_PORT

log = logging.getLogger(__name__)

# Privilege levels (§6.8), by the names fence_ipmilan's privlvl uses.
PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4}
PRIVILEGE_NAMES = {level: name.upper() for name, level in PRIVILEGES.items()}

# Netfns of the commands this pack sends.
NETFN_CHASSIS, NETFN_SENSOR, NETFN_APP, NETFN_STORAGE = 0x00, 0x04, 0x06, 0x0A

_NAME_ONLY_LOOKUP = 0x10  # RAKP1 role bit 4: find the user by name alone
_MAX_USERNAME = 16
MAX_PASSWORD = 20  # bytes: the user key Kuid (§13.31), and Kg
_INTEGRITY_FAILURE = "failing the integrity or format checks"
# Retransmission: a lost UDP datagram is retried after this, doubling,
# within the exchange's deadline.  Long enough that a BMC running a slow
# chassis command is not sent it twice on a healthy network.
_FIRST_RETRY_SECONDS = 0.5
_CLOSE_TIMEOUT = 0.5  # closing is a courtesy to the BMC's session table

# Tried in this order when no cipher is configured: 3 is what most BMCs
# and pyghmi speak; 17 is what newer BMCs keep when 3 is disabled.  A BMC
# refuses a suite in one exchange, so probing costs one round trip, not
# the 10-20 s of ipmitool's probing.
DEFAULT_CIPHER_SUITES = (3, 17)


class IpmiError(FenceError):
    """A failure of the exchange with the BMC, as one line."""


class IpmiTimeout(IpmiError):
    pass


class CompletionCodeError(IpmiError):
    """The BMC answered a command with a non-zero completion code."""

    def __init__(self, netfn, command, code):
        self.netfn, self.command, self.code = netfn, command, code
        super().__init__(f"{command_name(netfn, command)}: {describe_completion_code(netfn, command, code)}")


_COMMAND_NAMES = {
    (NETFN_CHASSIS, 0x01): "Get Chassis Status",
    (NETFN_CHASSIS, 0x02): "Chassis Control",
    (NETFN_SENSOR, 0x2D): "Get Sensor Reading",
    (NETFN_APP, 0x3B): "Set Session Privilege Level",
    (NETFN_APP, 0x3C): "Close Session",
    (NETFN_STORAGE, 0x10): "Get FRU Inventory Area Info",
    (NETFN_STORAGE, 0x11): "Read FRU Data",
    (NETFN_STORAGE, 0x22): "Reserve SDR Repository",
    (NETFN_STORAGE, 0x23): "Get SDR",
}


def check_cipher_suite(number):
    """`number` if this client speaks that suite, else IpmiError."""
    if number == 0:
        raise IpmiError("cipher suite 0 sends commands unauthenticated: refused, use 3 or 17")
    if number not in CIPHER_SUITES:
        raise IpmiError(f"cipher suite {number} not supported: use one of {', '.join(map(str, CIPHER_SUITES))}")
    return number


def command_name(netfn, command):
    return _COMMAND_NAMES.get((netfn, command), f"command {netfn:#04x}/{command:#04x}")


def describe_completion_code(netfn, command, code):
    """pyghmi's tables say what a code means; imported only on failure."""
    from pyghmi.ipmi.private import constants

    specific = constants.command_completion_codes.get((netfn + 1, command), {})
    text = specific.get(code) or constants.ipmi_completion_codes.get(code) or "unknown completion code"
    return f"{text} ({code:#04x})"


def describe_rmcp_status(code):
    from pyghmi.ipmi.private import constants

    return f"{constants.rmcp_codes.get(code, 'unknown RMCP+ status')} ({code:#04x})"


def check_password(password):
    """The password as the user key: IPMI 2.0 passwords are at most 20
    bytes.  A longer one is refused here, once, rather than cut (as
    ipmitool does) and then reported by the BMC as a wrong password."""
    key = password.encode()
    if len(key) > MAX_PASSWORD:
        raise IpmiError(f"password is {len(key)} bytes long: IPMI 2.0 passwords are at most {MAX_PASSWORD} bytes; "
                        "set a shorter one on the BMC and here")
    return key


def _hex(data):
    return data.hex(" ") if data else "-"


@dataclass(frozen=True)
class IpmiSettings:
    """How to reach and log in to one BMC: what fence_ipmi_psu's options
    say (infrapower.options.ipmi_settings), or what the PowerChain knows.
    `login_timeout` bounds the whole session set-up, `command_timeout`
    each command (retransmissions included); neither is ever unlimited."""

    host: str
    port: int = IPMI_PORT
    username: str = ""
    password: str = field(default="", repr=False)  # never in a repr, so never in a log
    privilege: str = "administrator"
    cipher_suite: int = None  # None: try 3, then 17
    kg: bytes = field(default=None, repr=False)
    login_timeout: float = 5.0
    command_timeout: float = 5.0


class Session:
    """One RMCP+ session with a BMC, as IpmiSettings say."""

    def __init__(self, settings):
        host, port, username, password = settings.host, settings.port, settings.username, settings.password
        privilege, cipher_suite, kg = settings.privilege, settings.cipher_suite, settings.kg
        login_timeout, command_timeout = settings.login_timeout, settings.command_timeout
        if privilege not in PRIVILEGES:
            raise IpmiError(f"unknown privilege level {privilege!r}: use one of {', '.join(PRIVILEGES)}")
        suites = DEFAULT_CIPHER_SUITES if cipher_suite is None else (check_cipher_suite(int(cipher_suite)),)
        username = username.encode()
        if len(username) > _MAX_USERNAME:
            raise IpmiError(f"user name longer than {_MAX_USERNAME} bytes")
        self.target = f"{host}:{port}"
        self.host, self.port = host, int(port)
        self._username = username
        self._password = check_password(password)
        self._kg = effective_kg(kg)  # None: the user's password is also the BMC key
        self.privilege = privilege
        self._suites = suites
        self.suite = None
        self._trying = None  # the cipher suites proposed so far, for errors
        self.login_timeout = login_timeout
        self.command_timeout = command_timeout
        self._sock = None
        self._console_sid = 0
        self._bmc_sid = 0
        self._sequence = 0
        self._rq_seq = 0
        self._k1 = self._k2 = None
        self._tag = 0
        self._window = ReplayWindow()
        self.requests = 0  # round trips so far (login included; retransmissions not counted)

    # -- life cycle -------------------------------------------------------

    def __enter__(self):
        if self._sock is None:
            self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self):
        deadline = time.monotonic() + self.login_timeout
        from infrapower.resolve import resolve

        try:
            family, _, _, _, address = resolve(self.host, self.port, socket.SOCK_DGRAM, self.login_timeout)[0]
        except socket.gaierror as error:
            raise IpmiError(f"cannot resolve BMC address {self.host}: {error.strerror}") from None
        except socket.timeout as error:
            raise IpmiError(f"BMC {self.host}: {error}") from None
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # Connected: the kernel then reports ICMP port unreachable
            # (no BMC service there) at once instead of a silent timeout.
            self._sock.connect(address)
            self._login(deadline)
        except BaseException:
            self._sock.close()
            self._sock = None
            raise

    def close(self):
        """Close the session (best effort: a BMC that does not answer
        forgets it on its own) and the socket."""
        if self._sock is None:
            return
        try:
            if self._bmc_sid:
                self.command(NETFN_APP, 0x3C, struct.pack("<I", self._bmc_sid), timeout=_CLOSE_TIMEOUT)
        except IpmiError as error:
            log.debug("closing the session: %s", error)
        finally:
            self._bmc_sid = 0
            self._sock.close()
            self._sock = None

    # -- session set-up (§13.17-13.31) ------------------------------------

    def _login(self, deadline):
        self._console_sid = struct.unpack("<I", os.urandom(4))[0] | 1
        for index, number in enumerate(self._suites):
            suite = CIPHER_SUITES[number]
            last = index + 1 == len(self._suites)
            self._trying = ", ".join(map(str, self._suites[:index + 1]))
            # A BMC may ignore a suite it lacks instead of refusing it:
            # each suite gets its share of the login time, not all of it.
            share = (deadline - time.monotonic()) / (len(self._suites) - index)
            try:
                status, response = self._open_session(suite, time.monotonic() + share)
            except IpmiTimeout:
                if last:
                    raise
                log.debug("cipher suite %d: no answer, trying the next", number)
                continue
            if status == 0:
                break
            if not last and status in (0x04, 0x05, 0x10, 0x11):
                log.debug("cipher suite %d refused: %s", number, describe_rmcp_status(status))
                continue
            raise IpmiError(f"BMC {self.target} refused the session (cipher suite {number}): "
                            f"{describe_rmcp_status(status)}")
        self.suite = suite
        self._bmc_sid = struct.unpack_from("<I", response, 8)[0]
        self._rakp(deadline)
        self._sequence = 0
        level = PRIVILEGES[self.privilege]
        if level > PRIVILEGES["user"]:
            # Sessions start at User level (§22.18); raise it now so a
            # user lacking the privilege fails here, with its name.
            try:
                self.command(NETFN_APP, 0x3B, bytes([level]), deadline=deadline)
            except IpmiTimeout as error:
                # RAKP went through, so the BMC is there: silence now means
                # it drops what this session signs (different K1/K2).
                raise IpmiTimeout(f"{error}, after a complete RAKP login: the BMC drops this session's packets; "
                                  f"try another cipher suite than {suite.number}") from None
            except CompletionCodeError as error:
                raise IpmiError(f"BMC {self.target} refused privilege {PRIVILEGE_NAMES[level]} to user "
                                f"{self._username.decode()!r}: {describe_completion_code(NETFN_APP, 0x3B, error.code)}"
                                "; set privlvl to what the user has") from None
        log.debug("session %#010x open: cipher suite %d, privilege %s", self._bmc_sid, suite.number,
                  PRIVILEGE_NAMES[level])

    def _next_tag(self):
        self._tag = (self._tag + 1) & 0xFF
        return self._tag

    def _open_session(self, suite, deadline):
        tag = self._next_tag()
        level = PRIVILEGES[self.privilege]
        body = struct.pack("<BBxxI", tag, level, self._console_sid)
        body += bytes([0x00, 0, 0, 8, suite.auth_algorithm, 0, 0, 0])
        body += bytes([0x01, 0, 0, 8, suite.integrity, 0, 0, 0])
        body += bytes([0x02, 0, 0, 8, 1 if suite.encrypted else 0, 0, 0, 0])
        log.debug("-> Open Session Request: cipher suite %d, privilege %s", suite.number, PRIVILEGE_NAMES[level])
        response = self._pre_session_exchange(OPEN_SESSION_REQUEST, body, OPEN_SESSION_RESPONSE, tag, deadline,
                                              "Open Session")
        status = response[1]
        log.debug("<- Open Session Response: status %#04x", status)
        if status == 0:
            # The algorithms must be the ones proposed: a BMC (or anyone on
            # the path) answering with weaker ones is not followed.
            offered = bytes([suite.auth_algorithm, suite.integrity, 1 if suite.encrypted else 0])
            if len(response) < 36 or bytes(response[16:36:8]) != offered:
                raise IpmiError(f"BMC {self.target} answered Open Session (cipher suite {suite.number}) with "
                                "other algorithms than proposed: refused")
        return status, response

    def _rakp(self, deadline):
        suite = self.suite
        console_random = os.urandom(16)
        role = _NAME_ONLY_LOOKUP | PRIVILEGES[self.privilege]
        name = bytes([len(self._username)]) + self._username
        tag = self._next_tag()
        body = struct.pack("<BxxxI", tag, self._bmc_sid) + console_random + bytes([role, 0, 0]) + name
        log.debug("-> RAKP 1: user %r, role %#04x", self._username.decode(), role)
        rakp2 = self._pre_session_exchange(RAKP1, body, RAKP2, tag, deadline, "RAKP 1")
        if rakp2[1] != 0:
            hint = {0x0D: f": no user {self._username.decode()!r} on this BMC",
                    0x09: ": set privlvl to what the user has", 0x0A: ": set privlvl to what the user has"}
            raise IpmiError(f"BMC {self.target} refused the login: {describe_rmcp_status(rakp2[1])}"
                            f"{hint.get(rakp2[1], '')}")
        bmc_random, guid = rakp2[8:24], rakp2[24:40]
        log.debug("<- RAKP 2: status 0x00, BMC GUID %s", guid.hex())
        expected = rakp2_code(suite, self._password, self._console_sid, self._bmc_sid, console_random, bmc_random,
                              guid, role, self._username)
        if not hmac.compare_digest(rakp2[40:40 + len(expected)], expected):
            raise IpmiError(f"BMC {self.target} rejected the credentials of user {self._username.decode()!r}: "
                            "wrong password (RAKP 2 key check failed)")
        sik, self._k1, self._k2 = session_keys(suite, self._password, self._kg, console_random, bmc_random, role,
                                               self._username)
        tag = self._next_tag()
        auth = rakp3_code(suite, self._password, bmc_random, self._console_sid, role, self._username)
        log.debug("-> RAKP 3")
        rakp4 = self._pre_session_exchange(RAKP3, struct.pack("<BBxxI", tag, 0, self._bmc_sid) + auth, RAKP4, tag,
                                           deadline, "RAKP 3")
        if rakp4[1] != 0:
            hint = ": check hexadecimal_kg (the BMC key)" if rakp4[1] == 0x0F else ""
            raise IpmiError(f"BMC {self.target} refused the login: {describe_rmcp_status(rakp4[1])}{hint}")
        icv = rakp4_code(suite, sik, console_random, self._bmc_sid, guid)
        if not hmac.compare_digest(rakp4[8:8 + len(icv)], icv):
            raise IpmiError(f"BMC {self.target}: session key check failed (RAKP 4): check hexadecimal_kg")
        log.debug("<- RAKP 4: status 0x00")

    def _pre_session_exchange(self, payload_type, body, answer_type, tag, deadline, what):
        """Open Session and RAKP messages: session id 0, unauthenticated;
        the answer is matched by payload type, message tag and our
        console session id (bytes 4-7 of each of these answers)."""
        packet = pre_session_packet(payload_type, body)
        console_sid = struct.pack("<I", self._console_sid)

        def match(data):
            payload = parse_pre_session_packet(data, answer_type)
            if payload is None or payload[0] != tag or payload[4:8] != console_sid:
                return None
            return payload

        return self._exchange(lambda: packet, match, deadline, what)

    # -- commands ---------------------------------------------------------

    def command(self, netfn, command, data=b"", *, timeout=None, deadline=None):
        """Send one IPMI request; returns the response data after the
        completion code, raises CompletionCodeError for a non-zero one."""
        if deadline is None:
            deadline = time.monotonic() + (self.command_timeout if timeout is None else timeout)
        # rq_seq has 6 bits and wraps every 64 commands: what binds an
        # answer to this request is that its session sequence number is
        # newer than every answer accepted before the request went out.
        self._rq_seq = (self._rq_seq + 1) & 0x3F
        rq_seq = self._rq_seq
        accepted_before = self._window.newest
        console_sid = struct.pack("<I", self._console_sid)
        data = bytes(data)
        what = command_name(netfn, command)
        log.debug("-> %s [%s]", what, _hex(data))

        def build():
            # A retransmission is a new packet: a fresh session sequence
            # number (the BMC drops replays), the same request sequence.
            return self._wrap(request_message(netfn, rq_seq, command, data))

        dropped = {}  # why answers addressed to this session were dropped: count

        def drop(reason):
            log.debug("dropped an answer %s", reason)
            dropped[reason] = dropped.get(reason, 0) + 1

        def match(datagram):
            packet = unwrap_session_packet(self.suite, datagram, self._k1, self._k2)
            if packet is None or packet.session_id != self._console_sid:
                if datagram[6:10] == console_sid:
                    drop(_INTEGRITY_FAILURE)
                return None
            # Without integrity (suite 1) a sequence number proves nothing
            # and a corrupted one would shut the window on the real answers.
            if self.suite.integrity:
                if accepted_before is not None and not is_newer(packet.sequence, accepted_before):
                    drop("older than the request (replayed or late)")
                    return None
                if not self._window.accept(packet.sequence):
                    drop("replayed")
                    return None
            response = parse_response(packet.payload, rq_seq, netfn, command)
            # Completion code + data: at least the code.
            return response if response else None

        try:
            response = self._exchange(build, match, deadline, what)
        except IpmiTimeout as error:
            if not dropped:
                raise
            reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items())
            hint = (" (wrong hexadecimal_kg or cipher, or something on the path alters them)"
                    if _INTEGRITY_FAILURE in dropped else "")
            raise IpmiTimeout(f"{error}; answers dropped: {reasons}{hint}") from None
        log.debug("<- %s: cc %#04x [%s]", what, response[0], _hex(response[1:]))
        if response[0] != 0:
            raise CompletionCodeError(netfn, command, response[0])
        return response[1:]

    def _wrap(self, message):
        """An IPMI message in an RMCP+ session packet, with a fresh session
        sequence number (the BMC drops replays)."""
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF or 1
        return wrap_session_packet(self.suite, self._bmc_sid, self._sequence, message, self._k1, self._k2)

    # -- the wire ---------------------------------------------------------

    def _exchange(self, build, match, deadline, what):
        """Send build(), wait for a datagram that match() accepts;
        retransmit on silence, give up at the deadline."""
        retry = _FIRST_RETRY_SECONDS
        self.requests += 1
        while True:
            now = time.monotonic()
            if now >= deadline:
                suite = f" (cipher suite {self._trying})" if what == "Open Session" else ""
                raise IpmiTimeout(f"BMC {self.target} did not answer {what}{suite} in time")
            try:
                self._sock.send(build())
            except ConnectionRefusedError:
                raise IpmiError(f"BMC {self.target}: nothing listens on that port (ICMP port unreachable)") from None
            except OSError as error:
                raise IpmiError(f"cannot send to BMC {self.target}: {error.strerror or error}") from None
            resend_at = min(deadline, now + retry)
            retry *= 2
            while (remaining := resend_at - time.monotonic()) > 0:
                readable, _, _ = select.select([self._sock], [], [], remaining)
                if not readable:
                    break
                try:
                    data = self._sock.recv(4096)
                except ConnectionRefusedError:
                    raise IpmiError(f"BMC {self.target}: nothing listens on that port (ICMP port unreachable)") from None
                except OSError as error:
                    raise IpmiError(f"BMC {self.target}: {error.strerror or error}") from None
                answer = match(data)
                if answer is not None:
                    return answer
            if time.monotonic() < deadline:
                log.debug("no answer to %s yet, retransmitting", what)
