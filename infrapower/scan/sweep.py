"""The presence round as one sweep: every SNMP v1/v2c GET of sysObjectID
(each host x port x community), every ASF presence ping (one UDP socket
per address family) and every upsd TCP connect (non-blocking) goes out at
once; answers are matched by source address and request id, and the round
ends within one timeout whatever the range's size (a thread per probe
would take a timeout per round of threads on a silent range).

Unanswered datagrams are re-sent a few times within the timeout (UDP may
drop them).  An ICMP port-unreachable (IP_RECVERR) or a TCP reset ends a
probe at once: nothing listens there.  The SNMP messages are
infrapower.snmp.ber's, a module with no imports of its own to wait for."""

import errno
import ipaddress
import os
import select
import socket
import time

from infrapower.scan.ipmi import parse_pong, ping_packet
from infrapower.snmp import ber
from infrapower.snmp.oid import SYS_OBJECT_ID

RESENDS = 3  # sends per datagram within the timeout
_PACE = 64  # datagrams sent between two looks at the answers
_RECEIVE_BUFFER = 8 << 20
_BURST = 4096  # datagrams or ICMP errors read in one look
_RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
            socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25))}
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
REFUSED = "refused"  # a probe's outcome when an ICMP port-unreachable or a reset said nothing listens


def _family(host):
    """Of an address as infrapower.scan.targets writes it (normalised)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _peer(address):
    """(normalised host, port) of a recvfrom address: IPv4 comes
    normalised, IPv6 may carry a scope."""
    host = address[0]
    if ":" in host:
        host = str(ipaddress.ip_address(host.split("%")[0]))
    return host, address[1]


# -- SNMP: a GET of sysObjectID and its response -------------------------------------


def snmp_get(version, community, request_id, oid=SYS_OBJECT_ID):
    """An SNMP v1 ("1") or v2c ("2c") GetRequest of one OID."""
    pdu = ber.pdu(ber.GET, request_id, [(oid, ber.NULL_VALUE)])
    return ber.community_message(ber.SNMP_V1 if version == "1" else ber.SNMP_V2C, community, pdu)


def snmp_parse(data, match):
    """("ok", sysObjectID or None) for the GetResponse to this request id,
    community and version, else None (anything malformed included)."""
    request_id, community, version = match
    try:
        wire_version, answered_community, pdu = ber.decode_community_message(data)
    except ber.Malformed:
        return None
    if wire_version != (ber.SNMP_V1 if version == "1" else ber.SNMP_V2C) or answered_community != community.encode():
        return None
    if pdu.tag != ber.RESPONSE or pdu.request_id != request_id:
        return None
    if pdu.error_status or not pdu.varbinds:
        return "ok", None  # it answered this community: an agent without sysObjectID
    value = pdu.varbinds[0][1]
    return "ok", value if isinstance(value, str) and value.startswith(".") and pdu.varbinds[0][0] == SYS_OBJECT_ID else None


_FIRST_ID, _IDS = 0x01000000, 0x7E000000


def _template(credential):
    """(head, tail) of this credential's GET around a four-byte request id."""
    one, other = (snmp_get(credential.version, credential.community, ident) for ident in (_FIRST_ID, _FIRST_ID + 0x10101))
    start = next(index for index in range(len(one)) if one[index] != other[index]) - 1
    return one[:start], one[start + 4:]


# -- the sweep ----------------------------------------------------------------------


class _Sweep:
    """Datagram requests {key: (host, port, datagram, match, parse)} and
    TCP connects {key: (host, port)}; outcomes by key: the parse's result,
    "connected", REFUSED, or "garbage" (an address that sent only what
    parse refused)."""

    def __init__(self, datagrams, connects, on_answer):
        self.datagrams, self.connects, self.on_answer = datagrams, connects, on_answer
        self.outcome, self.garbage = {}, set()
        self.by_peer = {}
        for key, (host, port, *_) in datagrams.items():
            self.by_peer.setdefault((host, port), []).append(key)
        self.udp = {}
        self.tcp = {}  # descriptor -> (socket, key), connects under way
        self.poller = select.poll()  # not select(): a large range has more than 1024 descriptors

    def settle(self, key, outcome):
        if key not in self.outcome:
            self.outcome[key] = outcome
            if self.on_answer and outcome != REFUSED:
                self.on_answer(key, outcome)

    def open_udp(self):
        for host, *_ in self.datagrams.values():
            family = _family(host)
            if family not in self.udp:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                try:
                    sock.setsockopt(*_RECVERR[family], 1)
                except OSError:
                    pass  # no ICMP errors: unanswered probes wait out the timeout
                # Every answer and ICMP error of a large range may queue up before the next look
                for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, option, _RECEIVE_BUFFER)
                        break
                    except (OSError, TypeError):
                        continue
                self.udp[family] = sock
                self.poller.register(sock, select.POLLIN)

    def connect_all(self):
        _raise_file_limit(len(self.connects) + 64)
        for key, (host, port) in self.connects.items():
            sock = socket.socket(_family(host), socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((host, port))
            if code in (0, errno.EINPROGRESS):
                self.tcp[sock.fileno()] = (sock, key)
                self.poller.register(sock, select.POLLOUT)
                continue
            sock.close()
            self.settle(key, REFUSED)

    def close(self):
        for sock in list(self.udp.values()) + [sock for sock, _ in self.tcp.values()]:
            sock.close()

    def send_all(self):
        pending = [key for key in self.datagrams if key not in self.outcome]
        for count, key in enumerate(pending):
            host, port, datagram = self.datagrams[key][:3]
            for attempt in range(2):  # a send that reports an earlier ICMP error did not go out: once more
                try:
                    self.udp[_family(host)].sendto(datagram, (host, port))
                    break
                except OSError:
                    if attempt:  # this address itself is unreachable from here (no route)
                        self.settle(key, REFUSED)
            if count % _PACE == _PACE - 1:
                self.receive(0)

    def done(self):
        return len(self.outcome) == len(self.datagrams) + len(self.connects)

    def receive(self, wait):
        udp = {sock.fileno(): sock for sock in self.udp.values()}
        for descriptor, events in self.poller.poll(wait * 1000):
            if descriptor in udp:
                if events & select.POLLERR:
                    self._errors(udp[descriptor])
                self._datagrams(udp[descriptor])
                continue
            sock, key = self.tcp.pop(descriptor)
            self.poller.unregister(descriptor)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sock.close()
            self.settle(key, "connected" if code == 0 else REFUSED)

    def _datagrams(self, sock):
        for _ in range(_BURST):  # bounded: the loop goes back to its deadline between bursts
            try:
                data, address = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error: which destination is in the error queue
                self._errors(sock)
                continue
            keys = [key for key in self.by_peer.get(_peer(address), ()) if key not in self.outcome]
            for key in keys:
                result = self.datagrams[key][4](data, self.datagrams[key][3])
                if result is not None:
                    self.settle(key, result)
                    break
            else:
                self.garbage.update(keys)

    def _errors(self, sock):
        for _ in range(_BURST):
            try:
                _, _, _, address = sock.recvmsg(512, 512, _MSG_ERRQUEUE)
            except OSError:
                return
            if not address:
                continue
            for key in self.by_peer.get(_peer(address), ()):
                if key not in self.garbage:
                    self.settle(key, REFUSED)


def _raise_file_limit(wanted):
    """Every connect of the round is an open descriptor at once."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted,
                                                        hard))
        except (ValueError, OSError):
            pass  # connects beyond the limit fail and count as nothing there


def _run(sweep, timeout, tick=None):
    deadline = time.monotonic() + timeout
    interval = timeout / RESENDS
    try:
        # the datagrams first, then the connects (their sockets cost more to set up)
        sweep.open_udp()
        sweep.send_all()
        next_send = time.monotonic() + interval
        sweep.connect_all()
        while not sweep.done():
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_send and sweep.datagrams:
                sweep.send_all()
                next_send = time.monotonic() + interval
            wait = max(0.0, min(deadline, next_send if sweep.datagrams else deadline, now + 0.1) - time.monotonic())
            sweep.receive(wait)
            if tick:
                tick(len(sweep.outcome))
    finally:
        sweep.close()


def presence(snmp_probes, ipmi_probes, timeout, on_answer=None, nut_probes=None, tick=None):
    """One sweep of all three.  snmp_probes: {key: (host, port, Credential
    v1/v2c)}; ipmi_probes and nut_probes: {key: (host, port)}.  Returns
    {key: ("ok", sysoid) | ("error", line)} for SNMP, {key: pong dict |
    {"error": line}} for IPMI, {key: "connected"} for upsd; keys nothing
    answered are left out.  on_answer(key, result) is called as each
    answer comes, so details can start within the round; tick(n) with
    the number of probes settled so far."""
    requests, templates = {}, {}
    base = int.from_bytes(os.urandom(3), "big")
    for index, (key, (host, port, credential)) in enumerate(snmp_probes.items()):
        # four-byte request ids (0x01000000..0x7EFFFFFF): one encoding per community, the id spliced in
        request_id = _FIRST_ID + (base + index) % _IDS
        head, tail = templates.get((credential.version, credential.community)) or \
            templates.setdefault((credential.version, credential.community), _template(credential))
        requests[key] = (host, port, head + request_id.to_bytes(4, "big") + tail,
                         (request_id, credential.community, credential.version), snmp_parse)
    tag = os.urandom(1)[0] & 0xFE  # 0xFF means "no reply expected"
    ping = ping_packet(tag)
    requests.update({key: (host, port, ping, tag, parse_pong) for key, (host, port) in ipmi_probes.items()})
    sweep = _Sweep(requests, dict(nut_probes or {}), on_answer)
    _run(sweep, timeout, tick)
    found = {key: outcome for key, outcome in sweep.outcome.items() if outcome != REFUSED}
    for key in sweep.garbage - set(sweep.outcome):
        host, port = requests[key][:2]
        if key in ipmi_probes:
            found[key] = {"error": f"{host}:{port} answered, but not an ASF presence pong"}
        # A wrong community is silence, not garbage (agents drop those), so
        # only an address that answered no community at all is garbage.
        elif not any(other in sweep.outcome for other in snmp_probes if requests[other][:2] == (host, port)):
            found[key] = ("error", f"{host}:{port} answered, but not SNMP v{snmp_probes[key][2].version}")
    return found
