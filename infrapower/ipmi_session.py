"""A lean IPMI 2.0 (RMCP+) client session: UDP, one BMC, every exchange
bounded by a deadline.

Why not pyghmi's session: importing it costs ~60 ms (pyghmi.ipmi.command
~0.29 s), it runs an I/O thread with module-wide session tables, retries on
its own timers (~5 s for a dead BMC whatever the caller configured) and
silently lowers the privilege it was asked for.  A fence agent's `status`
must beat fence_ipmilan's whole run (~0.2 s), and a dead BMC must fail
within the configured timeout, so the session is done here: stdlib plus
`cryptography` (AES) which pyghmi already brings into the environment.
pyghmi still decodes what the BMC says (FRU areas, SDR records, code
tables): see infrapower.ipmi.

Spec references are to IPMI v2.0 rev. 1.1 (§13 RMCP+, §22 session
commands).  Cipher suites: 1 (RAKP-HMAC-SHA1, no integrity, no
encryption), 2 (+ HMAC-SHA1-96), 3 (+ AES-CBC-128), 17 (the SHA-256
variants of 3).  Suite 0 (no authentication) is refused.
"""

import hashlib
import hmac
import logging
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

LOG = logging.getLogger("infrapower.ipmi")

# Privilege levels (§6.8), by the names fence_ipmilan's privlvl uses.
PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4}
PRIVILEGE_NAMES = {level: name.upper() for name, level in PRIVILEGES.items()}

# Netfns of the commands this pack sends.
NETFN_CHASSIS, NETFN_SENSOR, NETFN_APP, NETFN_STORAGE = 0x00, 0x04, 0x06, 0x0A

_RMCP_HEADER = bytes([0x06, 0x00, 0xFF, 0x07])  # RMCP v1.0, no ack, class IPMI
_AUTH_RMCP_PLUS = 0x06
# Payload types (§13.27.3).
_IPMI_MESSAGE, _OPEN_SESSION_REQUEST, _OPEN_SESSION_RESPONSE = 0x00, 0x10, 0x11
_RAKP1, _RAKP2, _RAKP3, _RAKP4 = 0x12, 0x13, 0x14, 0x15
_ENCRYPTED, _AUTHENTICATED = 0x80, 0x40
_BMC_ADDRESS, _CONSOLE_ADDRESS = 0x20, 0x81
_NAME_ONLY_LOOKUP = 0x10  # RAKP1 role bit 4: find the user by name alone
_MAX_USERNAME = 16
# Retransmission: a lost UDP datagram is retried after this, doubling,
# within the exchange's deadline.  Long enough that a BMC running a slow
# chassis command is not sent it twice on a healthy network.
_FIRST_RETRY_SECONDS = 0.5
_CLOSE_TIMEOUT = 0.5  # closing is a courtesy to the BMC's session table


@dataclass(frozen=True)
class CipherSuite:
    """The algorithms of one cipher suite (§22.15.2) and what they need."""

    number: int
    hash: str  # of the RAKP authentication and of the integrity HMAC
    integrity: int  # integrity algorithm number, 0 = none
    encrypted: bool  # AES-CBC-128 confidentiality
    auth_algorithm: int
    icv_length: int  # RAKP4 integrity check value and packet AuthCode length

    @property
    def digest_size(self):
        return hashlib.new(self.hash).digest_size


CIPHER_SUITES = {
    1: CipherSuite(1, "sha1", 0, False, 1, 12),
    2: CipherSuite(2, "sha1", 1, False, 1, 12),
    3: CipherSuite(3, "sha1", 1, True, 1, 12),
    17: CipherSuite(17, "sha256", 4, True, 3, 16),
}
# Tried in this order when no cipher is configured: 3 is what most BMCs
# and pyghmi speak; 17 is what newer BMCs keep when 3 is disabled.  A BMC
# refuses a suite in one exchange, so probing costs one round trip, not
# the 10-20 s of ipmitool's probing.
DEFAULT_CIPHER_SUITES = (3, 17)


class IpmiError(Exception):
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


def _checksum(data):
    return (-sum(data)) & 0xFF


def _hex(data):
    return data.hex(" ") if data else "-"


class Session:
    """One RMCP+ session with a BMC.  `login_timeout` bounds the whole
    session set-up, `command_timeout` each command (retransmissions
    included); neither is ever unlimited."""

    def __init__(self, host, port, username, password, *, privilege="administrator", cipher_suite=None,
                 kg=None, login_timeout=5.0, command_timeout=5.0):
        if privilege not in PRIVILEGES:
            raise IpmiError(f"unknown privilege level {privilege!r}: use one of {', '.join(PRIVILEGES)}")
        suites = DEFAULT_CIPHER_SUITES if cipher_suite is None else (check_cipher_suite(int(cipher_suite)),)
        username = username.encode()
        if len(username) > _MAX_USERNAME:
            raise IpmiError(f"user name longer than {_MAX_USERNAME} bytes")
        self.target = f"{host}:{port}"
        self.host, self.port = host, int(port)
        self._username = username
        # IPMI 2.0 passwords are up to 20 bytes; HMAC pads the key anyway.
        self._password = password.encode()
        self._kg = kg  # None: the user's password is also the BMC key
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
            LOG.debug("closing the session: %s", error)
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
                LOG.debug("cipher suite %d: no answer, trying the next", number)
                continue
            if status == 0:
                break
            if not last and status in (0x04, 0x05, 0x10, 0x11):
                LOG.debug("cipher suite %d refused: %s", number, describe_rmcp_status(status))
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
            except CompletionCodeError as error:
                raise IpmiError(f"BMC {self.target} refused privilege {PRIVILEGE_NAMES[level]} to user "
                                f"{self._username.decode()!r}: {describe_completion_code(NETFN_APP, 0x3B, error.code)}"
                                "; set privlvl to what the user has") from None
        LOG.debug("session %#010x open: cipher suite %d, privilege %s", self._bmc_sid, suite.number,
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
        LOG.debug("-> Open Session Request: cipher suite %d, privilege %s", suite.number, PRIVILEGE_NAMES[level])
        response = self._pre_session_exchange(_OPEN_SESSION_REQUEST, body, _OPEN_SESSION_RESPONSE, tag, deadline,
                                              "Open Session")
        status = response[1]
        LOG.debug("<- Open Session Response: status %#04x", status)
        return status, response

    def _rakp(self, deadline):
        suite = self.suite
        digest = suite.hash
        console_random = os.urandom(16)
        role = _NAME_ONLY_LOOKUP | PRIVILEGES[self.privilege]
        name = bytes([len(self._username)]) + self._username
        tag = self._next_tag()
        body = struct.pack("<BxxxI", tag, self._bmc_sid) + console_random + bytes([role, 0, 0]) + name
        LOG.debug("-> RAKP 1: user %r, role %#04x", self._username.decode(), role)
        rakp2 = self._pre_session_exchange(_RAKP1, body, _RAKP2, tag, deadline, "RAKP 1")
        if rakp2[1] != 0:
            hint = {0x0D: f": no user {self._username.decode()!r} on this BMC",
                    0x09: ": set privlvl to what the user has", 0x0A: ": set privlvl to what the user has"}
            raise IpmiError(f"BMC {self.target} refused the login: {describe_rmcp_status(rakp2[1])}"
                            f"{hint.get(rakp2[1], '')}")
        bmc_random, guid = rakp2[8:24], rakp2[24:40]
        LOG.debug("<- RAKP 2: status 0x00, BMC GUID %s", guid.hex())
        expected = hmac.new(self._password, struct.pack("<II", self._console_sid, self._bmc_sid) + console_random
                            + bmc_random + guid + bytes([role]) + name, digest).digest()
        if not hmac.compare_digest(rakp2[40:40 + len(expected)], expected):
            raise IpmiError(f"BMC {self.target} rejected the credentials of user {self._username.decode()!r}: "
                            "wrong password (RAKP 2 key check failed)")
        sik = hmac.new(self._kg or self._password, console_random + bmc_random + bytes([role]) + name,
                       digest).digest()
        self._k1 = hmac.new(sik, b"\x01" * suite.digest_size, digest).digest()
        self._k2 = hmac.new(sik, b"\x02" * suite.digest_size, digest).digest()
        tag = self._next_tag()
        auth = hmac.new(self._password, bmc_random + struct.pack("<I", self._console_sid) + bytes([role]) + name,
                        digest).digest()
        LOG.debug("-> RAKP 3")
        rakp4 = self._pre_session_exchange(_RAKP3, struct.pack("<BBxxI", tag, 0, self._bmc_sid) + auth, _RAKP4, tag,
                                           deadline, "RAKP 3")
        if rakp4[1] != 0:
            hint = ": check hexadecimal_kg (the BMC key)" if rakp4[1] == 0x0F else ""
            raise IpmiError(f"BMC {self.target} refused the login: {describe_rmcp_status(rakp4[1])}{hint}")
        icv = hmac.new(sik, console_random + struct.pack("<I", self._bmc_sid) + guid, digest).digest()
        if not hmac.compare_digest(rakp4[8:8 + suite.icv_length], icv[:suite.icv_length]):
            raise IpmiError(f"BMC {self.target}: session key check failed (RAKP 4): check hexadecimal_kg")
        LOG.debug("<- RAKP 4: status 0x00")

    def _pre_session_exchange(self, payload_type, body, answer_type, tag, deadline, what):
        """Open Session and RAKP messages: session id 0, unauthenticated;
        the answer is matched by payload type and message tag."""
        packet = _RMCP_HEADER + struct.pack("<BBIIH", _AUTH_RMCP_PLUS, payload_type, 0, 0, len(body)) + body

        def match(data):
            if len(data) < 16 or data[4] != _AUTH_RMCP_PLUS or data[5] & 0x3F != answer_type:
                return None
            length = struct.unpack_from("<H", data, 14)[0]
            payload = data[16:16 + length]
            return payload if len(payload) >= 8 and payload[0] == tag else None

        return self._exchange(lambda: packet, match, deadline, what)

    # -- commands ---------------------------------------------------------

    def command(self, netfn, command, data=b"", *, timeout=None, deadline=None):
        """Send one IPMI request; returns the response data after the
        completion code, raises CompletionCodeError for a non-zero one."""
        if deadline is None:
            deadline = time.monotonic() + (self.command_timeout if timeout is None else timeout)
        self._rq_seq = (self._rq_seq + 1) & 0x3F
        rq_seq = self._rq_seq
        data = bytes(data)
        what = command_name(netfn, command)
        LOG.debug("-> %s [%s]", what, _hex(data))

        def build():
            # A retransmission is a new packet: a fresh session sequence
            # number (the BMC drops replays), the same request sequence.
            header = bytes([_BMC_ADDRESS, netfn << 2])
            body = bytes([_CONSOLE_ADDRESS, rq_seq << 2, command]) + data
            return self._wrap(header + bytes([_checksum(header)]) + body + bytes([_checksum(body)]))

        def match(packet):
            message = self._unwrap(packet)
            if message is None or len(message) < 8:
                return None
            if message[1] >> 2 != netfn + 1 or message[4] >> 2 != rq_seq or message[5] != command:
                return None
            return message[6:-1]  # completion code + data, without the checksum

        response = self._exchange(build, match, deadline, what)
        LOG.debug("<- %s: cc %#04x [%s]", what, response[0], _hex(response[1:]))
        if response[0] != 0:
            raise CompletionCodeError(netfn, command, response[0])
        return response[1:]

    def _wrap(self, message):
        """An IPMI message in an RMCP+ session packet (§13.28)."""
        suite = self.suite
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF or 1
        payload_type = _IPMI_MESSAGE
        if suite.encrypted:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            pad = (-(len(message) + 1)) % 16
            plain = message + bytes(range(1, pad + 1)) + bytes([pad])
            iv = os.urandom(16)
            encryptor = Cipher(algorithms.AES(self._k2[:16]), modes.CBC(iv)).encryptor()
            message = iv + encryptor.update(plain) + encryptor.finalize()
            payload_type |= _ENCRYPTED
        if suite.integrity:
            payload_type |= _AUTHENTICATED
        packet = struct.pack("<BBIIH", _AUTH_RMCP_PLUS, payload_type, self._bmc_sid, self._sequence, len(message))
        packet += message
        if suite.integrity:
            # Pad so the AuthCode covers a whole number of 4-byte words.
            pad = (-(len(packet) + 2)) % 4
            packet += b"\xff" * pad + bytes([pad, 0x07])
            packet += hmac.new(self._k1, packet, suite.hash).digest()[:suite.icv_length]
        return _RMCP_HEADER + packet

    def _unwrap(self, data):
        """The IPMI message of a session packet for us, or None for
        anything else (stale answers, packets failing the integrity check)."""
        if len(data) < 16 or data[4] != _AUTH_RMCP_PLUS or data[5] & 0x3F != _IPMI_MESSAGE:
            return None
        if struct.unpack_from("<I", data, 6)[0] != self._console_sid:
            return None
        suite = self.suite
        length = struct.unpack_from("<H", data, 14)[0]
        payload = data[16:16 + length]
        if suite.integrity:
            if not data[5] & _AUTHENTICATED:
                return None
            code = data[-suite.icv_length:]
            expected = hmac.new(self._k1, data[4:-suite.icv_length], suite.hash).digest()[:suite.icv_length]
            if not hmac.compare_digest(code, expected):
                LOG.debug("dropped a packet failing the integrity check")
                return None
        if data[5] & _ENCRYPTED:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            if len(payload) < 32 or len(payload) % 16:
                return None
            decryptor = Cipher(algorithms.AES(self._k2[:16]), modes.CBC(payload[:16])).decryptor()
            plain = decryptor.update(payload[16:]) + decryptor.finalize()
            payload = plain[:len(plain) - 1 - plain[-1]]
        elif suite.encrypted:
            return None
        return payload

    # -- the wire ---------------------------------------------------------

    def _exchange(self, build, match, deadline, what):
        """Send build(), wait for a datagram that match() accepts;
        retransmit on silence, give up at the deadline."""
        retry = _FIRST_RETRY_SECONDS
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
                LOG.debug("no answer to %s yet, retransmitting", what)
