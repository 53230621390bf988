"""BMC probes: the ASF presence ping (RMCP, DMTF DSP0136 §3.2.4), which
any BMC answers without a session, and with credentials an RMCP+ login
with fence_ipmi_psu's own session: chassis power (read, never set) and
the power supplies."""

import os
import socket
import struct
import time

ASF_IANA = 4542
_PING, _PONG = 0x80, 0x40
_IPMI_SUPPORTED = 0x80  # pong's supported entities, bit 7


def ping_packet(tag):
    """RMCP v1.0, no ACK, class ASF; presence ping with message tag."""
    return bytes([0x06, 0x00, 0xFF, 0x06]) + struct.pack(">IBBBB", ASF_IANA, _PING, tag, 0, 0)


def parse_pong(data, tag):
    """{"ipmi": bool, "asf_version": "1.0"} for our pong, else None."""
    if len(data) < 12 or data[:4] != bytes([0x06, 0x00, 0xFF, 0x06]):
        return None
    iana, kind, answered_tag, _, length = struct.unpack(">IBBBB", data[4:12])
    if iana != ASF_IANA or kind != _PONG or answered_tag != tag or length < 10 or len(data) < 12 + 10:
        return None
    entities = data[12 + 8]
    return {"ipmi": bool(entities & _IPMI_SUPPORTED), "asf_version": "1.0" if entities & 0x0F == 1 else f"{entities & 0x0F}"}


def ping(host, port, timeout):
    """The pong's contents, None when nothing answers, {"error": ...}
    for something that answers, but no pong, within the timeout."""
    from infrapower.resolve import resolve

    try:
        family, kind, proto, _, where = resolve(host, port, socket.SOCK_DGRAM, timeout)[0]
    except (OSError, socket.timeout) as error:
        return {"error": f"cannot resolve {host}: {error}"}
    tag = os.urandom(1)[0] & 0xFE  # 0xFF means "no reply expected"
    deadline = time.monotonic() + timeout
    garbage = False
    with socket.socket(family, kind, proto) as sock:
        sock.connect(where)
        resend = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return {"error": f"{host}:{port} answered, but not an ASF presence pong"} if garbage else None
            if now >= resend:
                try:
                    sock.send(ping_packet(tag))
                except OSError:
                    return None
                resend = now + max(timeout / 3, 0.2)
            sock.settimeout(max(0.01, min(deadline, resend) - now))
            try:
                data = sock.recv(512)
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                return None  # ICMP port unreachable: nothing listens
            except OSError:
                return None
            pong = parse_pong(data, tag)
            if pong is not None:
                return pong
            garbage = True


def login(host, port, username, password, timeout):
    """Chassis power, the cipher suite the login got, and the power
    supplies; {"error": one line} when the login or a read fails."""
    from infrapower.errors import InfrapowerError
    from infrapower.ipmi.chassis import chassis_power, open_session
    from infrapower.ipmi.psu import read_power_supplies
    from infrapower.ipmi.session import IpmiSettings

    settings = IpmiSettings(host, port, username, password, privilege="user",
                            login_timeout=timeout, command_timeout=timeout)
    try:
        with open_session(settings) as session:
            power = chassis_power(session)
            supplies = read_power_supplies(session)
            suite = session.suite.number if session.suite else None
    except (InfrapowerError, OSError) as error:
        return {"error": str(error)}
    return {
        "power": power,
        "cipher": suite,
        "psus": [{"index": psu.index, "name": psu.name, "maker": psu.maker, "model": psu.model, "serial": psu.serial,
                  "part": psu.part, "rating_watts": psu.rating_watts, "state": psu.state} for psu in supplies],
    }
