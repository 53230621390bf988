"""The presence round over UDP as one sweep: every SNMP GET of sysObjectID
(each host x port x community) and every ASF presence ping goes out of one
socket, answers are matched by source address and request id, and the
whole round ends within one timeout, whatever the range's size (a thread
per probe would take a timeout per round of threads on a silent range).
Unanswered requests are re-sent a few times within the timeout (UDP may
drop them)."""

import ipaddress
import os
import socket
import time

from infrapower.snmp.pdu import SYS_OBJECT_ID

RESENDS = 3  # sends per request within the timeout
_PACE = 256  # datagrams sent between two looks at the answers


def _family(host):
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _peer(address):
    """(normalised host, port) of a recvfrom address."""
    return str(ipaddress.ip_address(address[0].split("%")[0])), address[1]


def _sweep(requests, timeout, on_answer=None):
    """requests: {key: (host, port, datagram, match, parse)}; parse(data,
    match) gives a result or None; on_answer(key, result) as each comes.  {key: result} for answered keys, and
    {key: "garbage"} for keys whose address sent only what parse refused."""
    sockets = {}
    for key, (host, port, *_) in requests.items():
        family = _family(host)
        if family not in sockets:
            sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
            sockets[family].setblocking(False)
    by_peer = {}
    for key, (host, port, *_) in requests.items():
        by_peer.setdefault((str(ipaddress.ip_address(host)), port), []).append(key)
    answered, garbage = {}, set()
    deadline = time.monotonic() + timeout
    interval = timeout / RESENDS
    next_send = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= deadline or len(answered) == len(requests):
                break
            if now >= next_send:
                pending = [key for key in requests if key not in answered]
                for count, key in enumerate(pending):
                    host, port, datagram = requests[key][:3]
                    try:
                        sockets[_family(host)].sendto(datagram, (host, port))
                    except OSError:
                        pass  # unreachable or refused: nothing answers there
                    if count % _PACE == _PACE - 1:
                        _receive(sockets, requests, by_peer, answered, garbage, 0, on_answer)
                next_send = time.monotonic() + interval
            wait = max(0.0, min(deadline, next_send) - time.monotonic())
            _receive(sockets, requests, by_peer, answered, garbage, wait, on_answer)
    finally:
        for sock in sockets.values():
            sock.close()
    return answered, {key for key in garbage if key not in answered}


def _receive(sockets, requests, by_peer, answered, garbage, wait, on_answer):
    import select

    readable, _, _ = select.select(list(sockets.values()), [], [], wait)
    for sock in readable:
        while True:
            try:
                data, address = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error surfacing on the socket
            keys = by_peer.get(_peer(address), ())
            matched = False
            for key in keys:
                if key in answered:
                    continue
                result = requests[key][4](data, requests[key][3])
                if result is not None:
                    answered[key] = result
                    if on_answer:
                        on_answer(key, result)
                    matched = True
                    break
            if keys and not matched:
                garbage.update(k for k in keys if k not in answered)


# -- SNMP v1/v2c --------------------------------------------------------------------


def _snmp_request(version, community, request_id):
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import api

    proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_1 if version == "1" else api.SNMP_VERSION_2C]
    pdu = proto.GetRequestPDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, request_id)
    proto.apiPDU.set_varbinds(pdu, [(SYS_OBJECT_ID.lstrip("."), proto.Null(""))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def _snmp_parse(data, match):
    """("ok", sysObjectID) for the response to this request id and
    community, else None (anything undecodable included)."""
    from pyasn1.codec.ber import decoder
    from pysnmp.proto import api

    request_id, community, version = match
    try:
        wire_version = int(api.decodeMessageVersion(data))
        if wire_version != (0 if version == "1" else 1):
            return None
        proto = api.PROTOCOL_MODULES[wire_version]
        message, _ = decoder.decode(data, asn1Spec=proto.Message())
        if bytes(proto.apiMessage.get_community(message)) != community.encode():
            return None
        pdu = proto.apiMessage.get_pdu(message)
        if pdu.tagSet != proto.GetResponsePDU.tagSet or int(proto.apiPDU.get_request_id(pdu)) != request_id:
            return None
        if int(proto.apiPDU.get_error_status(pdu)):
            return "ok", None  # it answered this community: an agent without sysObjectID
        varbinds = proto.apiPDU.get_varbinds(pdu)
        value = varbinds[0][1] if varbinds else None
        if isinstance(value, proto.ObjectIdentifier):
            return "ok", "." + ".".join(str(part) for part in value)
        return "ok", None
    except Exception:  # whatever pyasn1 makes of garbage: not an answer
        return None


def presence(snmp_probes, ipmi_probes, timeout, on_answer=None):
    """One sweep of both.  snmp_probes: {key: (host, port, Credential
    v1/v2c)}; ipmi_probes: {key: (host, port)}.  {key: ("ok", sysoid) |
    ("error", line)} for SNMP, {key: pong dict | {"error": line}} for
    IPMI; keys nothing answered are left out.  on_answer(key, result) is
    called as each answer comes, so details can start within the round."""
    from infrapower.scan.ipmi import parse_pong, ping_packet

    requests = {}
    base = int.from_bytes(os.urandom(3), "big")
    for index, (key, (host, port, credential)) in enumerate(snmp_probes.items()):
        request_id = (base + index) % 0x7FFFFFFF
        datagram = _snmp_request(credential.version, credential.community, request_id)
        requests[key] = (host, port, datagram, (request_id, credential.community, credential.version), _snmp_parse)
    tag = os.urandom(1)[0] & 0xFE
    ping = ping_packet(tag)
    requests.update({key: (host, port, ping, tag, parse_pong) for key, (host, port) in ipmi_probes.items()})
    answered, garbage = _sweep(requests, timeout, on_answer)
    found = dict(answered)
    for key in garbage:
        host, port = requests[key][:2]
        if key in ipmi_probes:
            found[key] = {"error": f"{host}:{port} answered, but not an ASF presence pong"}
        # A wrong community is silence, not garbage (agents drop those), so
        # only an address that answered no community at all is garbage.
        elif not any(other in answered for other in snmp_probes if requests[other][:2] == (host, port)):
            found[key] = ("error", f"{host}:{port} answered, but not SNMP v{snmp_probes[key][2].version}")
    return found
