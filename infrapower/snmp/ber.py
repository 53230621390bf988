"""SNMP's messages in BER: what the pack sends and what it accepts.

Why our own codec and not pysnmp's protocol layer over pyasn1: importing
those costs ~35 ms of CPU per agent run (measured, `-X importtime`), more
than half of what a whole fence_apc_snmp status costs, and with 64 agents
started at once on two cores CPU is what fencing waits for.  SNMP uses a
small, fixed part of BER (single-octet tags, definite lengths, INTEGER,
OCTET STRING, NULL, OBJECT IDENTIFIER, SEQUENCE and the SMI's application
types), so the whole codec is this module; tests/unit/test_ber.py checks
every message kind against pysnmp, both Debian's 4.4 and PyPI's 7.x, in
both directions.

Decoding is strict and bounded: every length is checked against the bytes
there, an indefinite length, a multi-octet tag or a truncated value is
`Malformed` (so a forged or corrupt datagram is dropped, never a crash).
Values come back as plain Python: int, str (OCTET STRING as UTF-8, bad
bytes replaced), an OID as ".1.3...", None for NULL, noSuchObject and
noSuchInstance, and END_OF_MIB_VIEW.
"""

from collections import namedtuple

from infrapower.errors import SnmpError

INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIME_TICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW_TAG = 0x80, 0x81, 0x82

# PDU tags (RFC 1157, RFC 3416)
GET, GET_NEXT, RESPONSE, SET, GET_BULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xA8
PDU_NAMES = {GET: "GET", GET_NEXT: "GETNEXT", RESPONSE: "RESPONSE", SET: "SET", GET_BULK: "GETBULK", REPORT: "REPORT"}

SNMP_V1, SNMP_V2C, SNMP_V3 = 0, 1, 3  # msgVersion on the wire

_UNSIGNED = (COUNTER32, GAUGE32, TIME_TICKS, COUNTER64)
_MAX_INTEGER_OCTETS = 9  # Counter64 with its sign octet
_MAX_SUBIDENTIFIER = 0xFFFFFFFF  # RFC 2578 §7.1.3
_MAX_SUBIDENTIFIER_OCTETS = 5  # 32 bits in base 128 (the first, 2.x, fits too)


class Malformed(SnmpError):
    """Bytes that are not the SNMP message expected."""


class _EndOfMibView:
    __slots__ = ()

    def __repr__(self):
        return "endOfMibView"


END_OF_MIB_VIEW = _EndOfMibView()


# -- encoding ----------------------------------------------------------------------


def tlv(tag, body):
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + body


def integer(value, tag=INTEGER):
    """Two's complement in the fewest octets."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def octets(value, tag=OCTET_STRING):
    return tlv(tag, value.encode() if isinstance(value, str) else bytes(value))


NULL_VALUE = b"\x05\x00"


def oid(text):
    """An OBJECT IDENTIFIER from ".1.3.6..." (or a tuple of numbers)."""
    try:
        parts = [int(part) for part in text.strip(".").split(".")] if isinstance(text, str) else list(text)
    except ValueError:
        raise SnmpError(f"not an OID: {text}") from None
    if len(parts) < 2 or parts[0] > 2 or (parts[0] < 2 and parts[1] >= 40):
        raise SnmpError(f"not an OID: {text}")
    body = bytearray()
    for part in [40 * parts[0] + parts[1]] + parts[2:]:
        if part < 0:
            raise SnmpError(f"not an OID: {text}")
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(body))


def value(plain):
    """A SET value: INTEGER for an int, OCTET STRING for text."""
    return integer(plain) if isinstance(plain, int) else octets(str(plain))


def pdu(tag, request_id, varbinds, error_status=0, error_index=0):
    """A PDU; `varbinds` are (OID text, encoded value).  For GETBULK the two
    error fields are non-repeaters and max-repetitions (RFC 3416 §3)."""
    bindings = b"".join(tlv(SEQUENCE, oid(name) + encoded) for name, encoded in varbinds)
    return tlv(tag, integer(request_id) + integer(error_status) + integer(error_index) + tlv(SEQUENCE, bindings))


def community_message(version, community, pdu_bytes):
    """An SNMPv1 (version 0) or SNMPv2c (1) message."""
    return tlv(SEQUENCE, integer(version) + octets(community) + pdu_bytes)


def scoped_pdu(context_engine_id, context_name, pdu_bytes):
    return tlv(SEQUENCE, octets(context_engine_id) + octets(context_name) + pdu_bytes)


def usm_parameters(engine_id, boots, engine_time, user, auth, privacy):
    """UsmSecurityParameters (RFC 3414 §2.4)."""
    return tlv(SEQUENCE, octets(engine_id) + integer(boots) + integer(engine_time) + octets(user) + octets(auth)
               + octets(privacy))


def v3_message(message_id, max_size, flags, security, scoped=None, encrypted=None):
    """An SNMPv3 message (RFC 3412 §6) with the USM (security model 3):
    `scoped` a plaintext scopedPDU, or `encrypted` its ciphertext."""
    header = tlv(SEQUENCE, integer(message_id) + integer(max_size) + octets(bytes((flags,))) + integer(3))
    data = scoped if encrypted is None else octets(encrypted)
    return tlv(SEQUENCE, integer(SNMP_V3) + header + octets(security) + data)


# -- decoding ----------------------------------------------------------------------


def read(data, position=0, end=None):
    """(tag, body start, body end) of the TLV at `position`."""
    end = len(data) if end is None else end
    if position + 2 > end:
        raise Malformed("truncated")
    tag, size = data[position], data[position + 1]
    if tag & 0x1F == 0x1F:
        raise Malformed("multi-octet tag")
    position += 2
    if size & 0x80:
        count = size & 0x7F
        if not 0 < count <= 4 or position + count > end:
            raise Malformed("indefinite or oversized length")
        size = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + size > end:
        raise Malformed("truncated")
    return tag, position, position + size


def children(data, start, end):
    """The TLVs (tag, start, end) inside a constructed value."""
    found = []
    while start < end:
        tag, body, start = read(data, start, end)
        found.append((tag, body, start))
    return found


def expect(data, item, tag):
    """The body of `item` (from read or children), which must carry `tag`."""
    found, start, end = item
    if found != tag:
        raise Malformed(f"tag 0x{found:02x} where 0x{tag:02x} belongs")
    return data[start:end]


def decode_integer(body, unsigned=False):
    if not 0 < len(body) <= _MAX_INTEGER_OCTETS:
        raise Malformed("integer size")
    return int.from_bytes(body, "big", signed=not unsigned)


def decode_oid(body):
    if not body or body[-1] & 0x80:
        raise Malformed("empty or truncated OID")
    parts, part, octets = [], 0, 0
    for byte in body:
        if octets == 0 and byte == 0x80:
            raise Malformed("OID sub-identifier with a leading 0x80 octet")  # X.690 §8.19.2
        octets += 1
        if octets > _MAX_SUBIDENTIFIER_OCTETS:
            raise Malformed("OID sub-identifier out of range")  # before it costs quadratic time
        part = (part << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(part)
            part, octets = 0, 0
    first = parts[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    if first > 80 + _MAX_SUBIDENTIFIER or any(part > _MAX_SUBIDENTIFIER for part in parts[1:]):
        raise Malformed("OID sub-identifier out of range")
    return "." + ".".join(map(str, head + parts[1:]))


def decode_value(tag, body):
    """A varbind's value as plain Python (see the module's docstring)."""
    if tag == INTEGER or tag in _UNSIGNED:
        return decode_integer(body, unsigned=tag in _UNSIGNED)
    if tag in (OCTET_STRING, OPAQUE):
        return body.decode("utf-8", "replace")
    if tag == OBJECT_IDENTIFIER:
        return decode_oid(body)
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE):
        if body:
            raise Malformed("NULL with a body")
        return None
    if tag == END_OF_MIB_VIEW_TAG:
        if body:
            raise Malformed("endOfMibView with a body")
        return END_OF_MIB_VIEW
    if tag == IP_ADDRESS and len(body) == 4:
        return ".".join(map(str, body))
    raise Malformed(f"value tag 0x{tag:02x}")


# varbinds: [(".1.3...", plain value)].  (namedtuple, not typing's
# NamedTuple: importing typing costs an agent run ~4 ms.)
Pdu = namedtuple("Pdu", "tag request_id error_status error_index varbinds")


def decode_pdu(data, item):
    """The PDU at `item` (tag, start, end) of `data`."""
    tag, start, end = item
    if tag not in PDU_NAMES:
        raise Malformed(f"PDU tag 0x{tag:02x}")
    fields = children(data, start, end)
    if len(fields) != 4:
        raise Malformed("a PDU has four fields")
    request_id, status, index = (decode_integer(expect(data, field, INTEGER)) for field in fields[:3])
    if fields[3][0] != SEQUENCE:
        raise Malformed("varbinds not a SEQUENCE")
    varbinds = []
    for binding in children(data, fields[3][1], fields[3][2]):
        if binding[0] != SEQUENCE:
            raise Malformed("varbind not a SEQUENCE")
        pair = children(data, binding[1], binding[2])
        if len(pair) != 2:
            raise Malformed("a varbind is an OID and a value")
        name = decode_oid(expect(data, pair[0], OBJECT_IDENTIFIER))
        kind, body_start, body_end = pair[1]
        varbinds.append((name, decode_value(kind, data[body_start:body_end])))
    return Pdu(tag, request_id, status, index, varbinds)


def _whole(data):
    """The one SEQUENCE that `data` must be, nothing after it: its fields."""
    tag, start, end = read(data)
    if tag != SEQUENCE:
        raise Malformed("not a SEQUENCE")
    if end != len(data):
        raise Malformed("trailing bytes after the message")
    return children(data, start, end)


def message_version(data):
    """msgVersion of an encoded message (0: v1, 1: v2c, 3: v3)."""
    fields = _whole(data)
    if not fields:
        raise Malformed("empty message")
    return decode_integer(expect(data, fields[0], INTEGER))


def decode_community_message(data):
    """(version, community bytes, Pdu) of an SNMPv1/v2c message."""
    fields = _whole(data)
    if len(fields) != 3:
        raise Malformed("an SNMPv1/v2c message has three fields")
    version = decode_integer(expect(data, fields[0], INTEGER))
    community = expect(data, fields[1], OCTET_STRING)
    return version, community, decode_pdu(data, fields[2])


# security: the encoded UsmSecurityParameters; scoped: the plaintext
# scopedPDU (as decode_scoped_pdu gives it) or None; encrypted: the
# encryptedPDU's octets or None.
V3Message = namedtuple("V3Message", "version message_id max_size flags security_model security scoped encrypted")


def decode_v3_message(data):
    fields = _whole(data)
    if len(fields) != 4:
        raise Malformed("an SNMPv3 message has four fields")
    version = decode_integer(expect(data, fields[0], INTEGER))
    if fields[1][0] != SEQUENCE:
        raise Malformed("msgGlobalData not a SEQUENCE")
    header = children(data, fields[1][1], fields[1][2])
    if len(header) != 4:
        raise Malformed("msgGlobalData has four fields")
    message_id, max_size = (decode_integer(expect(data, field, INTEGER)) for field in header[:2])
    flags = expect(data, header[2], OCTET_STRING)
    model = decode_integer(expect(data, header[3], INTEGER))
    security = expect(data, fields[2], OCTET_STRING)
    tag, start, end = fields[3]
    if tag == SEQUENCE:
        return V3Message(version, message_id, max_size, flags, model, security, _scoped(data, start, end), None)
    return V3Message(version, message_id, max_size, flags, model, security, None, expect(data, fields[3], OCTET_STRING))


def decode_usm_parameters(data):
    """(engine ID, boots, time, user, auth parameters, privacy parameters)."""
    fields = _whole(data)
    if len(fields) != 6:
        raise Malformed("UsmSecurityParameters has six fields")
    engine_id = expect(data, fields[0], OCTET_STRING)
    boots, engine_time = (decode_integer(expect(data, field, INTEGER)) for field in fields[1:3])
    user, auth, privacy = (expect(data, field, OCTET_STRING) for field in fields[3:])
    return engine_id, boots, engine_time, user, auth, privacy


def decode_scoped_pdu(data, trailing=False):
    """(context engine ID, context name, Pdu) of a scopedPDU; `trailing`:
    bytes may follow it (a decrypted one's padding)."""
    tag, start, end = read(data)
    if tag != SEQUENCE or (end != len(data) and not trailing):
        raise Malformed("not a scopedPDU")
    return _scoped(data, start, end)


def _scoped(data, start, end):
    fields = children(data, start, end)
    if len(fields) != 3:
        raise Malformed("a scopedPDU has three fields")
    engine_id, name = (expect(data, field, OCTET_STRING) for field in fields[:2])
    return engine_id, name, decode_pdu(data, fields[2])
