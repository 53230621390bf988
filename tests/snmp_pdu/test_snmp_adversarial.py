"""A lying peer or a man in the middle must never make the SNMP client
accept an answer: forged unauthenticated reports, replayed, tampered and
downgraded answers, wrong digests, out-of-range fields.  First against
hand-built packets (RFC 3412 §7.2, RFC 3414 §3.2 case by case), then with
a UDP man in the middle between fence_snmp_pdu and net-snmp's snmpd.
Every dropped packet leaves the engine ID, boots and time untouched."""

import socket
import threading
import time

import pytest
from snmp_forge import (ENGINE_ID, NOT_IN_TIME_WINDOW, OUTLET, UNKNOWN_ENGINE_ID, V1, V2C, WRONG_DIGEST, accept_community,
                        accept_v3, client, community_message, forged_report, message_id_of, pdu, v3)
from snmp_pdu_helpers import AGENT, assert_one_line_error
from snmpd_peer import AUTH_KEY, OUTLET_CONTROL, PRIV_KEY, Proxy, run_agent, user_name

from infrapower.errors import SnmpError
from infrapower.snmp.session import Refused, Session, SnmpSettings
from infrapower.snmp.usm import ENGINE_MAX, FLAG_AUTH, FLAG_PRIV, UsmUser

MSG, REQ = 4242, 4241


@pytest.fixture
def session():
    live = client()
    yield live
    live.close()


def engine_state(live):
    usm = live._usm
    return usm.engine_id, usm._boots, usm._time, usm._latest_received_time


def answer(live, **changes):
    return v3(live, MSG, pdu("response", REQ, [(OUTLET, 1)]), **changes)


# -- hand-built packets ------------------------------------------------------------


def test_a_valid_authpriv_answer_is_accepted(session):
    assert accept_v3(session, answer(session), MSG, REQ) == ("response", (0, 0, [(OUTLET, 1)]))


@pytest.mark.parametrize("oid", [UNKNOWN_ENGINE_ID, NOT_IN_TIME_WINDOW, WRONG_DIGEST])
def test_an_unauthenticated_report_changes_nothing_once_the_engine_is_confirmed(session, oid):
    before = engine_state(session)
    request = v3(session, MSG, pdu("get", REQ, [(OUTLET, None)]))
    forged = forged_report(request, oid, engine_id=b"\x80other-engine", boots=ENGINE_MAX, engine_time=ENGINE_MAX)
    assert accept_v3(session, forged, MSG, REQ) is None
    assert engine_state(session) == before
    assert session._dropped.hint  # the clue kept for a timeout message, nothing more


def test_only_discovery_learns_an_engine_id_from_an_unauthenticated_report():
    fresh = client(confirmed=False)
    try:
        request = v3(fresh, MSG, pdu("get", REQ, []))
        report = forged_report(request, UNKNOWN_ENGINE_ID, engine_id=b"\x80new-engine", boots=3, engine_time=7)
        # Before any authenticated answer, an unknownEngineID report may
        # only start a re-discovery (once: see Session._exchange_v3).
        assert accept_v3(fresh, report, MSG, REQ) == ("unknown engine", (b"\x80new-engine", 3, 7))
        assert fresh._usm.engine_id == ENGINE_ID
        assert accept_v3(fresh, report, MSG, REQ, discovering=True) == ("report", UNKNOWN_ENGINE_ID)
        assert fresh._usm.engine_id == b"\x80new-engine" and fresh._usm.confirmed is False
    finally:
        fresh.close()


def test_a_replayed_answer_from_an_earlier_boot_is_dropped_and_the_clock_stays(session):
    before = engine_state(session)
    assert accept_v3(session, answer(session, boots=4, engine_time=5000), MSG, REQ) is None
    assert "time window" in str(session._dropped)
    assert engine_state(session) == before


def test_an_answer_more_than_150_s_old_is_dropped_a_newer_one_moves_the_clock(session):
    assert accept_v3(session, answer(session, engine_time=1000 - 151), MSG, REQ) is None
    assert accept_v3(session, answer(session, engine_time=1000 - 100), MSG, REQ) is not None
    assert session._usm._latest_received_time == 1000  # never rolled back
    assert accept_v3(session, answer(session, engine_time=1300), MSG, REQ) is not None
    assert session._usm.clock()[1] >= 1300


def test_an_authenticated_not_in_time_window_report_resynchronises(session):
    report = v3(session, MSG, pdu("report", REQ, [(NOT_IN_TIME_WINDOW, 1)]), level="authNoPriv", boots=9, engine_time=3)
    assert accept_v3(session, report, MSG, REQ) == ("report", NOT_IN_TIME_WINDOW)
    assert session._usm.clock()[0] == 9


@pytest.mark.parametrize("changes, reason", [
    ({"level": "authNoPriv"}, "security level"),  # an authPriv request answered in clear, signed
    ({"level": "noAuthNoPriv"}, "security level"),
    ({"flags": FLAG_PRIV, "level": "noAuthNoPriv"}, "privacy without authentication"),
    ({"auth_key": "not-the-key"}, "wrong digest"),
    ({"auth": "SHA-512"}, "digest length"),
    ({"engine_id": b"\x80another"}, "another engine"),
    ({"user": "someone"}, "another engine or user"),
    ({"boots": ENGINE_MAX + 1, "level": "authNoPriv"}, "out of range"),
    ({"engine_time": 2**40, "level": "authNoPriv"}, "out of range"),
])
def test_a_bad_answer_with_the_right_message_id_is_dropped(session, changes, reason):
    before = engine_state(session)
    assert accept_v3(session, answer(session, **changes), MSG, REQ) is None
    assert reason in str(session._dropped)
    assert engine_state(session) == before


def test_an_authenticated_answer_to_another_request_id_is_dropped(session):
    other = v3(session, MSG, pdu("response", REQ + 7, [(OUTLET, 1)]))
    assert accept_v3(session, other, MSG, REQ) is None and "request ID" in str(session._dropped)


def test_a_get_answered_with_other_oids_is_dropped(session):
    other = v3(session, MSG, pdu("response", REQ, [(OUTLET + "9", 1)]))
    assert accept_v3(session, other, MSG, REQ) is None and "OIDs" in str(session._dropped)


def test_truncated_and_garbage_datagrams_are_dropped_never_raised(session):
    whole = answer(session)
    for cut in range(0, len(whole), 7):
        assert accept_v3(session, whole[:cut], MSG, REQ) is None
    assert accept_v3(session, whole + b"\0", MSG, REQ) is None
    assert accept_v3(session, b"\x30\x84\xff\xff\xff\xff", MSG, REQ) is None


def test_out_of_range_boots_in_a_discovery_report_is_dropped():
    fresh = client(confirmed=False)
    try:
        request = v3(fresh, MSG, pdu("get", REQ, []))
        for boots, engine_time in ((ENGINE_MAX + 1, 0), (0, 2**32), (2**64, 1)):
            report = forged_report(request, UNKNOWN_ENGINE_ID, boots=boots, engine_time=engine_time)
            assert accept_v3(fresh, report, MSG, REQ, discovering=True) is None
        assert fresh._usm.engine_id == ENGINE_ID
    finally:
        fresh.close()


@pytest.mark.parametrize("proto, version", [(V1, "1"), (V2C, "2c")])
def test_community_answers_must_match_version_community_and_request(proto, version):
    live = client(version=version)
    try:
        good = community_message(pdu("response", REQ, [(OUTLET, 1)], proto=proto), proto=proto)
        assert accept_community(live, good, REQ) == (0, 0, [(OUTLET, 1)])
        other_version = V2C if proto is V1 else V1
        for bad in (community_message(pdu("response", REQ, [(OUTLET, 1)], proto=other_version), proto=other_version),
                    community_message(pdu("response", REQ, [(OUTLET, 1)], proto=proto), proto=proto, community="public"),
                    community_message(pdu("response", REQ + 1, [(OUTLET, 1)], proto=proto), proto=proto),
                    community_message(pdu("get", REQ, [(OUTLET, 1)], proto=proto), proto=proto),
                    community_message(pdu("response", REQ, [(OUTLET, 1)], proto=proto, error_status=5, error_index=9),
                                      proto=proto),
                    good[:-3]):
            assert accept_community(live, bad, REQ) is None
    finally:
        live.close()


class FakeAgent:
    """A v2c agent on 127.0.0.1 answering every GET with `answer(oids)`:
    varbinds, or (varbinds, error status, error index)."""

    def __init__(self, answer):
        from pyasn1.codec.ber import decoder

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()

        def serve():
            while not self._stop.is_set():
                try:
                    data, peer = self.sock.recvfrom(65535)
                except socket.timeout:
                    continue
                message, _ = decoder.decode(data, asn1Spec=V2C.Message())
                request = V2C.apiMessage.get_pdu(message)
                oids = [str(oid) for oid, _ in V2C.apiPDU.get_varbinds(request)]
                answered = answer(oids)
                varbinds, status, index = answered if isinstance(answered, tuple) else (answered, 0, 0)
                reply = pdu("response", int(V2C.apiPDU.get_request_id(request)), varbinds, error_status=status,
                            error_index=index)
                self.sock.sendto(community_message(reply), peer)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def test_get_answers_are_matched_by_oid_not_position():
    agent = FakeAgent(lambda oids: [(oid, int(oid.rsplit(".", 1)[1])) for oid in reversed(oids)])
    try:
        live = Session(SnmpSettings("127.0.0.1", agent.port, version="2c", community="private", timeout=1.0))
        assert live.get([".1.3.6.1.1", ".1.3.6.1.2"]) == [(".1.3.6.1.1", 1), (".1.3.6.1.2", 2)]
        live.close()
    finally:
        agent.close()


def test_a_v2c_agent_answering_nosuchname_costs_one_round_trip_for_guesses():
    """Some SNMPv2c agents fail a GET with SNMPv1's noSuchName for one absent
    OID.  Asked one by one (the default), each absent OID costs a round
    trip; for the detection's GET of guesses (one_by_one=False) the first
    noSuchName is a refusal, and the detection asks as for SNMPv1."""
    present = {"1.3.6.1.1": 1, "1.3.6.1.3": 3}  # as pysnmp writes OIDs: no leading dot

    def answer(oids):
        absent = [position for position, oid in enumerate(oids, start=1) if oid.lstrip(".") not in present]
        if absent:
            return [(oid, None) for oid in oids], 2, absent[0]
        return [(oid, present[oid.lstrip(".")]) for oid in oids]

    agent = FakeAgent(answer)
    try:
        live = Session(SnmpSettings("127.0.0.1", agent.port, version="2c", community="private", timeout=2.0))
        asked = [".1.3.6.1.1", ".1.3.6.1.2", ".1.3.6.1.3", ".1.3.6.1.4", ".1.3.6.1.5"]
        with pytest.raises(Refused, match="noSuchName"):
            live.get(asked, one_by_one=False)
        assert live.requests == 1
        assert live.get(asked) == [(".1.3.6.1.1", 1), (".1.3.6.1.2", None), (".1.3.6.1.3", 3), (".1.3.6.1.4", None),
                                   (".1.3.6.1.5", None)]
        assert live.requests == 1 + 4  # one round trip per absent OID, then the rest
        live.close()
    finally:
        agent.close()


def test_a_get_answered_with_other_oids_times_out_with_one_line():
    agent = FakeAgent(lambda oids: [(oid + ".0", 1) for oid in oids])
    try:
        live = Session(SnmpSettings("127.0.0.1", agent.port, version="2c", community="private", timeout=0.5))
        with pytest.raises(SnmpError, match="OIDs are not the ones asked") as raised:
            live.get([".1.3.6.1.1"])
        assert "\n" not in str(raised.value)
        live.close()
    finally:
        agent.close()


# -- a man in the middle between fence_snmp_pdu and net-snmp's snmpd ------------------


USER = ("SHA-256", "AES-256")


def is_v3_request(data):
    try:
        message_id_of(data)
        return True
    except Exception:
        return False


def test_forged_reports_racing_every_answer_change_nothing(peer):
    """A peer answers every request first, with an unauthenticated report
    from another engine (any boots/time); the agent still switches through
    the real engine, and only after the real engine's authenticated answer."""
    def forge(data):
        oid = (UNKNOWN_ENGINE_ID, NOT_IN_TIME_WINDOW, WRONG_DIGEST)[len(proxy.requests) % 3]
        return [forged_report(data, oid, boots=len(proxy.requests), engine_time=ENGINE_MAX)], True

    with Proxy(peer.port, on_request=forge) as proxy:
        result = run_agent(AGENT, proxy.port, USER, action="off", plug="2", shell_timeout=3)
    assert result.returncode == 0, result.stderr
    assert peer.outlets_on()[2] is False


def test_a_forged_discovery_answer_is_recovered_from_once_the_real_engine_speaks(peer):
    first = []

    def forge(data):
        if not first:
            first.append(data)
            return [forged_report(data, UNKNOWN_ENGINE_ID, engine_id=b"\x80\x00\x00\x00\x01fake", boots=ENGINE_MAX)], False
        return [], True

    with Proxy(peer.port, on_request=forge) as proxy:
        live = Session(SnmpSettings("127.0.0.1", proxy.port, version="3", timeout=3.0,
                       usm=UsmUser(user_name(*USER), "authPriv", USER[0], AUTH_KEY, USER[1], PRIV_KEY)))
        try:
            assert live.get([f"{OUTLET_CONTROL}.1"]) == [(f"{OUTLET_CONTROL}.1", 1)]
            assert live._usm.engine_id == peer.engine_id() and live._usm.confirmed
            assert live._usm.clock()[0] < ENGINE_MAX
        finally:
            live.close()


@pytest.mark.parametrize("tamper", ["last byte", "digest", "flags to noAuth"])
def test_tampered_answers_are_never_taken_bounded_one_line_error(peer, tamper):
    def spoil(data):
        if not data or not is_v3_request(data):
            return data
        if tamper == "last byte":
            return data[:-1] + bytes([data[-1] ^ 1])
        if tamper == "digest":
            return data.replace(data[data.find(b"\x04\x18") + 2:][:24], b"\0" * 24, 1) if b"\x04\x18" in data else data
        flags_at = data.find(b"\x04\x01")  # msgFlags: the first one-octet OCTET STRING
        return data[: flags_at + 2] + bytes([data[flags_at + 2] & ~(FLAG_AUTH | FLAG_PRIV) & 0xFF]) + data[flags_at + 3 :]

    peer.set_outlet(3, False)
    with Proxy(peer.port, on_answer=spoil) as proxy:
        started = time.monotonic()
        result = run_agent(AGENT, proxy.port, USER, action="status", plug="3", shell_timeout=2)
    assert time.monotonic() - started < 4
    error = assert_one_line_error(result)
    assert "Status" not in result.stdout and ("no answer" in error or "SNMPv3" in error)


def test_a_replayed_answer_from_before_an_engine_reboot_is_dropped(peer):
    """The same msgID and request-id as a captured authenticated answer
    (a msgID space collision across runs): from an older boot, it is
    dropped, the real answer is taken, and the clock does not go back."""
    oid = f"{OUTLET_CONTROL}.4"
    with Proxy(peer.port) as recorder:
        first = Session(SnmpSettings("127.0.0.1", recorder.port, version="3", timeout=3.0,
                        usm=UsmUser(user_name(*USER), "authPriv", USER[0], AUTH_KEY, USER[1], PRIV_KEY)))
        first.get([oid])  # discovery, then the GET we capture
        counter_before_get = first._message_id - 2
        assert first.get([oid]) == [(oid, 1)]
        captured = recorder.answers[-1]
        first.close()

    peer.set_outlet(4, False)
    peer.restart()  # boots + 1

    def replay(data):
        return ([captured] if message_id_of(data) == message_id_of(recorder.requests[-1]) else []), True

    with Proxy(peer.port, on_request=replay) as proxy:
        second = Session(SnmpSettings("127.0.0.1", proxy.port, version="3", timeout=3.0,
                         usm=UsmUser(user_name(*USER), "authPriv", USER[0], AUTH_KEY, USER[1], PRIV_KEY)))
        try:
            second.get([".1.3.6.1.2.1.1.2.0"])  # discovery at the new boots
            boots = second._usm.clock()[0]
            second._message_id = counter_before_get + 2  # the next request-id/msgID are the captured ones
            assert second.get([oid]) == [(oid, 2)]  # the real, current answer: off
            assert second._usm.clock()[0] == boots
        finally:
            second.close()
