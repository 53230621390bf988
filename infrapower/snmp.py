"""A small, fast SNMP manager: GET, walk and SET over one UDP socket.

Why not pysnmp's high-level API: importing it costs ~0.3 s, as long as a
whole fence_apc_snmp run, and it needs an asyncio loop per engine.  This
client builds and parses messages with pysnmp's protocol layer
(`pysnmp.proto.api`, BER via pyasn1; ~20 ms to import) and implements the
User-based Security Model of SNMPv3 (RFC 3414, RFC 3826 and the
Blumenthal draft for AES-192/256, RFC 7860) with hashlib/hmac and the
`cryptography` ciphers.  Nothing here spawns a process.

Every operation (one GET, one whole walk, one SET) has one deadline; within
it the request is re-sent every RETRANSMIT_SECONDS until an answer comes.
Values come back as plain Python: int, str, an OID as ".1.3...", or None
for an OID the agent does not have (noSuchObject/noSuchInstance/noSuchName).

Secrets (community, keys) never reach the log: `--verbose` shows each OID
exchanged and the user name, nothing else.
"""

import functools
import hashlib
import hmac
import logging
import os
import socket
import struct
import time

from infrapower.fence import FenceError

RETRANSMIT_SECONDS = 1.0
MAX_MESSAGE_SIZE = 65507
BULK_REPETITIONS = 32
V1_GUESSES = 24  # rows guessed per column in one SNMPv1 GETNEXT

AUTH_PROTOCOLS = {  # name: (hash, HMAC truncation length) per RFC 3414 / RFC 7860
    "MD5": (hashlib.md5, 12),
    "SHA": (hashlib.sha1, 12),
    "SHA-224": (hashlib.sha224, 16),
    "SHA-256": (hashlib.sha256, 24),
    "SHA-384": (hashlib.sha384, 32),
    "SHA-512": (hashlib.sha512, 48),
}
PRIV_KEY_BYTES = {"DES": 16, "AES": 16, "AES-192": 24, "AES-256": 32}
SECURITY_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")

# usmStats counters an agent reports instead of answering (RFC 3414 §3.2).
USM_REPORTS = {
    "1.3.6.1.6.3.15.1.1.1.0": "unsupported security level (check snmp_sec_level)",
    "1.3.6.1.6.3.15.1.1.2.0": "not in time window",
    "1.3.6.1.6.3.15.1.1.3.0": "unknown user name (check username)",
    "1.3.6.1.6.3.15.1.1.4.0": "unknown engine ID",
    "1.3.6.1.6.3.15.1.1.5.0": "wrong digest (check password and snmp_auth_prot)",
    "1.3.6.1.6.3.15.1.1.6.0": "decryption error (check snmp_priv_passwd and snmp_priv_prot)",
}
NOT_IN_TIME_WINDOW = "1.3.6.1.6.3.15.1.1.2.0"
UNKNOWN_ENGINE_ID = "1.3.6.1.6.3.15.1.1.4.0"

ERROR_STATUS_TOO_BIG = 1
ERROR_STATUS_NO_SUCH_NAME = 2  # SNMPv1's "no such OID"
ERROR_NAMES = (
    "noError tooBig noSuchName badValue readOnly genErr noAccess wrongType wrongLength wrongEncoding "
    "wrongValue noCreation inconsistentValue resourceUnavailable commitFailed undoFailed authorizationError "
    "notWritable inconsistentName"
).split()


class SnmpError(FenceError):
    """The agent did not answer, refused the request or the credentials."""


class _TooBig(SnmpError):
    """The answer would exceed the agent's message size: ask for less."""

    def __init__(self):
        super().__init__("the answer would be too big for the agent")


def normalise_oid(oid):
    return "." + str(oid).strip().lstrip(".")


def _oid_tuple(oid):
    return tuple(int(part) for part in str(oid).strip(".").split("."))


def within(oid, prefix):
    """Is `oid` strictly inside the subtree `prefix`?"""
    return oid.startswith(prefix.rstrip(".") + ".")


# -- SNMPv3 USM keys and ciphers ---------------------------------------------


def localized_key(hash_factory, passphrase, engine_id):
    """RFC 3414 A.2: the passphrase stretched to 1 MB, hashed, then bound
    to the authoritative engine."""
    if not passphrase:
        raise SnmpError("SNMPv3: an empty key is not allowed")
    data = passphrase.encode()
    stretched = (data * (1048576 // len(data) + 1))[:1048576]
    user_key = hash_factory(stretched).digest()
    return hash_factory(user_key + engine_id + user_key).digest()


class Usm:
    """One SNMPv3 user's keys, localized to the agent's engine."""

    def __init__(self, user, level, auth_protocol, auth_key, priv_protocol, priv_key):
        self.user = user
        self.level = level
        self.auth = AUTH_PROTOCOLS[auth_protocol] if level != "noAuthNoPriv" else None
        self.priv_protocol = priv_protocol if level == "authPriv" else None
        self._passphrases = (auth_key, priv_key)
        self.engine_id = b""
        self.boots = self.time = 0
        self._time_base = time.monotonic()
        self._auth_key = self._priv_key = None
        self._salt = int.from_bytes(os.urandom(8), "big")

    def flags(self):
        return {"noAuthNoPriv": 0, "authNoPriv": 1, "authPriv": 3}[self.level] | 4  # reportable

    def learn_engine(self, engine_id, boots, engine_time):
        """From the discovery report: keys are bound to this engine ID."""
        if engine_id != self.engine_id and self.auth:
            hash_factory = self.auth[0]
            self._auth_key = localized_key(hash_factory, self._passphrases[0], engine_id)
            if self.priv_protocol:
                self._priv_key = self._extend(localized_key(hash_factory, self._passphrases[1], engine_id))
        self.engine_id = engine_id
        self.synchronise(boots, engine_time)

    def synchronise(self, boots, engine_time):
        """The agent's clock as of now (RFC 3414 §3.2 step 7: the time
        window is 150 s; we keep our estimate current)."""
        self.boots, self.time = boots, engine_time
        self._time_base = time.monotonic()

    def _extend(self, key):
        """AES-192/256 need longer keys than MD5/SHA-1 give: extended by
        re-hashing (draft-blumenthal-aes-usm-04, as net-snmp's AES-192/256)."""
        wanted = PRIV_KEY_BYTES[self.priv_protocol]
        while len(key) < wanted:
            key += self.auth[0](key).digest()
        return key[:wanted]

    def engine_time(self):
        return self.time + int(time.monotonic() - self._time_base)

    # Authentication: HMAC over the whole message with the digest field zeroed.
    def digest_length(self):
        return self.auth[1] if self.auth else 0

    def sign(self, whole):
        return hmac.new(self._auth_key, whole, self.auth[0]).digest()[: self.auth[1]]

    # Privacy.
    def encrypt(self, plain):
        """(ciphertext, privacy parameters = salt)."""
        self._salt = (self._salt + 1) % (1 << 64)
        if self.priv_protocol == "DES":
            # RFC 3414 §8.1.1: salt = boots + counter; IV = pre-IV xor salt.
            salt = struct.pack(">II", self.boots, self._salt & 0xFFFFFFFF)
            iv = bytes(a ^ b for a, b in zip(self._priv_key[8:16], salt))
            plain += b"\0" * (-len(plain) % 8)
        else:
            # RFC 3826 §3.1.2.1: IV = boots + time + salt.
            salt = self._salt.to_bytes(8, "big")
            iv = struct.pack(">II", self.boots, self.engine_time()) + salt
        encryptor = _cipher(self.priv_protocol, self._priv_key, iv).encryptor()
        return encryptor.update(plain) + encryptor.finalize(), salt

    def decrypt(self, data, salt, boots, engine_time):
        if len(salt) != 8 or (self.priv_protocol == "DES" and len(data) % 8):
            raise SnmpError("SNMPv3: malformed encrypted answer")
        if self.priv_protocol == "DES":
            iv = bytes(a ^ b for a, b in zip(self._priv_key[8:16], salt))
        else:
            iv = struct.pack(">II", boots, engine_time) + salt
        decryptor = _cipher(self.priv_protocol, self._priv_key, iv).decryptor()
        return decryptor.update(data) + decryptor.finalize()


def _cipher(protocol, key, iv):
    """DES-CBC (RFC 3414 §8) or AES-CFB128 (RFC 3826) from `cryptography`,
    imported only when privacy is used."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        try:  # cryptography >= 43 keeps these among the "decrepit" ciphers
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
            from cryptography.hazmat.decrepit.ciphers.modes import CFB
        except ImportError:
            TripleDES, CFB = algorithms.TripleDES, modes.CFB
    except ImportError:
        raise SnmpError("SNMPv3 privacy needs the Python package cryptography") from None
    if protocol == "DES":
        # Single DES is TripleDES with one key three times (EDE, K1=K2=K3).
        return Cipher(TripleDES(key[:8] * 3), modes.CBC(iv))
    return Cipher(algorithms.AES(key), CFB(iv))


# -- the session ---------------------------------------------------------------


class Session:
    """One agent, one socket, one set of credentials."""

    def __init__(self, host, port=161, *, version="2c", community="public", usm=None, timeout=5.0, family=socket.AF_UNSPEC):
        from pyasn1.codec.ber import decoder, encoder
        from pysnmp.proto import api

        self._encoder, self._decoder, self._api = encoder, decoder, api
        self.version = version
        self._proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_1 if version == "1" else api.SNMP_VERSION_2C]
        self._community = community
        self._usm = usm
        self.timeout = timeout
        self.where = f"{host}:{port}"
        self._socket = self._connect(host, port, family, timeout)
        self._message_id = int.from_bytes(os.urandom(3), "big")
        self._v1_guesses = V1_GUESSES

    @staticmethod
    def _connect(host, port, family, timeout):
        from infrapower.resolve import resolve

        try:
            infos = resolve(host, port, socket.SOCK_DGRAM, timeout, family)
        except socket.gaierror as error:
            raise SnmpError(f"cannot resolve {host}: {error.strerror}") from None
        except socket.timeout as error:
            raise SnmpError(str(error)) from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.connect(address)  # the kernel then drops datagrams from anyone else
        return sock

    def close(self):
        self._socket.close()

    # -- public operations --

    def get(self, oids):
        """[(oid, value or None)] in the order asked."""
        oids = [normalise_oid(oid) for oid in oids]
        return self._tolerant(self._proto.GetRequestPDU, oids, time.monotonic() + self.timeout)

    def walk(self, prefixes):
        """{prefix: [(oid, value)]}: several table columns walked side by
        side (GETBULK on v2c/v3, GETNEXT on v1) within one deadline."""
        deadline = time.monotonic() + self.timeout
        prefixes = [normalise_oid(prefix) for prefix in prefixes]
        found = {prefix: [] for prefix in prefixes}
        cursors = {prefix: prefix for prefix in prefixes}
        while cursors:
            active = list(cursors)
            if self.version == "1":
                rows = self._speculative_next(active, cursors, deadline)
            else:
                rows = self._bulk([cursors[p] for p in active], deadline)
            for row in rows:
                for prefix, answer in zip(active, row):
                    if prefix not in cursors or answer is _SKIP:
                        continue
                    oid, value = answer
                    if value is None or value is _END or not within(oid, prefix) or _oid_tuple(oid) <= _oid_tuple(cursors[prefix]):
                        del cursors[prefix]  # left the column (or the agent loops)
                        continue
                    found[prefix].append((oid, value))
                    cursors[prefix] = oid
        return found

    def _speculative_next(self, active, cursors, deadline):
        """SNMPv1 has no GETBULK: one GETNEXT per row would cost a round
        trip per outlet.  Instead each column asks GETNEXT for its cursor
        and for guessed successors (last sub-identifier +1, +2, ...) in one
        request; an answer counts only while every guess so far was right,
        so the result is exactly what a plain walk gives.  Returns rows
        like _bulk, _SKIP where a guess broke the chain."""
        depth = self._v1_guesses if all(cursors[p] != p for p in active) else 1
        asked = []
        for prefix in active:
            head, _, last = cursors[prefix].rpartition(".")
            guesses = [cursors[prefix]] + [f"{head}.{int(last) + step}" for step in range(1, depth)] if last.isdigit() else [cursors[prefix]]
            asked.append(guesses + [None] * (depth - len(guesses)))
        flat = [oid for guesses in asked for oid in guesses if oid]
        try:
            answers = iter(self._tolerant(self._proto.GetNextRequestPDU, flat, deadline))
        except _TooBig:
            if depth == 1:
                raise SnmpError(f"{self.where} answered tooBig to a single GETNEXT") from None
            self._v1_guesses = max(1, depth // 2)  # the agent's message size limit: guess less
            return []
        per_column = [[next(answers) if oid else None for oid in guesses] for guesses in asked]
        rows = []
        for step in range(depth):
            row = []
            for guesses, results in zip(asked, per_column):
                chained = guesses[step] and all(results[i] and results[i][0] == guesses[i + 1] for i in range(step))
                row.append(results[step] if chained else _SKIP)
            rows.append(row)
        return rows

    def set(self, varbinds):
        """Write [(oid, int or str)]; any error status or missing OID fails."""
        pdu = self._proto.SetRequestPDU()
        typed = [(normalise_oid(oid), self._typed(value)) for oid, value in varbinds]
        status, index, answer = self._request(pdu, typed, time.monotonic() + self.timeout)
        if status:
            oid = typed[index - 1][0] if 0 < index <= len(typed) else ""
            raise SnmpError(f"{self.where} refused SET {oid}: {_error_name(status)}")
        for (oid, value), (_, sent) in zip(answer, typed):
            if value is None:
                raise SnmpError(f"{self.where} refused SET {oid}: no such object")
        return answer

    # -- building blocks --

    def _typed(self, value):
        if isinstance(value, int):
            return self._proto.Integer(value)
        return self._proto.OctetString(str(value).encode())

    def _tolerant(self, pdu_class, oids, deadline):
        """GET/GETNEXT that survives SNMPv1's all-or-nothing noSuchName:
        the offending OID is answered None and the rest asked again."""
        pending = list(range(len(oids)))
        answers = [(oid, None) for oid in oids]
        while pending:
            status, index, answer = self._request(pdu_class(), [(oids[i], self._proto.Null("")) for i in pending], deadline)
            if status == ERROR_STATUS_NO_SUCH_NAME and 0 < index <= len(pending):
                del pending[index - 1]
                continue
            if status == ERROR_STATUS_TOO_BIG:
                raise _TooBig()
            if status:
                raise SnmpError(f"{self.where} answered {_error_name(status)}")
            for position, result in zip(pending, answer):
                answers[position] = result
            break
        return answers

    def _bulk(self, oids, deadline):
        pdu = self._proto.GetBulkRequestPDU()
        self._proto.apiBulkPDU.set_defaults(pdu)
        self._proto.apiBulkPDU.set_non_repeaters(pdu, 0)
        self._proto.apiBulkPDU.set_max_repetitions(pdu, BULK_REPETITIONS)
        status, _, answer = self._request(pdu, [(oid, self._proto.Null("")) for oid in oids], deadline, defaults=False)
        if status:
            raise SnmpError(f"{self.where} answered {_error_name(status)}")
        width = len(oids)
        return [answer[start : start + width] for start in range(0, len(answer) - width + 1, width)]

    def _request(self, pdu, varbinds, deadline, defaults=True):
        """Send one PDU, return (error status, error index, [(oid, value)])."""
        api_pdu = self._proto.apiPDU
        if defaults:
            api_pdu.set_defaults(pdu)
        request_id = self._next_id()
        api_pdu.set_request_id(pdu, request_id)
        api_pdu.set_varbinds(pdu, varbinds)
        kind = type(pdu).__name__.replace("RequestPDU", "").upper()
        logging.debug("SNMP %s %s %s", self.where, kind, " ".join(oid for oid, _ in varbinds))
        response = self._exchange(pdu, request_id, deadline)
        status = int(api_pdu.get_error_status(response))
        index = int(api_pdu.get_error_index(response))
        answer = [(normalise_oid(oid), self._plain(value)) for oid, value in api_pdu.get_varbinds(response)]
        for oid, value in answer:
            logging.debug("SNMP %s   %s = %r", self.where, oid, value)
        if status:
            logging.debug("SNMP %s   error %s at %d", self.where, _error_name(status), index)
        return status, index, answer

    def _next_id(self):
        self._message_id = (self._message_id + 1) % 0x7FFFFFFF
        return self._message_id

    def _plain(self, value):
        proto, v2c = self._proto, self._api.v2c
        if isinstance(value, (v2c.NoSuchObject, v2c.NoSuchInstance, proto.Null)):
            return None
        if isinstance(value, v2c.EndOfMibView):
            return _END
        if isinstance(value, proto.ObjectIdentifier):
            return normalise_oid(value)
        if isinstance(value, proto.OctetString):
            return bytes(value).decode("utf-8", "replace")
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)

    def _exchange(self, pdu, request_id, deadline):
        if self._usm is not None:
            return self._exchange_v3(pdu, request_id, deadline)
        message = self._proto.Message()
        self._proto.apiMessage.set_defaults(message)
        self._proto.apiMessage.set_community(message, self._community)
        self._proto.apiMessage.set_pdu(message, pdu)
        wire = self._encoder.encode(message)

        def accept(data):
            try:
                answer, _ = self._decoder.decode(data, asn1Spec=self._proto.Message())
            except Exception:  # not SNMP, or not our version: ignore it
                return None
            response = self._proto.apiMessage.get_pdu(answer)
            if int(self._proto.apiPDU.get_request_id(response)) != request_id:
                return None
            return response

        return self._round_trip(wire, accept, deadline)

    def _round_trip(self, wire, accept, deadline):
        """Send, re-send every RETRANSMIT_SECONDS, until accept(data) gives
        a result or the deadline passes."""
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise SnmpError(
                    f"no answer from {self.where} within {self.timeout:g} s "
                    "(device down, wrong address/port, or credentials it ignores: community, SNMP version, v3 user)"
                )
            try:
                self._socket.send(wire)
            except OSError as error:
                raise SnmpError(f"cannot send to {self.where}: {error.strerror}") from None
            resend_at = min(deadline, now + RETRANSMIT_SECONDS)
            while True:
                remaining = resend_at - time.monotonic()
                if remaining <= 0:
                    break
                self._socket.settimeout(remaining)
                try:
                    data = self._socket.recv(MAX_MESSAGE_SIZE)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    # ICMP port unreachable: nothing listens; keep trying until the deadline.
                    time.sleep(min(0.1, max(0.0, remaining)))
                    continue
                result = accept(data)
                if result is not None:
                    return result

    # -- SNMPv3 --

    def _exchange_v3(self, pdu, request_id, deadline):
        usm = self._usm
        if not usm.engine_id:
            self._discover(deadline)
        for attempt in range(2):
            message_id = self._next_id()
            wire = self._v3_message(message_id, pdu, usm)
            kind, response = self._round_trip(wire, lambda data: self._v3_accept(data, message_id), deadline)
            if kind == "report":
                oid = self._report_oid(response)
                if oid in (NOT_IN_TIME_WINDOW, UNKNOWN_ENGINE_ID) and attempt == 0:
                    continue  # _v3_accept already re-synchronised boots/time
                raise SnmpError(f"{self.where}: SNMPv3 user {usm.user}: {USM_REPORTS.get(oid, 'report ' + str(oid))}")
            return response
        raise SnmpError(f"{self.where}: SNMPv3 time synchronisation failed")

    def _report_oid(self, pdu):
        varbinds = self._proto.apiPDU.get_varbinds(pdu)
        return str(varbinds[0][0]).lstrip(".") if varbinds else None

    def _discover(self, deadline):
        """RFC 3414 §4: an empty, unauthenticated request makes the agent
        report its engine ID, boots and time."""
        message_id = self._next_id()
        probe = self._proto.GetRequestPDU()
        self._proto.apiPDU.set_defaults(probe)
        self._proto.apiPDU.set_varbinds(probe, [])
        discovery = Usm("", "noAuthNoPriv", None, None, None, None)
        logging.debug("SNMP %s SNMPv3 engine discovery", self.where)
        wire = self._v3_message(message_id, probe, discovery)
        self._round_trip(wire, lambda data: self._v3_accept(data, message_id, discovering=True), deadline)
        if not self._usm.engine_id:
            raise SnmpError(f"{self.where}: SNMPv3 engine discovery got no engine ID")

    def _v3_message(self, message_id, pdu, usm):
        SNMPv3Message, UsmSecurityParameters = _v3_types()
        message = SNMPv3Message()
        message["msgVersion"] = 3
        header = message["msgGlobalData"]
        header["msgID"] = message_id
        header["msgMaxSize"] = MAX_MESSAGE_SIZE
        header["msgFlags"] = bytes([usm.flags()])
        header["msgSecurityModel"] = 3

        scoped = message["msgData"]["plaintext"].clone()
        scoped["contextEngineId"] = usm.engine_id
        scoped["contextName"] = b""
        scoped["data"].setComponentByType(pdu.tagSet, pdu)

        params = UsmSecurityParameters()
        params["msgAuthoritativeEngineId"] = usm.engine_id
        params["msgAuthoritativeEngineBoots"] = usm.boots
        params["msgAuthoritativeEngineTime"] = usm.engine_time()
        params["msgUserName"] = usm.user.encode()
        params["msgAuthenticationParameters"] = b"\0" * usm.digest_length()
        params["msgPrivacyParameters"] = b""
        if usm.priv_protocol:
            encrypted, salt = usm.encrypt(self._encoder.encode(scoped))
            params["msgPrivacyParameters"] = salt
            message["msgData"]["encryptedPDU"] = encrypted
        else:
            message["msgData"]["plaintext"] = scoped
        security = self._encoder.encode(params)
        message["msgSecurityParameters"] = security
        wire = self._encoder.encode(message)
        if usm.auth:
            wire = _patch_digest(wire, security, usm.digest_length(), len(params["msgPrivacyParameters"]), usm.sign)
        return wire

    def _v3_accept(self, data, message_id, discovering=False):
        """("response"|"report", pdu) for our message, else None."""
        SNMPv3Message, UsmSecurityParameters = _v3_types()
        try:
            message, _ = self._decoder.decode(data, asn1Spec=SNMPv3Message())
            if int(message["msgGlobalData"]["msgID"]) != message_id:
                return None
            security_bytes = bytes(message["msgSecurityParameters"])
            params, _ = self._decoder.decode(security_bytes, asn1Spec=UsmSecurityParameters())
        except Exception:
            return None
        usm = self._usm
        engine_id = bytes(params["msgAuthoritativeEngineId"])
        boots, engine_time = int(params["msgAuthoritativeEngineBoots"]), int(params["msgAuthoritativeEngineTime"])
        flags = bytes(message["msgGlobalData"]["msgFlags"])[0]
        digest = bytes(params["msgAuthenticationParameters"])
        if flags & 1 and usm.auth:
            expected = None
            if usm.engine_id == engine_id:
                privacy_length = len(params["msgPrivacyParameters"])
                zeroed = _patch_digest(data, security_bytes, len(digest), privacy_length, lambda _: b"\0" * len(digest))
                expected = usm.sign(zeroed)
            if expected is None or not hmac.compare_digest(expected, digest):
                logging.debug("SNMP %s   dropped an answer whose digest does not match", self.where)
                return None
        if discovering or not flags & 1:
            # Unauthenticated reports (discovery, wrong key) carry the engine's clock.
            if engine_id:
                usm.learn_engine(engine_id, boots, engine_time)
        else:
            usm.synchronise(boots, engine_time)
        scoped_data = message["msgData"]
        if scoped_data.getName() == "encryptedPDU":
            if not usm.priv_protocol:
                return None
            plain = usm.decrypt(bytes(scoped_data["encryptedPDU"]), bytes(params["msgPrivacyParameters"]), boots, engine_time)
            try:
                scoped, _ = self._decoder.decode(plain, asn1Spec=scoped_data["plaintext"].clone())
            except Exception:
                raise SnmpError(f"{self.where}: SNMPv3 answer does not decrypt (check snmp_priv_passwd and snmp_priv_prot)") from None
        else:
            scoped = scoped_data["plaintext"]
        pdu = scoped["data"].getComponent()
        kind = "report" if pdu.tagSet == self._proto.ReportPDU.tagSet else "response"
        if kind == "response" and usm.auth and not flags & 1:
            logging.debug("SNMP %s   dropped an unauthenticated answer", self.where)
            return None  # only reports may come back unauthenticated (RFC 3414 §3.2)
        return kind, pdu


@functools.lru_cache(maxsize=None)
def _v3_types():
    """(SNMPv3Message, UsmSecurityParameters): the SNMPv3 message (RFC 3412
    §6) and USM parameters (RFC 3414 §2.4) in pyasn1.  Declared here
    because pysnmp's own copies live in modules that import its whole
    message-processing and security machinery: +30 ms per agent run,
    measured, on a budget of ~150 ms."""
    from pyasn1.type import namedtype, univ
    from pysnmp.proto import rfc1905

    def sequence(name, *fields, base=univ.Sequence):
        types = namedtype.NamedTypes(*(namedtype.NamedType(field, kind) for field, kind in fields))
        return type(name, (base,), {"componentType": types})

    scoped_pdu = sequence("ScopedPDU", ("contextEngineId", univ.OctetString()), ("contextName", univ.OctetString()),
                          ("data", rfc1905.PDUs()))
    scoped_pdu_data = sequence("ScopedPduData", ("plaintext", scoped_pdu()), ("encryptedPDU", univ.OctetString()),
                               base=univ.Choice)
    header = sequence("HeaderData", ("msgID", univ.Integer()), ("msgMaxSize", univ.Integer()),
                      ("msgFlags", univ.OctetString()), ("msgSecurityModel", univ.Integer()))
    message = sequence("SNMPv3Message", ("msgVersion", univ.Integer()), ("msgGlobalData", header()),
                       ("msgSecurityParameters", univ.OctetString()), ("msgData", scoped_pdu_data()))
    usm = sequence("UsmSecurityParameters", ("msgAuthoritativeEngineId", univ.OctetString()),
                   ("msgAuthoritativeEngineBoots", univ.Integer()), ("msgAuthoritativeEngineTime", univ.Integer()),
                   ("msgUserName", univ.OctetString()), ("msgAuthenticationParameters", univ.OctetString()),
                   ("msgPrivacyParameters", univ.OctetString()))
    return message, usm


class _EndOfMib:
    def __repr__(self):
        return "endOfMibView"


_END = _EndOfMib()
_SKIP = object()  # a speculative GETNEXT answer that does not count


def _patch_digest(wire, security, length, privacy_length, digest_of):
    """The message with its authentication parameters replaced by
    digest_of(message with them zeroed).  In the encoded security
    parameters (which appear once in the message) they are the OCTET
    STRING right before the privacy parameters, the last field."""
    start = wire.find(security)
    at = len(security) - (2 + privacy_length) - length
    if start < 0 or security[at - 2 : at] != b"\x04" + bytes([length]):
        raise SnmpError("SNMPv3: cannot place the message digest")
    offset = start + at
    zeroed = wire[:offset] + b"\0" * length + wire[offset + length :]
    return zeroed[:offset] + digest_of(zeroed) + zeroed[offset + length :]


def _error_name(status):
    return ERROR_NAMES[status] if 0 <= status < len(ERROR_NAMES) else f"error {status}"


def session_from_options(options, timeout):
    """A Session from fencing.py's parsed options (fence_apc_snmp's names)."""
    version = str(options.get("--snmp-version") or "1").lower()  # fencing.py upper-cases "2c"
    family = socket.AF_INET if _flag(options, "--inet4-only") else socket.AF_INET6 if _flag(options, "--inet6-only") else socket.AF_UNSPEC
    usm = None
    if version == "3":
        usm = usm_from_options(options)
    port = int(options.get("--ipport") or 161)
    return Session(options["--ip"], port, version=version, community=options.get("--community", "private"), usm=usm,
                   timeout=timeout, family=family)


def _flag(options, name):
    """fencing.py keeps a boolean given as 0/no/off on stdin present."""
    return name in options and str(options[name]).lower() not in ("0", "no", "off", "false")


def _choice(options, name, allowed, default):
    """fencing.py upper-cases choice values; match them case-insensitively."""
    value = options.get(name) or default
    for candidate in allowed:
        if candidate.upper() == str(value).upper():
            return candidate
    raise SnmpError(f"{name} {value!r}: use one of {', '.join(allowed)}")


def usm_from_options(options):
    user = options.get("--username")
    if not user:
        raise SnmpError("SNMPv3 needs username")
    # Without snmp_sec_level, the keys given say which level is meant.
    implied = "authPriv" if options.get("--snmp-priv-passwd") else "authNoPriv" if options.get("--password") else "noAuthNoPriv"
    level = _choice(options, "--snmp-sec-level", SECURITY_LEVELS, implied)
    auth = _choice(options, "--snmp-auth-prot", list(AUTH_PROTOCOLS), "MD5")
    priv = _choice(options, "--snmp-priv-prot", list(PRIV_KEY_BYTES), "DES")
    if level != "noAuthNoPriv" and not options.get("--password"):
        raise SnmpError(f"SNMPv3 {level} needs password (the authentication key)")
    if level == "authPriv" and not options.get("--snmp-priv-passwd"):
        raise SnmpError("SNMPv3 authPriv needs snmp_priv_passwd")
    return Usm(user, level, auth, options.get("--password"), priv, options.get("--snmp-priv-passwd"))
