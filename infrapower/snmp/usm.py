"""SNMPv3 User-based Security Model (RFC 3414) for infrapower.snmp: keys,
the authoritative engine's clock as a manager must track it, HMAC and the
privacy ciphers (RFC 3414 DES, RFC 3826 AES, the Blumenthal draft's
AES-192/256, RFC 7860's SHA-2).  Cheap to import, since every
fence_snmp_pdu run reads its protocol names: hashlib and hmac (~3 ms, with
OpenSSL) load when a key is localized or a message signed, the ciphers
(infrapower.ciphers) when privacy is used; the messages are
infrapower.snmp.ber's.
"""

import os
import struct
import time

from infrapower.errors import SnmpError
from infrapower.record import record

AUTH_PROTOCOLS = {  # name: (hashlib's name of the hash, HMAC truncation length) per RFC 3414 / RFC 7860
    "MD5": ("md5", 12),
    "SHA": ("sha1", 12),
    "SHA-224": ("sha224", 16),
    "SHA-256": ("sha256", 24),
    "SHA-384": ("sha384", 32),
    "SHA-512": ("sha512", 48),
}
PRIV_KEY_BYTES = {"DES": 16, "AES": 16, "AES-192": 24, "AES-256": 32}
SECURITY_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")

# msgFlags bits (RFC 3412 §6.4).
FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE = 1, 2, 4
LEVEL_FLAGS = {"noAuthNoPriv": 0, "authNoPriv": FLAG_AUTH, "authPriv": FLAG_AUTH | FLAG_PRIV}
# snmpEngineBoots and snmpEngineTime are INTEGER (0..2147483647); boots at
# the maximum means the engine must be re-keyed (RFC 3414 §2.2.2).
ENGINE_MAX = 2147483647
# RFC 3414 §2.2.3: an authenticated message more than 150 s older than the
# manager's notion of the engine's clock is outside the time window.
TIME_WINDOW_SECONDS = 150


def hash_of(name):
    """hashlib's constructor for a hash AUTH_PROTOCOLS names."""
    import hashlib

    return getattr(hashlib, name)


def localized_key(hash_factory, passphrase, engine_id):
    """RFC 3414 A.2: the passphrase stretched to 1 MB, hashed, then bound
    to the authoritative engine."""
    if not passphrase:
        raise SnmpError("SNMPv3: an empty key is not allowed")
    data = passphrase.encode()
    stretched = (data * (1048576 // len(data) + 1))[:1048576]
    user_key = hash_factory(stretched).digest()
    return hash_factory(user_key + engine_id + user_key).digest()


def extend_key(hash_factory, key, wanted):
    """AES-192/256 need longer keys than MD5/SHA-1 give: extended by
    re-hashing (draft-blumenthal-aes-usm-04, as net-snmp's AES-192/256)."""
    while len(key) < wanted:
        key += hash_factory(key).digest()
    return key[:wanted]


class UsmUser(record("UsmUser", "user level auth_protocol auth_key priv_protocol priv_key",
                     defaults=("noAuthNoPriv", "MD5", None, "DES", None), secret=("auth_key", "priv_key"))):
    """One SNMPv3 user's settings: `level` one of SECURITY_LEVELS,
    protocols as AUTH_PROTOCOLS / PRIV_KEY_BYTES name them; the keys are
    secrets, never in a repr, so never in a log."""

    __slots__ = ()

    @classmethod
    def checked(cls, user, level=None, auth_protocol=None, auth_key=None, priv_protocol=None, priv_key=None):
        """A user from what an admin wrote (names in any case; without a
        level, the keys given say which is meant), or SnmpError saying
        what is missing."""
        if not user:
            raise SnmpError("SNMPv3 needs username")
        implied = "authPriv" if priv_key else "authNoPriv" if auth_key else "noAuthNoPriv"
        level = _named("snmp_sec_level", level or implied, SECURITY_LEVELS)
        auth_protocol = _named("snmp_auth_prot", auth_protocol or "MD5", AUTH_PROTOCOLS)
        priv_protocol = _named("snmp_priv_prot", priv_protocol or "DES", PRIV_KEY_BYTES)
        if level != "noAuthNoPriv" and not auth_key:
            raise SnmpError(f"SNMPv3 {level} needs password (the authentication key)")
        if level == "authPriv" and not priv_key:
            raise SnmpError("SNMPv3 authPriv needs snmp_priv_passwd")
        return cls(user, level, auth_protocol, auth_key, priv_protocol, priv_key)


def _named(option, value, allowed):
    """fencing.py upper-cases choice values; match them case-insensitively."""
    for candidate in allowed:
        if candidate.upper() == str(value).upper():
            return candidate
    raise SnmpError(f"{option} {value!r}: use one of {', '.join(allowed)}")


class Usm:
    """One SNMPv3 user's keys, localized to the agent's engine, and that
    engine's clock as this manager knows it (RFC 3414 §2.3, §3.2 step 7b).

    The clock is `unconfirmed` while it comes only from the unauthenticated
    discovery report: the first authenticated message then sets it, and
    from there on only a newer authenticated message moves it forward."""

    def __init__(self, user, level, auth_protocol, auth_key, priv_protocol, priv_key):
        self.user = user
        self.level = level
        self.auth = AUTH_PROTOCOLS[auth_protocol] if level != "noAuthNoPriv" else None
        self.priv_protocol = priv_protocol if level == "authPriv" else None
        self._passphrases = (auth_key, priv_key)
        self.engine_id = b""
        self._boots = self._time = self._latest_received_time = 0
        self._time_base = time.monotonic()
        self.confirmed = False  # an authenticated message from engine_id was seen
        self._auth_key = self._priv_key = None
        self._salt = int.from_bytes(os.urandom(8), "big")

    def flags(self):
        return LEVEL_FLAGS[self.level] | FLAG_REPORTABLE

    def learn_engine(self, engine_id, boots, engine_time):
        """From an unauthenticated discovery report: keys are bound to this
        engine ID; its clock is a first guess.  Never once an authenticated
        message confirmed the engine (the caller checks `confirmed`)."""
        if engine_id != self.engine_id and self.auth:
            hash_factory = hash_of(self.auth[0])
            self._auth_key = localized_key(hash_factory, self._passphrases[0], engine_id)
            if self.priv_protocol:
                key = localized_key(hash_factory, self._passphrases[1], engine_id)
                self._priv_key = extend_key(hash_factory, key, PRIV_KEY_BYTES[self.priv_protocol])
        self.engine_id = engine_id
        self._set_clock(boots, engine_time)

    def _set_clock(self, boots, engine_time):
        self._boots, self._time = boots, engine_time
        self._latest_received_time = engine_time
        self._time_base = time.monotonic()

    def clock(self):
        """(boots, time) of the engine as of now: read once per message, so
        the header and the AES IV cannot disagree across a second's tick."""
        return self._boots, min(ENGINE_MAX, self._time + int(time.monotonic() - self._time_base))

    def in_time_window(self, boots, engine_time):
        """RFC 3414 §3.2 step 7b for an authenticated message: False for a
        replayed or stale one (older boots, or time more than 150 s behind)."""
        if not self.confirmed:
            return True
        local_boots, local_time = self.clock()
        if local_boots == ENGINE_MAX or boots < local_boots:
            return False
        return not (boots == local_boots and engine_time < local_time - TIME_WINDOW_SECONDS)

    def authenticated_clock(self, boots, engine_time, authoritative=False):
        """An authenticated message's boots/time: they move the clock only
        forward, except the first one (discovery's values were unconfirmed)
        or the engine's own notInTimeWindow correction (`authoritative`)."""
        newer = boots > self._boots or (boots == self._boots and engine_time > self._latest_received_time)
        if authoritative or not self.confirmed or newer:
            self._set_clock(boots, engine_time)
        self.confirmed = True

    # Authentication: HMAC over the whole message with the digest field zeroed.
    def digest_length(self):
        return self.auth[1] if self.auth else 0

    def sign(self, whole):
        import hmac

        return hmac.new(self._auth_key, whole, self.auth[0]).digest()[: self.auth[1]]

    # Privacy.
    def encrypt(self, plain, boots, engine_time):
        """(ciphertext, privacy parameters = salt), the IV from the same
        boots/time as the message header."""
        self._salt = (self._salt + 1) % (1 << 64)
        if self.priv_protocol == "DES":
            # RFC 3414 §8.1.1: salt = boots + counter; IV = pre-IV xor salt.
            salt = struct.pack(">II", boots, self._salt & 0xFFFFFFFF)
            iv = bytes(a ^ b for a, b in zip(self._priv_key[8:16], salt))
            plain += b"\0" * (-len(plain) % 8)
        else:
            # RFC 3826 §3.1.2.1: IV = boots + time + salt.
            salt = self._salt.to_bytes(8, "big")
            iv = struct.pack(">II", boots, engine_time) + salt
        encryptor = cipher(self.priv_protocol, self._priv_key, iv).encryptor()
        return encryptor.update(plain) + encryptor.finalize(), salt

    def decrypt(self, data, salt, boots, engine_time):
        """The plaintext, or None for parameters no agent could have sent
        (boots/time are range-checked by the caller)."""
        if len(salt) != 8 or not data or (self.priv_protocol == "DES" and len(data) % 8):
            return None
        if self.priv_protocol == "DES":
            iv = bytes(a ^ b for a, b in zip(self._priv_key[8:16], salt))
        else:
            iv = struct.pack(">II", boots, engine_time) + salt
        decryptor = cipher(self.priv_protocol, self._priv_key, iv).decryptor()
        return decryptor.update(data) + decryptor.finalize()


def cipher(protocol, key, iv):
    """DES-CBC (RFC 3414 §8) or AES-CFB128 (RFC 3826), from the system's
    libcrypto (infrapower.ciphers), loaded only when privacy is used."""
    from infrapower.ciphers import Cipher, CipherUnavailable

    try:
        return Cipher("des-cbc" if protocol == "DES" else "aes-cfb", key, iv)
    except CipherUnavailable as error:
        raise SnmpError(f"SNMPv3 privacy: {error}") from None


def patch_digest(wire, security, length, privacy_length, digest_of):
    """The message with its authentication parameters replaced by
    digest_of(message with them zeroed), or None if they are not where a
    well-formed message has them.  In the encoded security parameters
    (which appear once in the message) they are the OCTET STRING right
    before the privacy parameters, the last field."""
    start = wire.find(security)
    at = len(security) - (2 + privacy_length) - length
    if start < 0 or at < 2 or length > 127 or security[at - 2 : at] != b"\x04" + bytes([length]):
        return None
    offset = start + at
    zeroed = wire[:offset] + b"\0" * length + wire[offset + length :]
    return zeroed[:offset] + digest_of(zeroed) + zeroed[offset + length :]
