"""SNMP answers built by hand, as an agent (or a forger) would send them,
to feed our client's accept path without a network: v1/v2c responses and
SNMPv3 responses/reports signed and encrypted with chosen keys, flags,
engine ID, boots and time."""

from pysnmp.proto import api

from infrapower.snmp.session import Session, SnmpSettings, _Expected, _same_oids
from infrapower.snmp.usm import LEVEL_FLAGS, Usm, UsmUser

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
V1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
ENGINE_ID = bytes.fromhex("80001f8880aabbccddeeff001122334455")
USER, AUTH_KEY, PRIV_KEY = "fencer", "auth-key-0123", "priv-key-4567"
OUTLET = ".1.3.6.1.4.1.318.1.1.4.4.2.1.3.1"
NOT_IN_TIME_WINDOW, UNKNOWN_ENGINE_ID, WRONG_DIGEST = (f"1.3.6.1.6.3.15.1.1.{n}.0" for n in (2, 4, 5))


def client(version="3", level="authPriv", auth="SHA-256", priv="AES", boots=5, engine_time=1000, confirmed=True):
    """A Session (its socket never used) whose USM knows ENGINE_ID."""
    user = UsmUser(USER, level, auth, AUTH_KEY, priv, PRIV_KEY) if version == "3" else None
    session = Session(SnmpSettings("127.0.0.1", 9, version=version, community="private", usm=user, timeout=1.0))
    if user:
        session._usm.learn_engine(ENGINE_ID, boots, engine_time)
        session._usm.confirmed = confirmed
    return session


def pdu(kind, request_id, varbinds, proto=V2C, error_status=0, error_index=0):
    built = {"response": proto.GetResponsePDU, "report": getattr(proto, "ReportPDU", None), "get": proto.GetRequestPDU}[kind]()
    proto.apiPDU.set_defaults(built)
    proto.apiPDU.set_request_id(built, request_id)
    proto.apiPDU.set_error_status(built, error_status)
    proto.apiPDU.set_error_index(built, error_index)
    proto.apiPDU.set_varbinds(built, [(oid, _value(proto, value)) for oid, value in varbinds])
    return built


def _value(proto, value):
    if value is None:
        return proto.Null("")
    if isinstance(value, int):
        return proto.Integer(value)
    return proto.OctetString(value.encode() if isinstance(value, str) else value)


def v3(session, message_id, answer_pdu, *, level="authPriv", auth="SHA-256", priv="AES", flags=None, engine_id=ENGINE_ID,
       boots=5, engine_time=1000, user=USER, auth_key=AUTH_KEY, priv_key=PRIV_KEY):
    """An SNMPv3 message as an agent with these keys and clock sends it."""
    agent = Usm(user, level, auth, auth_key, priv, priv_key)
    agent.learn_engine(engine_id, boots, engine_time)
    agent.clock = lambda: (boots, engine_time)  # exactly these, even out of range
    from pyasn1.codec.ber import encoder

    return session._v3_message(message_id, encoder.encode(answer_pdu), agent,
                               flags=LEVEL_FLAGS[level] if flags is None else flags)


def community_message(answer_pdu, proto=V2C, community="private"):
    from pyasn1.codec.ber import encoder

    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, answer_pdu)
    return encoder.encode(message)


def expected(request_id, oids=(OUTLET,)):
    return _Expected(request_id, list(oids), _same_oids)


def accept_v3(session, data, message_id, request_id, oids=(OUTLET,), discovering=False):
    """What the client makes of `data` while waiting for (message_id,
    request_id): the accept result, or None for a dropped datagram."""
    wanted = expected(request_id, oids)
    return session.accept(data, lambda d: session._v3_accept(d, message_id, wanted, discovering=discovering))


def accept_community(session, data, request_id, oids=(OUTLET,)):
    wanted = expected(request_id, oids)
    return session.accept(data, lambda d: session._community_accept(d, wanted))


def message_id_of(data):
    """The msgID of an SNMPv3 message (what an on-path forger reads)."""
    from infrapower.snmp.ber import decode_v3_message

    return decode_v3_message(data).message_id


def forged_report(data, oid, engine_id=b"\x80\x00\x00\x00\x01forged", boots=7, engine_time=99999):
    """An unauthenticated report answering the SNMPv3 request `data`."""
    forger = Session(SnmpSettings("127.0.0.1", 9, version="3", usm=UsmUser("", "noAuthNoPriv", None, None, None, None), timeout=1.0))
    try:
        return v3(forger, message_id_of(data), pdu("report", 0, [(oid, 1)]), level="noAuthNoPriv", engine_id=engine_id,
                  boots=boots, engine_time=engine_time, user="")
    finally:
        forger.close()
