"""A small, fast SNMP manager: GET, walk and SET over one UDP socket.

Why not pysnmp: its high-level API costs ~0.3 s to import, as long as a
whole fence_apc_snmp run, and needs an asyncio loop per engine; even its
protocol layer over pyasn1 costs ~35 ms of CPU per run.  This client
builds and parses messages with infrapower.snmp.ber (checked against
pysnmp in the tests) and implements the User-based Security Model of
SNMPv3 (RFC 3414, RFC 3826 and the Blumenthal draft for AES-192/256,
RFC 7860) with hashlib/hmac and the system's libcrypto.  Nothing here
spawns a process.

Every operation (one GET, one whole walk, one SET) has one deadline; within
it the request is re-sent every RETRANSMIT_SECONDS until an answer comes.
Values come back as plain Python: int, str, an OID as ".1.3...", or None
for an OID the agent does not have (noSuchObject/noSuchInstance/noSuchName).

Secrets (community, keys) never reach the log: -v shows OIDs and the user.
"""

import logging
import os
import socket
import time

from infrapower.errors import SnmpError
from infrapower.ports import SNMP_PORT
from infrapower.record import record
from infrapower.snmp import ber
from infrapower.snmp.oid import normalise_oid, oid_tuple, within
from infrapower.snmp.usm import Usm

log = logging.getLogger(__name__)

RETRANSMIT_SECONDS = 1.0
MAX_MESSAGE_SIZE = 65507
BULK_REPETITIONS = 32  # rows asked by a walk's first GETBULK (unless the caller knows better)
MAX_BULK_VARBINDS = 1024  # a GETBULK asks at most this many varbinds (rows x columns)
V1_GUESSES = 24  # rows guessed per column in one SNMPv1 GETNEXT

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


class Refused(SnmpError):
    """The agent answered with an error status (a SET: nothing written)."""


class TooBig(Refused):
    """The answer would exceed the agent's message size: ask for less."""

    def __init__(self):
        super().__init__("the answer would be too big for the agent")


# -- the session ---------------------------------------------------------------


class SnmpSettings(record("SnmpSettings", "host port version community usm timeout family",
                          defaults=(SNMP_PORT, "1", "private", None, 5.0, socket.AF_UNSPEC), secret=("community",))):
    """How to reach one SNMP agent: what fence_snmp_pdu's options say
    (infrapower.options.snmp_settings), or what the PowerChain knows.
    `version` "1", "2c" or "3"; `community` for v1/v2c (a secret, never in
    a repr); `usm` a UsmUser for v3; `timeout` for each operation as a
    whole (GET, walk, SET); `family` AF_INET / AF_INET6 for inet4_only /
    inet6_only."""

    __slots__ = ()


class Session:
    """One agent, one socket, one set of credentials (SnmpSettings)."""

    def __init__(self, settings):
        host, port, version, community = settings.host, settings.port, str(settings.version).lower(), settings.community
        timeout, family = settings.timeout, settings.family
        usm = Usm(*settings.usm) if settings.usm else None
        if version == "3" and usm is None:
            raise SnmpError("SNMPv3 needs username")
        self.version = version
        self._wire_version = ber.SNMP_V1 if version == "1" else ber.SNMP_V2C
        self._community = community
        self._usm = usm
        self.timeout = timeout
        self.where = f"{host}:{port}"
        self._socket = self._connect(host, port, family, timeout)
        self._message_id = int.from_bytes(os.urandom(3), "big")
        self._v1_guesses = V1_GUESSES
        self._dropped = None  # the last datagram dropped by the current round trip (_Dropped)
        self.requests = 0  # round trips so far (one per request, retransmissions not counted)

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

    def get(self, oids, one_by_one=True):
        """[(oid, value or None)] in the order asked.  `one_by_one` False:
        an agent that fails the GET with noSuchName (SNMPv1's way, which
        some SNMPv2c agents keep) raises Refused at once instead of being
        asked again without each absent OID in turn, a round trip apiece:
        for a GET of guesses, many of them absent."""
        oids = [normalise_oid(oid) for oid in oids]
        return self._tolerant(ber.GET, oids, time.monotonic() + self.timeout, one_by_one)

    def walk(self, prefixes, rows=None):
        """{prefix: [(oid, value)]}: several table columns walked side by
        side (GETBULK on v2c/v3, GETNEXT on v1) within one deadline; each
        further GETBULK asks twice the rows of the last (first: `rows`+1)."""
        deadline = time.monotonic() + self.timeout
        prefixes = [normalise_oid(prefix) for prefix in prefixes]
        found = {prefix: [] for prefix in prefixes}
        cursors = {prefix: prefix for prefix in prefixes}
        repetitions = rows + 1 if rows else BULK_REPETITIONS  # +1: the end of the column in the same answer
        while cursors:
            active = list(cursors)
            if self.version == "1":
                rows = self._speculative_next(active, cursors, deadline)
            else:
                repetitions = max(1, min(repetitions, MAX_BULK_VARBINDS // len(active)))
                try:
                    rows, repetitions = self._bulk([cursors[p] for p in active], deadline, repetitions), repetitions * 2
                except TooBig:
                    if repetitions == 1:
                        raise SnmpError(f"{self.where} answered tooBig to a GETBULK of one row") from None
                    rows, repetitions = [], repetitions // 2  # the agent's message size limit: ask less
            for row in rows:
                for prefix, answer in zip(active, row):
                    if prefix not in cursors or answer is _SKIP:
                        continue
                    oid, value = answer
                    if value is None or value is _END or not within(oid, prefix) or oid_tuple(oid) <= oid_tuple(cursors[prefix]):
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
        depth = self._v1_guesses  # at a column's start, its rows are guessed to be .1, .2, ...
        asked = []
        for prefix in active:
            head, _, last = (cursors[prefix] + ".0" if cursors[prefix] == prefix else cursors[prefix]).rpartition(".")
            guesses = [cursors[prefix]] + [f"{head}.{int(last) + step}" for step in range(1, depth)] if last.isdigit() else [cursors[prefix]]
            asked.append(guesses + [None] * (depth - len(guesses)))
        flat = [oid for guesses in asked for oid in guesses if oid]
        try:
            answers = iter(self._tolerant(ber.GET_NEXT, flat, deadline))
        except TooBig:
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
        typed = [(normalise_oid(oid), ber.value(value)) for oid, value in varbinds]
        status, index, answer = self._request(ber.SET, typed, time.monotonic() + self.timeout, _same_oids)
        if status:
            oid = typed[index - 1][0] if 0 < index <= len(typed) else ""
            raise Refused(f"{self.where} refused SET {oid}: {_error_name(status)}")
        for oid, value in answer:
            if value is None:
                raise Refused(f"{self.where} refused SET {oid}: no such object")
        return answer

    # -- building blocks --

    def _tolerant(self, kind, oids, deadline, one_by_one=True):
        """GET/GETNEXT that survives SNMPv1's all-or-nothing noSuchName:
        the offending OID is answered None and the rest asked again.  A GET
        is answered by OID (an agent may not reorder, a forger may try);
        a GETNEXT by position, one answer per OID asked."""
        is_get = kind == ber.GET
        pending = list(range(len(oids)))
        answers = [(oid, None) for oid in oids]
        while pending:
            asked = [(oids[i], ber.NULL_VALUE) for i in pending]
            status, index, answer = self._request(kind, asked, deadline, _same_oids if is_get else _one_per_oid)
            if status == ERROR_STATUS_NO_SUCH_NAME and 0 < index <= len(pending) and one_by_one:
                del pending[index - 1]
                continue
            if status == ERROR_STATUS_TOO_BIG:
                raise TooBig()
            if status:
                raise Refused(f"{self.where} answered {_error_name(status)}")
            by_oid = dict(answer)
            for position, result in zip(pending, answer):
                answers[position] = (oids[position], by_oid[oids[position]]) if is_get else result
            break
        return answers

    def _bulk(self, oids, deadline, repetitions=BULK_REPETITIONS):
        status, _, answer = self._request(ber.GET_BULK, [(oid, ber.NULL_VALUE) for oid in oids], deadline, _whole_rows,
                                          repetitions=repetitions)
        if status == ERROR_STATUS_TOO_BIG:
            raise TooBig()
        if status:
            raise SnmpError(f"{self.where} answered {_error_name(status)}")
        width = len(oids)
        return [answer[start : start + width] for start in range(0, len(answer) - width + 1, width)]

    def _request(self, kind, varbinds, deadline, check, repetitions=None):
        """Send one PDU of `kind` (ber.GET, ...; [(oid, encoded value)]),
        return (error status, error index, [(oid, value)]) of the first
        answer that is ours and passes `check(asked OIDs, answered
        varbinds)` (None, or why the answer is dropped)."""
        request_id = self._next_id()
        # GETBULK: non-repeaters 0 and max-repetitions where a GET has its error fields.
        pdu = ber.pdu(kind, request_id, varbinds, *((0, repetitions) if kind == ber.GET_BULK else ()))
        log.debug("SNMP %s %s%s %s", self.where, ber.PDU_NAMES[kind], f" (max-repetitions {repetitions})" if repetitions else "",
                  " ".join(oid for oid, _ in varbinds))
        expected = _Expected(request_id, [oid for oid, _ in varbinds], check)
        status, index, answer = self._exchange(pdu, expected, deadline)
        for oid, value in answer:
            log.debug("SNMP %s   %s = %r", self.where, oid, value)
        if status:
            log.debug("SNMP %s   error %s at %d", self.where, _error_name(status), index)
        return status, index, answer

    def _next_id(self):
        self._message_id = (self._message_id + 1) % 0x7FFFFFFF
        return self._message_id

    @staticmethod
    def _response(pdu, expected):
        """(status, index, [(oid, value)]) of a Response ber.Pdu answering
        `expected`; raises _Dropped otherwise."""
        if pdu.tag != ber.RESPONSE:
            raise _Dropped("not a response")
        if pdu.request_id != expected.request_id:
            raise _Dropped("another request ID")
        status, index, answer = pdu.error_status, pdu.error_index, pdu.varbinds
        if not 0 <= status <= 0x7FFFFFFF or not 0 <= index <= len(expected.oids):
            raise _Dropped(f"error status {status} at index {index} cannot answer this request")
        reason = None if status else expected.check(expected.oids, answer)
        if reason:
            raise _Dropped(reason)
        return status, index, answer

    def _exchange(self, pdu, expected, deadline):
        if self._usm is not None:
            return self._exchange_v3(pdu, expected, deadline)
        wire = ber.community_message(self._wire_version, self._community, pdu)
        return self._round_trip(wire, lambda data: self._community_accept(data, expected), deadline)

    @staticmethod
    def _decode(decoder, data, *args):
        """decoder(data, *args), or _Dropped for what it cannot decode."""
        try:
            return decoder(data, *args)
        except ber.Malformed as error:
            raise _Dropped(f"undecodable ({error})") from None

    def _community_accept(self, data, expected):
        """The answer (see _response) in an SNMPv1/v2c message for us, else
        raises (_Dropped, or whatever the decoder makes of garbage)."""
        version, community, pdu = self._decode(ber.decode_community_message, data)
        if version != self._wire_version:
            raise _Dropped("another SNMP version")
        if community != self._community.encode():
            raise _Dropped("another community")
        return self._response(pdu, expected)

    def accept(self, data, accept):
        """accept(data), or None when the datagram is not a valid answer (why
        goes to the debug log): nothing a peer sends can raise past here."""
        try:
            return accept(data)
        except _Dropped as dropped:
            log.debug("SNMP %s   dropped an answer: %s", self.where, dropped)
            self._dropped = dropped
        except Exception as error:  # a last resort: nothing a peer sends ends the wait with a traceback
            log.debug("SNMP %s   dropped an answer that broke the decoder (%s)", self.where, type(error).__name__)
            self._dropped = _Dropped("undecodable")
        return None

    def _round_trip(self, wire, accept, deadline):
        """Send, re-send every RETRANSMIT_SECONDS, until accept(data) gives
        a result or the deadline passes.  A datagram accept() drops does not
        end the wait: the real answer may still come."""
        self._dropped = None
        self.requests += 1
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise self._timeout_error()
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
                except OSError as error:
                    raise SnmpError(f"cannot receive from {self.where}: {error.strerror}") from None
                result = self.accept(data, accept)
                if result is not None:
                    return result

    def _timeout_error(self):
        dropped = self._dropped
        if dropped is not None and dropped.hint:
            # An unauthenticated report can be forged, so it did not end the
            # wait; with nothing better by the deadline, it is the best clue.
            return SnmpError(f"{dropped.hint} (no authenticated answer within {self.timeout:g} s)")
        if self._usm is not None:
            ignored = "SNMPv3 credentials it ignores: username, snmp_priv_passwd, snmp_priv_prot"
        else:
            ignored = "credentials it ignores: community, SNMP version"
        last = f"; last answer dropped: {dropped}" if dropped is not None else ""
        return SnmpError(f"no answer from {self.where} within {self.timeout:g} s (device down, wrong address/port, or {ignored}){last}")

    # -- SNMPv3 --

    def _exchange_v3(self, pdu, expected, deadline):
        """RFC 3414 §4: discovery once per session, then the request; one
        re-send after the engine corrects our clock (an authenticated
        notInTimeWindow report), one re-discovery if the engine does not
        know the engine ID we used, while no authenticated message has
        confirmed it yet (discovery itself is unauthenticated, so a forger
        racing the agent may have answered it; after that one re-discovery
        such reports are only clues for the timeout message)."""
        usm = self._usm
        if not usm.engine_id:
            self._discover(deadline)
        resynchronised = rediscovered = False
        while True:
            message_id = self._next_id()
            wire = self._v3_message(message_id, pdu, usm)
            kind, value = self._round_trip(
                wire, lambda data: self._v3_accept(data, message_id, expected, may_rediscover=not rediscovered), deadline)
            if kind == "response":
                return value
            if kind == "unknown engine":
                rediscovered = True
                log.debug("SNMP %s   the agent does not know the engine ID discovered: discovering again", self.where)
                usm.learn_engine(*value)
                continue
            if kind == "report" and value == NOT_IN_TIME_WINDOW and not resynchronised:
                resynchronised = True  # _v3_accept took the engine's authenticated clock
                continue
            reason = USM_REPORTS.get(value, f"report {value}")
            raise SnmpError(f"{self.where}: SNMPv3 user {usm.user}: {reason}")

    def _discover(self, deadline):
        """RFC 3414 §4: an empty, unauthenticated request makes the agent
        report its engine ID, boots and time."""
        from infrapower.snmp.usm import Usm

        message_id = self._next_id()
        probe = ber.pdu(ber.GET, message_id, [])
        discovery = Usm("", "noAuthNoPriv", None, None, None, None)
        log.debug("SNMP %s SNMPv3 engine discovery", self.where)
        wire = self._v3_message(message_id, probe, discovery)
        expected = _Expected(message_id, [], _same_oids)
        self._round_trip(wire, lambda data: self._v3_accept(data, message_id, expected, discovering=True), deadline)

    def _v3_message(self, message_id, pdu, usm, flags=None):
        from infrapower.snmp.usm import patch_digest

        boots, engine_time = usm.clock()
        scoped = ber.scoped_pdu(usm.engine_id, b"", pdu)
        encrypted, salt = usm.encrypt(scoped, boots, engine_time) if usm.priv_protocol else (None, b"")
        security = ber.usm_parameters(usm.engine_id, boots, engine_time, usm.user, b"\0" * usm.digest_length(), salt)
        wire = ber.v3_message(message_id, MAX_MESSAGE_SIZE, usm.flags() if flags is None else flags, security,
                              scoped=scoped, encrypted=encrypted)
        if usm.auth:
            wire = patch_digest(wire, security, usm.digest_length(), len(salt), usm.sign)
        return wire

    def _v3_accept(self, data, message_id, expected, discovering=False, may_rediscover=True):
        """RFC 3412 §7.2 and RFC 3414 §3.2 for an incoming answer: returns
        ("response", (status, index, varbinds)), ("report", OID) for an
        authenticated report (or any report during discovery, or for a
        noAuthNoPriv user), or ("unknown engine", (engine ID, boots, time))
        for an unauthenticated unknownEngineID report before the engine is
        confirmed.  Everything else raises _Dropped: an unauthenticated
        packet never changes the engine ID, boots or time once discovery
        is done, and never ends the wait of an authenticated user."""
        import hmac  # SNMPv3 only: with hashlib, ~3 ms an SNMPv1/v2c run does without

        from infrapower.snmp.usm import ENGINE_MAX, FLAG_AUTH, FLAG_PRIV, LEVEL_FLAGS, patch_digest

        usm = self._usm
        message = self._decode(ber.decode_v3_message, data)
        if message.message_id != message_id:
            raise _Dropped("another message ID")
        if message.version != ber.SNMP_V3 or message.security_model != 3:
            raise _Dropped("not an SNMPv3 USM message")
        flags_octets = message.flags
        if len(flags_octets) != 1:
            raise _Dropped("malformed msgFlags")
        flags = flags_octets[0]
        if flags & FLAG_PRIV and not flags & FLAG_AUTH:
            raise _Dropped("msgFlags: privacy without authentication")
        # The reportable bit on an answer is processed as if zero (RFC 3412
        # §6.4: a receiver MUST; pysnmp-based agents set it on reports).
        security = message.security
        engine_id, boots, engine_time, user, digest, salt = self._decode(ber.decode_usm_parameters, security)
        if not (0 <= boots <= ENGINE_MAX and 0 <= engine_time <= ENGINE_MAX):
            raise _Dropped("engine boots/time out of range")
        authenticated = bool(flags & FLAG_AUTH)
        if authenticated:
            if not usm.auth or discovering:
                raise _Dropped("authenticated, but no key to check it")
            if engine_id != usm.engine_id or user != usm.user.encode():
                raise _Dropped("authenticated for another engine or user")
            if len(digest) != usm.digest_length():
                raise _Dropped("wrong digest length")
            zeroed = patch_digest(data, security, len(digest), len(salt), lambda _: b"\0" * len(digest))
            if zeroed is None or not hmac.compare_digest(usm.sign(zeroed), digest):
                raise _Dropped("wrong digest")

        if flags & FLAG_PRIV:
            if message.encrypted is None or not usm.priv_protocol:
                raise _Dropped("encrypted, but no key to decrypt it")
            plain = usm.decrypt(message.encrypted, salt, boots, engine_time)
            if plain is None:
                raise _Dropped("malformed privacy parameters")
            # Padding (DES) may follow the scoped PDU.
            _, _, pdu = self._decode(ber.decode_scoped_pdu, plain, True)
        elif message.scoped is not None:
            _, _, pdu = message.scoped
        else:
            raise _Dropped("encrypted without the privacy flag")

        if pdu.tag == ber.REPORT:
            if pdu.request_id not in (expected.request_id, 0):  # 0: the agent could not read ours
                raise _Dropped("a report for another request ID")
            oid = pdu.varbinds[0][0].lstrip(".") if pdu.varbinds else None
            if discovering:
                if not engine_id:
                    raise _Dropped("discovery report without an engine ID")
                usm.learn_engine(engine_id, boots, engine_time)
                return "report", oid
            if authenticated:
                if oid != NOT_IN_TIME_WINDOW and not usm.in_time_window(boots, engine_time):
                    raise _Dropped("report outside the time window (replayed or stale)")
                usm.authenticated_clock(boots, engine_time, authoritative=oid == NOT_IN_TIME_WINDOW)
                return "report", oid
            if not usm.auth:
                return "report", oid  # nothing is authenticated at this level
            if oid == UNKNOWN_ENGINE_ID and may_rediscover and not usm.confirmed and engine_id and engine_id != usm.engine_id:
                return "unknown engine", (engine_id, boots, engine_time)
            reason = USM_REPORTS.get(oid, f"report {oid}")
            raise _Dropped(f"unauthenticated report: {reason}",
                           hint=f"{self.where}: SNMPv3 user {usm.user}: {reason}")

        if discovering:
            raise _Dropped("an answer to discovery that is no report")
        if flags & (FLAG_AUTH | FLAG_PRIV) != LEVEL_FLAGS[usm.level]:
            raise _Dropped(f"security level differs from the request's ({usm.level})")
        if authenticated and not usm.in_time_window(boots, engine_time):
            raise _Dropped("outside the time window (replayed or stale)")
        answer = self._response(pdu, expected)
        if authenticated:
            usm.authenticated_clock(boots, engine_time)
        return "response", answer


class _Expected:
    """What an answer must match: our request ID, the OIDs asked, and a
    check of the varbinds (None, or why they cannot answer the request)."""

    __slots__ = ("request_id", "oids", "check")

    def __init__(self, request_id, oids, check):
        self.request_id, self.oids, self.check = request_id, oids, check


class _Dropped(Exception):
    """A datagram that is not a valid answer to our request; `hint` is the
    error to give if nothing valid comes before the deadline."""

    def __init__(self, reason, hint=None):
        super().__init__(reason)
        self.hint = hint


def _same_oids(asked, answer):
    """GET/SET: exactly the OIDs asked, each once (in any order)."""
    answered = [oid for oid, _ in answer]
    if len(answered) != len(asked) or set(answered) != set(asked):
        return "its OIDs are not the ones asked"
    return None


def _one_per_oid(asked, answer):
    """GETNEXT: one successor per OID asked."""
    return None if len(answer) == len(asked) else "not one answer per OID asked"


def _whole_rows(asked, answer):
    """GETBULK: at least one whole row (an agent may cut the last one)."""
    return None if len(answer) >= len(asked) else "no whole row"


_END = ber.END_OF_MIB_VIEW
_SKIP = object()  # a speculative GETNEXT answer that does not count


# Error statuses that mean the credentials lack a right, not a device fault.
ACCESS_ERRORS = {"noAccess", "readOnly", "notWritable", "authorizationError"}


def _error_name(status):
    name = ERROR_NAMES[status] if 0 <= status < len(ERROR_NAMES) else f"error {status}"
    if name in ACCESS_ERRORS:
        return f"{name} (the community or SNMPv3 user/snmp_sec_level lacks this access on the device)"
    return name
