"""The presence sweep's own SNMP encoding, checked against pysnmp (the
reference codec), and its early ends: an ICMP port-unreachable or a TCP
reset settles a probe at once, on loopback addresses only."""

import socket
import sys
import threading
import time

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from infrapower.scan import sweep
from infrapower.scan.snmp import Credential

SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"


@pytest.mark.parametrize("version, wire", [("1", api.SNMP_VERSION_1), ("2c", api.SNMP_VERSION_2C)])
@pytest.mark.parametrize("request_id", [0, 1, 127, 128, 255, 256, 0x7FFFFFFE])
def test_the_get_is_what_pysnmp_decodes(version, wire, request_id):
    proto = api.PROTOCOL_MODULES[wire]
    message, rest = decoder.decode(sweep.snmp_get(version, "pr\u00efvate-c", request_id), asn1Spec=proto.Message())
    assert rest == b""
    assert bytes(proto.apiMessage.get_community(message)) == "pr\u00efvate-c".encode()
    pdu = proto.apiMessage.get_pdu(message)
    assert pdu.tagSet == proto.GetRequestPDU.tagSet and int(proto.apiPDU.get_request_id(pdu)) == request_id
    (oid, value), = proto.apiPDU.get_varbinds(pdu)
    assert str(oid) == SYS_OBJECT_ID and isinstance(value, proto.Null)


def _response(wire, request_id, community, value, error_status=0):
    proto = api.PROTOCOL_MODULES[wire]
    pdu = proto.GetResponsePDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, request_id)
    proto.apiPDU.set_error_status(pdu, error_status)
    proto.apiPDU.set_varbinds(pdu, [(SYS_OBJECT_ID, value(proto))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def test_responses_pysnmp_encodes_are_read():
    sysoid = "1.3.6.1.4.1.318.1.3.4.5"
    long_oid = "1.3.6.1.4.1.534.6.6.7.1.2.1.2.4294967295"
    v1, v2c = api.SNMP_VERSION_1, api.SNMP_VERSION_2C
    assert sweep.snmp_parse(_response(v1, 7, "private", lambda p: p.ObjectIdentifier(sysoid)), (7, "private", "1")) \
        == ("ok", "." + sysoid)
    assert sweep.snmp_parse(_response(v2c, 9, "c", lambda p: p.ObjectIdentifier(long_oid)), (9, "c", "2c")) \
        == ("ok", "." + long_oid)
    assert sweep.snmp_parse(_response(v2c, 9, "c", lambda p: p.Integer(5)), (9, "c", "2c")) == ("ok", None)
    assert sweep.snmp_parse(_response(v1, 3, "c", lambda p: p.Null(""), error_status=2), (3, "c", "1")) == ("ok", None)
    # another request, another community, another version: not this probe's answer
    answer = _response(v1, 7, "private", lambda p: p.ObjectIdentifier(sysoid))
    for match in ((8, "private", "1"), (7, "public", "1"), (7, "private", "2c")):
        assert sweep.snmp_parse(answer, match) is None


@pytest.mark.parametrize("garbage", [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x02\x01\xff garbage",
                                     b"\x30\x80\x00\x00", bytes(range(256)), b"\xa2\x00"])
def test_garbage_is_not_an_answer(garbage):
    assert sweep.snmp_parse(garbage, (1, "public", "1")) is None


def test_a_closed_port_ends_at_once_and_a_silent_one_waits_the_timeout():
    """127.x answers ICMP port-unreachable for a port nobody bound; a bound
    socket that never answers is silence."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.78.0.2", 0))
    closed = {("snmp", f"127.78.1.{n}", 161, 0): (f"127.78.1.{n}", 161, Credential("1", "public")) for n in range(1, 60)}
    closed_ipmi = {("ipmi", f"127.78.1.{n}", 623): (f"127.78.1.{n}", 623) for n in range(1, 60)}
    try:
        started = time.monotonic()
        assert sweep.presence(closed, closed_ipmi, 3.0) == {}
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        assert sweep.presence({}, {"quiet": ("127.78.0.2", silent.getsockname()[1])}, 0.8) == {}
        assert 0.75 < time.monotonic() - started < 2.0
    finally:
        silent.close()


def test_upsd_connects_are_swept_too():
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.78.0.3", 0))
    listening.listen(4)
    answered = []
    try:
        probes = {"there": ("127.78.0.3", listening.getsockname()[1]), "refused": ("127.78.0.4", 3493)}
        started = time.monotonic()
        found = sweep.presence({}, {}, 3.0, lambda key, outcome: answered.append(key), probes)
        assert time.monotonic() - started < 1.5
    finally:
        listening.close()
    assert found == {"there": "connected"} and answered == ["there"]


def test_answers_come_as_they_arrive():
    """on_answer is called within the round, before its timeout ends."""
    agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agent.bind(("127.78.0.5", 0))
    agent.settimeout(0.05)
    seen, stop = [], threading.Event()

    def answer():  # an agent: answers its community, drops the others
        proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
        while not stop.is_set():
            try:
                data, peer = agent.recvfrom(2048)
            except OSError:
                continue
            message, _ = decoder.decode(data, asn1Spec=proto.Message())
            if bytes(proto.apiMessage.get_community(message)) != b"public":
                continue
            request_id = int(proto.apiPDU.get_request_id(proto.apiMessage.get_pdu(message)))
            agent.sendto(_response(api.SNMP_VERSION_1, request_id, "public",
                                   lambda p: p.ObjectIdentifier("1.3.6.1.4.1.99999.1")), peer)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        probes = {"agent": ("127.78.0.5", agent.getsockname()[1], Credential("1", "public")),
                  "wrong": ("127.78.0.5", agent.getsockname()[1], Credential("1", "other"))}
        found = sweep.presence(probes, {}, 2.0, lambda key, outcome: seen.append((key, time.monotonic())))
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join()
        agent.close()
    assert found == {"agent": ("ok", ".1.3.6.1.4.1.99999.1")}
    assert seen[0][0] == "agent" and ended - seen[0][1] > 0.5


def test_the_progress_bar_only_on_a_terminal():
    import os
    import pty
    import subprocess

    from scan_helpers import PACKAGE_ROOT, scan

    argv = ["-S", "-O", "-I", "-m", "127.78.3.0/29", "-t", "0.3", "--json"]
    piped = scan(*argv)
    assert piped.returncode == 0 and "probes" not in piped.stderr and "\r" not in piped.stderr
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "infrapower.cli.main", "scan", *argv], stdout=subprocess.PIPE,
                                   stderr=slave, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
        os.close(slave)
        out, _ = process.communicate(timeout=60)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert process.returncode == 0 and out.strip() == b"[]"
    assert b"\r[" in seen and b"probes" in seen and b"scanned 6 host(s)" in seen
