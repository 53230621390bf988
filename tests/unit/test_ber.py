"""infrapower.snmp.ber against pysnmp, on both pysnmp lines there are here:
Debian 12's python3-pysnmp4 4.4 (/usr/bin/python3) and PyPI's 7.x (the
lab's environment).  pysnmp builds every kind of message the client sends
or accepts; ours must put the same bytes on the wire, and decode pysnmp's
to the same values.  Then malformed input: every truncation and a few
thousand corruptions of real messages are refused with ber.Malformed or
decode, never anything else.  An interpreter without pysnmp is skipped."""

import json
import random
import subprocess
from pathlib import Path

import pytest

from infrapower.snmp import ber

REPO = Path(__file__).resolve().parents[2]
INTERPRETERS = ("/usr/bin/python3", "/usr/lib/fence-agents-infrapower/lab/bin/python")

# pysnmp encodes each message below; the script prints {name: wire hex}.
ORACLE = r"""
import json, sys
import pysnmp
from pyasn1.codec.ber import encoder
from pyasn1.type import namedtype, univ
from pysnmp.proto import api, rfc1905

def module(version):
    if hasattr(api, "PROTOCOL_MODULES"):
        return api.PROTOCOL_MODULES[api.SNMP_VERSION_1 if version == "1" else api.SNMP_VERSION_2C]
    return api.protoModules[api.protoVersion1 if version == "1" else api.protoVersion2c]

CAMEL = {"id": "ID", "pdu": "PDU", "varbinds": "VarBinds"}
def call(accessors, name, *args):
    if not hasattr(accessors, name):
        first, *rest = name.split("_")
        name = first + "".join(CAMEL.get(word, word.capitalize()) for word in rest)
    return getattr(accessors, name)(*args)

def pdu_of(p, kind, request_id, varbinds, fields=(0, 0)):
    pdu = getattr(p, kind)()
    bulk = kind == "GetBulkRequestPDU"
    accessors = p.apiBulkPDU if bulk else p.apiPDU
    call(accessors, "set_defaults", pdu)
    call(accessors, "set_request_id", pdu, request_id)
    if bulk:
        call(accessors, "set_non_repeaters", pdu, fields[0])
        call(accessors, "set_max_repetitions", pdu, fields[1])
    else:
        call(accessors, "set_error_status", pdu, fields[0])
        call(accessors, "set_error_index", pdu, fields[1])
    call(accessors, "set_varbinds", pdu, varbinds)
    return pdu

def message(p, community, pdu):
    m = p.Message()
    call(p.apiMessage, "set_defaults", m)
    call(p.apiMessage, "set_community", m, community)
    call(p.apiMessage, "set_pdu", m, pdu)
    return encoder.encode(m)

def sequence(name, *fields, base=univ.Sequence):
    types = namedtype.NamedTypes(*(namedtype.NamedType(field, kind) for field, kind in fields))
    return type(name, (base,), {"componentType": types})

Scoped = sequence("ScopedPDU", ("contextEngineId", univ.OctetString()), ("contextName", univ.OctetString()),
                  ("data", rfc1905.PDUs()))
ScopedData = sequence("ScopedPduData", ("plaintext", Scoped()), ("encryptedPDU", univ.OctetString()), base=univ.Choice)
Header = sequence("HeaderData", ("msgID", univ.Integer()), ("msgMaxSize", univ.Integer()),
                  ("msgFlags", univ.OctetString()), ("msgSecurityModel", univ.Integer()))
V3 = sequence("SNMPv3Message", ("msgVersion", univ.Integer()), ("msgGlobalData", Header()),
              ("msgSecurityParameters", univ.OctetString()), ("msgData", ScopedData()))
Usm = sequence("UsmSecurityParameters", ("e", univ.OctetString()), ("b", univ.Integer()), ("t", univ.Integer()),
               ("u", univ.OctetString()), ("a", univ.OctetString()), ("p", univ.OctetString()))

v1, v2 = module("1"), module("2c")
out = {"pysnmp": pysnmp.__version__}
oid = "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.7"
out["v1 get"] = message(v1, "private", pdu_of(v1, "GetRequestPDU", 4242, [("1.3.6.1.2.1.1.2.0", v1.Null("")), (oid, v1.Null(""))]))
out["v1 getnext"] = message(v1, "public", pdu_of(v1, "GetNextRequestPDU", 1, [(oid, v1.Null(""))]))
out["v1 set"] = message(v1, "private", pdu_of(v1, "SetRequestPDU", 2**31 - 1, [(oid, v1.Integer(2)), ("1.3.6.1.2.1.1.5.0", v1.OctetString(b"pdu one"))]))
out["v2c bulk"] = message(v2, "private", pdu_of(v2, "GetBulkRequestPDU", 77, [(oid, v2.Null("")), ("1.3.6.1.2.1.1", v2.Null(""))], (0, 31)))
out["v2c set negative"] = message(v2, "private", pdu_of(v2, "SetRequestPDU", 128, [(oid, v2.Integer(-129))]))
values = [("1.3.6.1.2.1.1.1.0", v2.OctetString(b"APC \xffweb")), ("1.3.6.1.2.1.1.2.0", v2.ObjectIdentifier("1.3.6.1.4.1.318.1.3.4.5")),
          ("1.3.6.1.2.1.1.3.0", v2.TimeTicks(4294967295)), ("1.3.6.1.2.1.2.2.1.10.1", v2.Counter32(2**32 - 1)),
          ("1.3.6.1.2.1.2.2.1.5.1", v2.Gauge32(128)), ("1.3.6.1.2.1.31.1.1.1.6.1", v2.Counter64(2**64 - 1)),
          ("1.3.6.1.2.1.4.20.1.1.10.0.0.1", v2.IpAddress("10.0.0.1")), ("1.3.6.1.2.1.1.7.0", v2.Integer(-2**31 + 1)),
          ("1.3.6.1.2.1.1.8.0", rfc1905.noSuchObject), ("1.3.6.1.2.1.1.9.0", rfc1905.noSuchInstance),
          ("1.3.6.1.2.1.1.10.0", rfc1905.endOfMibView), ("1.3.6.1.2.1.1.11.0", v2.Null(""))]
out["v2c response"] = message(v2, "private", pdu_of(v2, "GetResponsePDU", 4242, values))
out["v1 error response"] = message(v1, "private", pdu_of(v1, "GetResponsePDU", 9, [(oid, v1.Null(""))], (2, 1)))
long_name = "x" * 300  # a long-form length
out["v2c long string"] = message(v2, "private", pdu_of(v2, "SetRequestPDU", 5, [(oid, v2.OctetString(long_name.encode()))]))

def v3(flags, usm_fields, pdu, encrypted=None):
    u = Usm()
    for key, value in zip("ebtuap", usm_fields):
        u[key] = value
    m = V3()
    m["msgVersion"] = 3
    h = m["msgGlobalData"]
    h["msgID"], h["msgMaxSize"], h["msgFlags"], h["msgSecurityModel"] = 31337, 65507, bytes([flags]), 3
    m["msgSecurityParameters"] = encoder.encode(u)
    if encrypted is None:
        s = m["msgData"]["plaintext"].clone()
        s["contextEngineId"], s["contextName"] = usm_fields[0], b""
        s["data"].setComponentByType(pdu.tagSet, pdu)
        m["msgData"]["plaintext"] = s
    else:
        m["msgData"]["encryptedPDU"] = encrypted
    return encoder.encode(m), encoder.encode(u)

engine = bytes.fromhex("80001f8880e9630000d61ff449")
out["v3 discovery"], out["v3 discovery usm"] = v3(4, (b"", 0, 0, b"", b"", b""), pdu_of(v2, "GetRequestPDU", 11, []))
out["v3 authnopriv get"], out["v3 authnopriv usm"] = v3(5, (engine, 3, 123456, b"fencer", b"\0" * 12, b""),
                                                        pdu_of(v2, "GetRequestPDU", 12, [(oid, v2.Null(""))]))
out["v3 report"], _ = v3(0, (engine, 3, 123456, b"", b"", b""),
                         pdu_of(v2, "ReportPDU", 0, [("1.3.6.1.6.3.15.1.1.4.0", v2.Counter32(7))]))
out["v3 encrypted"], out["v3 encrypted usm"] = v3(7, (engine, 3, 123456, b"fencer", b"\0" * 32, bytes(range(8))), None,
                                                  encrypted=bytes(range(40)))
scoped = Scoped()
scoped["contextEngineId"], scoped["contextName"] = engine, b""
response = pdu_of(v2, "GetResponsePDU", 12, [(oid, v2.Integer(1))])
scoped["data"].setComponentByType(response.tagSet, response)
out["v3 scoped response"] = encoder.encode(scoped)
print(json.dumps({key: value if key == "pysnmp" else value.hex() for key, value in out.items()}))
"""

OID = ".1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.7"
ENGINE = bytes.fromhex("80001f8880e9630000d61ff449")


def ours():
    """What ber encodes for each of the oracle's messages (the responses
    and reports are only decoded by the client; their bytes are too)."""
    null = ber.NULL_VALUE
    response_values = [
        ber.octets(b"APC \xffweb"), ber.oid(".1.3.6.1.4.1.318.1.3.4.5"), ber.integer(4294967295, ber.TIME_TICKS),
        ber.integer(2**32 - 1, ber.COUNTER32), ber.integer(128, ber.GAUGE32), ber.integer(2**64 - 1, ber.COUNTER64),
        ber.octets(bytes([10, 0, 0, 1]), ber.IP_ADDRESS), ber.integer(-2**31 + 1), b"\x80\x00", b"\x81\x00", b"\x82\x00", null]
    response_oids = [".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.2.0", ".1.3.6.1.2.1.1.3.0", ".1.3.6.1.2.1.2.2.1.10.1",
                     ".1.3.6.1.2.1.2.2.1.5.1", ".1.3.6.1.2.1.31.1.1.1.6.1", ".1.3.6.1.2.1.4.20.1.1.10.0.0.1",
                     ".1.3.6.1.2.1.1.7.0", ".1.3.6.1.2.1.1.8.0", ".1.3.6.1.2.1.1.9.0", ".1.3.6.1.2.1.1.10.0",
                     ".1.3.6.1.2.1.1.11.0"]
    v3 = {}
    for name, flags, usm, pdu in (
            ("v3 discovery", 4, (b"", 0, 0, "", b"", b""), ber.pdu(ber.GET, 11, [])),
            ("v3 authnopriv", 5, (ENGINE, 3, 123456, "fencer", b"\0" * 12, b""), ber.pdu(ber.GET, 12, [(OID, null)]))):
        security = ber.usm_parameters(*usm)
        v3[f"{name} usm"] = security
        v3[name if name == "v3 discovery" else f"{name} get"] = ber.v3_message(
            31337, 65507, flags, security, scoped=ber.scoped_pdu(usm[0], b"", pdu))
    encrypted_usm = ber.usm_parameters(ENGINE, 3, 123456, "fencer", b"\0" * 32, bytes(range(8)))
    return {
        "v1 get": ber.community_message(0, "private", ber.pdu(ber.GET, 4242, [(".1.3.6.1.2.1.1.2.0", null), (OID, null)])),
        "v1 getnext": ber.community_message(0, "public", ber.pdu(ber.GET_NEXT, 1, [(OID, null)])),
        "v1 set": ber.community_message(0, "private", ber.pdu(ber.SET, 2**31 - 1, [
            (OID, ber.value(2)), (".1.3.6.1.2.1.1.5.0", ber.value("pdu one"))])),
        "v2c bulk": ber.community_message(1, "private", ber.pdu(ber.GET_BULK, 77, [(OID, null), (".1.3.6.1.2.1.1", null)],
                                                                0, 31)),
        "v2c set negative": ber.community_message(1, "private", ber.pdu(ber.SET, 128, [(OID, ber.value(-129))])),
        "v2c response": ber.community_message(1, "private", ber.pdu(ber.RESPONSE, 4242,
                                                                    list(zip(response_oids, response_values)))),
        "v1 error response": ber.community_message(0, "private", ber.pdu(ber.RESPONSE, 9, [(OID, null)], 2, 1)),
        "v2c long string": ber.community_message(1, "private", ber.pdu(ber.SET, 5, [(OID, ber.value("x" * 300))])),
        **v3,
        "v3 report": ber.v3_message(31337, 65507, 0, ber.usm_parameters(ENGINE, 3, 123456, "", b"", b""),
                                    scoped=ber.scoped_pdu(ENGINE, b"", ber.pdu(ber.REPORT, 0, [
                                        (".1.3.6.1.6.3.15.1.1.4.0", ber.integer(7, ber.COUNTER32))]))),
        "v3 encrypted": ber.v3_message(31337, 65507, 7, encrypted_usm, encrypted=bytes(range(40))),
        "v3 encrypted usm": encrypted_usm,
        "v3 scoped response": ber.scoped_pdu(ENGINE, b"", ber.pdu(ber.RESPONSE, 12, [(OID, ber.value(1))])),
    }


def _oracle(python):
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed")
    run = subprocess.run([python, "-c", ORACLE], capture_output=True, text=True, timeout=60)
    if "No module named" in run.stderr:
        pytest.skip(f"{python} has no pysnmp")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module", params=INTERPRETERS)
def oracle(request):
    return _oracle(request.param)


def test_every_message_has_pysnmps_bytes(oracle):
    mine = ours()
    names = sorted(set(oracle) - {"pysnmp"})
    assert set(mine) == set(names)
    for name in names:
        assert mine[name].hex() == oracle[name], f"{name} (pysnmp {oracle['pysnmp']})"


def test_pysnmps_response_decodes_to_plain_values(oracle):
    version, community, pdu = ber.decode_community_message(bytes.fromhex(oracle["v2c response"]))
    assert (version, community, pdu.tag, pdu.request_id, pdu.error_status, pdu.error_index) == (1, b"private",
                                                                                              ber.RESPONSE, 4242, 0, 0)
    assert [value for _, value in pdu.varbinds] == [
        "APC \ufffdweb", ".1.3.6.1.4.1.318.1.3.4.5", 4294967295, 2**32 - 1, 128, 2**64 - 1, "10.0.0.1", -2**31 + 1,
        None, None, ber.END_OF_MIB_VIEW, None]
    assert pdu.varbinds[6][0] == ".1.3.6.1.2.1.4.20.1.1.10.0.0.1"
    _, _, error = ber.decode_community_message(bytes.fromhex(oracle["v1 error response"]))
    assert (error.error_status, error.error_index, error.varbinds) == (2, 1, [(OID, None)])
    _, _, bulk = ber.decode_community_message(bytes.fromhex(oracle["v2c bulk"]))
    assert (bulk.tag, bulk.error_status, bulk.error_index) == (ber.GET_BULK, 0, 31)


def test_pysnmps_v3_messages_decode(oracle):
    report = ber.decode_v3_message(bytes.fromhex(oracle["v3 report"]))
    assert (report.version, report.message_id, report.max_size, report.flags, report.security_model) == (
        3, 31337, 65507, b"\x00", 3)
    assert ber.decode_usm_parameters(report.security) == (ENGINE, 3, 123456, b"", b"", b"")
    engine, context, pdu = report.scoped
    assert (engine, context, pdu.tag, pdu.varbinds) == (ENGINE, b"", ber.REPORT, [(".1.3.6.1.6.3.15.1.1.4.0", 7)])
    encrypted = ber.decode_v3_message(bytes.fromhex(oracle["v3 encrypted"]))
    assert (encrypted.scoped, encrypted.encrypted, encrypted.flags) == (None, bytes(range(40)), b"\x07")
    assert ber.decode_usm_parameters(encrypted.security)[3:] == (b"fencer", b"\0" * 32, bytes(range(8)))
    padded = bytes.fromhex(oracle["v3 scoped response"]) + b"\0" * 5  # DES padding after a decrypted scopedPDU
    assert ber.decode_scoped_pdu(padded, trailing=True)[2].varbinds == [(OID, 1)]
    with pytest.raises(ber.Malformed):
        ber.decode_scoped_pdu(padded)


def test_both_pysnmp_lines_agree():
    outs = [_oracle(python) for python in INTERPRETERS]
    assert {out["pysnmp"].split(".")[0] for out in outs} >= {"4", "7"} or pytest.skip("only one pysnmp line here")
    assert outs[0] == {**outs[1], "pysnmp": outs[0]["pysnmp"]}


# -- malformed input ----------------------------------------------------------------


def _decode_any(data):
    try:
        version = ber.message_version(data)
        if version == 3:
            message = ber.decode_v3_message(data)
            ber.decode_usm_parameters(message.security)
        else:
            ber.decode_community_message(data)
    except ber.Malformed:
        return False
    return True


def test_every_truncation_and_extension_is_malformed():
    for wire in ours().values():
        if not wire.startswith(b"\x30"):
            continue
        for cut in range(len(wire)):
            assert not _decode_any(wire[:cut])
        assert not _decode_any(wire + b"\x00")


def test_corrupted_messages_decode_or_are_malformed():
    rng = random.Random(18)
    wires = [wire for wire in ours().values() if wire.startswith(b"\x30")]
    for _ in range(3000):
        wire = bytearray(rng.choice(wires))
        for _ in range(rng.randint(1, 4)):
            wire[rng.randrange(len(wire))] = rng.randrange(256)
        _decode_any(bytes(wire))  # anything but Malformed fails the test


@pytest.mark.parametrize("body, reason", [
    (b"\x30\x80\x02\x01\x00\x00\x00", "indefinite length"),
    (b"\x30\x85\x00\x00\x00\x00\x03\x02\x01\x00", "five length octets"),
    (b"\x3f\x01\x00", "multi-octet tag"),
])
def test_refused_encodings(body, reason):
    assert not _decode_any(body), reason


def test_values_that_are_refused():
    for tag, body in ((ber.NULL, b"\x00"), (ber.OBJECT_IDENTIFIER, b""), (ber.OBJECT_IDENTIFIER, b"\x2b\x86"),
                      (ber.INTEGER, b""), (ber.INTEGER, b"\x01" * 10), (0x47, b"\x00"), (ber.END_OF_MIB_VIEW_TAG, b"\x00"),
                      (ber.OBJECT_IDENTIFIER, b"\x2b\x90\x80\x80\x80\x00")):
        with pytest.raises(ber.Malformed):
            ber.decode_value(tag, body)
    # pyasn1 0.4.8 encodes -2**31 in five octets: not minimal, still read.
    assert ber.decode_value(ber.INTEGER, bytes.fromhex("ff80000000")) == -2**31


def test_oid_round_trip_and_refusal():
    for text in (".1.3", ".1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.24", ".2.999.3", ".0.39", ".1.3.6.1.4294967295"):
        assert ber.decode_oid(ber.oid(text)[2:]) == text
    for text in (".3.1", ".1.40", ".1"):
        with pytest.raises(ber.SnmpError):
            ber.oid(text)


def test_oid_sub_identifiers_minimal_and_bounded():
    with pytest.raises(ber.Malformed):
        ber.decode_oid(bytes.fromhex("2b8001"))  # a leading 0x80 octet (X.690 §8.19.2)
    with pytest.raises(ber.Malformed):
        ber.decode_oid(b"\x2b" + b"\xff" * 60000 + b"\x7f")  # refused at its sixth octet (not quadratic work first)
    for text in ("", ".", "1.3.a"):
        with pytest.raises(ber.SnmpError):
            ber.oid(text)
