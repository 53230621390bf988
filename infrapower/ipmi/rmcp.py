"""The RMCP+ wire format (IPMI 2.0 over LAN) and its key derivation, as
pure functions: what infrapower.ipmi.session sends and checks, and what the
lab's test BMC (infrapower.lab.rmcp_bmc) and the known-answer tests use, so
both ends run exactly the same code.  No sockets, no state beyond a
ReplayWindow's.

Spec references are to IPMI v2.0 rev. 1.1 (§13 RMCP+, §22 session
commands).  Cipher suites: 1 (RAKP-HMAC-SHA1, no integrity, no
encryption), 2 (+ HMAC-SHA1-96), 3 (+ AES-CBC-128), 17 (the SHA-256
variants of 3).

The parsers of inbound packets never raise: every hostile datagram reaches
them, and one that fails a check is dropped by returning None.
"""

import hmac
import os
import struct
from dataclasses import dataclass

__all__ = [
    "CIPHER_SUITES", "OPEN_SESSION_REQUEST", "OPEN_SESSION_RESPONSE", "RAKP1", "RAKP2", "RAKP3", "RAKP4",
    "REPLAY_WINDOW", "CipherSuite", "ReplayWindow", "SessionPacket", "effective_kg", "integrity_code", "is_newer",
    "parse_pre_session_packet", "parse_response", "pre_session_packet", "rakp2_code", "rakp3_code", "rakp4_code",
    "request_message", "session_keys", "unwrap_session_packet", "wrap_session_packet",
]

_RMCP_HEADER = bytes([0x06, 0x00, 0xFF, 0x07])  # RMCP v1.0, no ack, class IPMI
_AUTH_RMCP_PLUS = 0x06
# Payload types (§13.27.3).
_IPMI_MESSAGE, OPEN_SESSION_REQUEST, OPEN_SESSION_RESPONSE = 0x00, 0x10, 0x11
RAKP1, RAKP2, RAKP3, RAKP4 = 0x12, 0x13, 0x14, 0x15
_ENCRYPTED, _AUTHENTICATED = 0x80, 0x40
_BMC_ADDRESS, _CONSOLE_ADDRESS = 0x20, 0x81
# K1 and K2 are HMAC(SIK, 20 bytes of 0x01 / 0x02) whatever the digest
# (§13.32): ipmitool, FreeIPMI and OpenBMC all use 20-byte constants,
# also for SHA-256, so a BMC derives them so.
_KEY_CONSTANT_LENGTH = 20
_CONFIDENTIALITY_KEY_LENGTH = 16  # AES-CBC-128 takes the first 16 bytes of K2
_AES_BLOCK = 16
_NEXT_HEADER = 0x07  # the RMCP+ session trailer's fixed next-header byte
# Session sequence numbers (§6.12.13): a packet up to this many numbers
# older than the newest accepted one is still accepted once (UDP
# reorders); anything older, or seen before, is a replay and dropped.
REPLAY_WINDOW = 16


@dataclass(frozen=True)
class CipherSuite:
    """The algorithms of one cipher suite (§22.15.2) and what they need."""

    number: int
    hash: str  # of the RAKP authentication and of the integrity HMAC
    integrity: int  # integrity algorithm number, 0 = none
    encrypted: bool  # AES-CBC-128 confidentiality
    auth_algorithm: int
    icv_length: int  # RAKP4 integrity check value and packet AuthCode length


CIPHER_SUITES = {
    1: CipherSuite(1, "sha1", 0, False, 1, 12),
    2: CipherSuite(2, "sha1", 1, False, 1, 12),
    3: CipherSuite(3, "sha1", 1, True, 1, 12),
    17: CipherSuite(17, "sha256", 4, True, 3, 16),
}


def _checksum(data):
    """An IPMI message checksum (§13.8): what makes the covered bytes sum to 0."""
    return (-sum(data)) & 0xFF


def effective_kg(kg):
    """The BMC key Kg to use, or None: an all-zero Kg is the spec's "no
    Kg" (§13.31, the BMC then uses the user key), never a key of zeros."""
    return bytes(kg) if kg and any(kg) else None


# -- RAKP and session keys (§13.20-13.32) -----------------------------------


def _mac(suite, key, data):
    return hmac.new(key, data, suite.hash).digest()


def rakp2_code(suite, password, console_sid, bmc_sid, console_random, bmc_random, guid, role, username):
    """RAKP 2's key exchange authentication code: HMAC(Kuid, SIDm, SIDc,
    Rm, Rc, GUIDc, ROLEm, ULENGTHm, UNAMEm), the whole digest."""
    return _mac(suite, password, struct.pack("<II", console_sid, bmc_sid) + console_random + bmc_random + guid
                + bytes([role, len(username)]) + username)


def rakp3_code(suite, password, bmc_random, console_sid, role, username):
    """RAKP 3's code: HMAC(Kuid, Rc, SIDm, ROLEm, ULENGTHm, UNAMEm)."""
    return _mac(suite, password, bmc_random + struct.pack("<I", console_sid) + bytes([role, len(username)])
                + username)


def session_keys(suite, password, kg, console_random, bmc_random, role, username):
    """(SIK, K1, K2): SIK = HMAC(Kg or Kuid, Rm, Rc, ROLEm, ULENGTHm,
    UNAMEm); K1, K2 from 20-byte constants for every suite."""
    sik = _mac(suite, effective_kg(kg) or password,
               console_random + bmc_random + bytes([role, len(username)]) + username)
    k1 = _mac(suite, sik, b"\x01" * _KEY_CONSTANT_LENGTH)
    k2 = _mac(suite, sik, b"\x02" * _KEY_CONSTANT_LENGTH)
    return sik, k1, k2


def rakp4_code(suite, sik, console_random, bmc_sid, guid):
    """RAKP 4's integrity check value: HMAC(SIK, Rm, SIDc, GUIDc) cut to
    the suite's length (12 bytes for SHA-1, 16 for SHA-256)."""
    return _mac(suite, sik, console_random + struct.pack("<I", bmc_sid) + guid)[:suite.icv_length]


def integrity_code(suite, k1, signed):
    """A session packet's AuthCode: HMAC(K1, authtype .. next header), cut
    to 12 bytes (HMAC-SHA1-96) or 16 (HMAC-SHA256-128)."""
    return _mac(suite, k1, signed)[:suite.icv_length]


def wrap_session_packet(suite, session_id, sequence, message, k1, k2, *, iv=None):
    """An IPMI message in an RMCP+ session packet (§13.28) as a peer of
    this suite sends it: encrypted with K2, signed with K1 as the suite
    says."""
    payload_type = _IPMI_MESSAGE
    if suite.encrypted:
        from infrapower.ciphers import Cipher

        pad = (-(len(message) + 1)) % _AES_BLOCK
        plain = message + bytes(range(1, pad + 1)) + bytes([pad])
        iv = os.urandom(_AES_BLOCK) if iv is None else iv
        encryptor = Cipher("aes-cbc", k2[:_CONFIDENTIALITY_KEY_LENGTH], iv).encryptor()
        message = iv + encryptor.update(plain) + encryptor.finalize()
        payload_type |= _ENCRYPTED
    if suite.integrity:
        payload_type |= _AUTHENTICATED
    packet = struct.pack("<BBIIH", _AUTH_RMCP_PLUS, payload_type, session_id, sequence, len(message)) + message
    if suite.integrity:
        # Pad so the AuthCode starts on a 4-byte boundary.
        pad = (-(len(packet) + 2)) % 4
        packet += b"\xff" * pad + bytes([pad, _NEXT_HEADER])
        packet += integrity_code(suite, k1, packet)
    return _RMCP_HEADER + packet


@dataclass(frozen=True)
class SessionPacket:
    """An inbound RMCP+ session packet that passed the suite's checks."""

    session_id: int
    sequence: int
    payload: bytes  # decrypted


def unwrap_session_packet(suite, data, k1, k2):
    """The SessionPacket in `data` if it is a well-formed IPMI-message
    packet of this suite with a valid integrity code (and decrypts), else
    None.  Never raises on any input: this is the parser every hostile
    datagram reaches."""
    if len(data) < 16 or data[0] != _RMCP_HEADER[0] or data[3] & 0x1F != _RMCP_HEADER[3]:
        return None
    if data[4] != _AUTH_RMCP_PLUS or data[5] & 0x3F != _IPMI_MESSAGE:
        return None
    session_id, sequence, length = struct.unpack_from("<IIH", data, 6)
    end = 16 + length
    if suite.integrity:
        # A suite with integrity takes only signed packets: an unsigned
        # one could say anything.
        if not data[5] & _AUTHENTICATED or end + 2 + suite.icv_length > len(data):
            return None
        signed, code = data[4:-suite.icv_length], data[-suite.icv_length:]
        if data[-suite.icv_length - 1] != _NEXT_HEADER or not hmac.compare_digest(
                code, integrity_code(suite, k1, signed)):
            return None
    elif end > len(data) or data[5] & _AUTHENTICATED:
        return None
    payload = data[16:end]
    if bool(data[5] & _ENCRYPTED) != suite.encrypted:
        return None  # a suite with confidentiality never takes clear text
    if suite.encrypted:
        if len(payload) < 2 * _AES_BLOCK or len(payload) % _AES_BLOCK:
            return None
        from infrapower.ciphers import Cipher

        decryptor = Cipher("aes-cbc", k2[:_CONFIDENTIALITY_KEY_LENGTH], payload[:_AES_BLOCK]).decryptor()
        plain = decryptor.update(payload[_AES_BLOCK:]) + decryptor.finalize()
        pad = plain[-1]
        if pad >= _AES_BLOCK or pad + 1 > len(plain):
            return None
        payload = plain[:len(plain) - 1 - pad]
    return SessionPacket(session_id, sequence, payload)


def pre_session_packet(payload_type, body):
    """An unauthenticated pre-session packet (session id 0, sequence 0):
    how the console sends Open Session and RAKP messages."""
    return _RMCP_HEADER + struct.pack("<BBIIH", _AUTH_RMCP_PLUS, payload_type, 0, 0, len(body)) + body


def parse_pre_session_packet(data, payload_type):
    """The payload of an unauthenticated pre-session packet (session id
    0) of `payload_type`, at least 8 bytes (tag, status, reserved, console
    session id), or None.  Never raises."""
    if len(data) < 24 or data[0] != _RMCP_HEADER[0] or data[3] & 0x1F != _RMCP_HEADER[3]:
        return None
    if data[4] != _AUTH_RMCP_PLUS or data[5] != payload_type:
        return None
    session_id, _, length = struct.unpack_from("<IIH", data, 6)
    if session_id != 0 or length < 8 or 16 + length > len(data):
        return None
    return data[16:16 + length]


def request_message(netfn, rq_seq, command, data):
    """An IPMI request message (§13.8) from the console to the BMC, both
    checksums included."""
    header = bytes([_BMC_ADDRESS, netfn << 2])
    body = bytes([_CONSOLE_ADDRESS, rq_seq << 2, command]) + data
    return header + bytes([_checksum(header)]) + body + bytes([_checksum(body)])


def parse_response(message, rq_seq, netfn, command):
    """Completion code + data of an IPMI response message (§13.8) to the
    request (rq_seq, netfn, command) from the BMC to the console, with
    both checksums right; None for anything else."""
    if len(message) < 8 or message[0] != _CONSOLE_ADDRESS or message[3] != _BMC_ADDRESS:
        return None
    if _checksum(message[:2]) != message[2] or _checksum(message[3:-1]) != message[-1]:
        return None
    if message[1] >> 2 != netfn + 1 or message[4] >> 2 != rq_seq or message[5] != command:
        return None
    return message[6:-1]


def is_newer(sequence, than):
    """Serial-number order of 32-bit session sequence numbers (they wrap)."""
    return 0 < (sequence - than) & 0xFFFFFFFF < 0x80000000


class ReplayWindow:
    """The session sequence numbers accepted from the peer (§6.12.13):
    each number once; newer ones move the window; up to REPLAY_WINDOW
    older ones are still accepted once (datagrams reorder); anything else
    is a replay."""

    def __init__(self):
        self.newest = None
        self._seen = 0  # bit i: newest - i was accepted

    def accept(self, sequence):
        if sequence == 0:
            return False  # 0 marks packets outside a session, never a session's
        if self.newest is None or is_newer(sequence, self.newest):
            shift = 0 if self.newest is None else (sequence - self.newest) & 0xFFFFFFFF
            self._seen = ((self._seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) if shift < REPLAY_WINDOW else 1
            self.newest = sequence
            return True
        age = (self.newest - sequence) & 0xFFFFFFFF
        if age >= REPLAY_WINDOW or self._seen >> age & 1:
            return False
        self._seen |= 1 << age
        return True
