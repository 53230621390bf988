"""What upsd says of itself, without logging in: its devices (LIST UPS)
with their types (device.type, one pipelined round trip), its protocol
and software versions (NETVER, VER), and whether it offers STARTTLS."""

import re
from dataclasses import dataclass

from infrapower.errors import NutError
from infrapower.nut.client import NutClient, NutSettings

UNKNOWN_TYPE = "unknown"


@dataclass(frozen=True)
class UpsdFacts:
    devices: tuple  # ((name, type), ...) sorted by name
    protocol: str  # NETVER, e.g. "1.3"
    version: str  # the NUT release, e.g. "2.8.0" ("" when VER says nothing usable)
    starttls: str  # "yes", "no" or "unknown"


def _settings(host, port, timeout, tls=False):
    return NutSettings(host, port, timeout, tls=tls)


def device_types(client, names):
    """{name: device.type} in one round trip; a device whose variable is
    missing or stale is `unknown` rather than guessed."""
    values = client.get_vars([(name, "device.type") for name in names]) if names else []
    return {name: value if isinstance(value, str) and value else UNKNOWN_TYPE for name, value in zip(names, values)}


def starttls_offered(host, port, timeout):
    """"yes" when upsd accepts STARTTLS (whether or not its certificate
    verifies here), "no" when it refuses, "unknown" otherwise."""
    client = NutClient(_settings(host, port, timeout, tls=True))
    try:
        client.connect()
    except NutError as error:
        if error.code:  # ERR FEATURE-NOT-CONFIGURED / FEATURE-NOT-SUPPORTED ...
            return "no"
        # The handshake began: upsd offered TLS (a certificate this host
        # does not trust is a matter for the client, not for the record).
        return "yes" if str(error).startswith("TLS with upsd") else "unknown"
    finally:
        client.close()
    return "yes"


def devices(host, port, timeout):
    """((name, type), ...) sorted by name: one connection, LIST UPS and one
    pipelined batch of GET VAR."""
    with NutClient(_settings(host, port, timeout)) as client:
        client.connect()
        names = sorted(client.list_ups())
        types = device_types(client, names)
    return tuple((name, types[name]) for name in names)


def facts(host, port, timeout):
    """Everything the record says; NutError when upsd does not answer."""
    with NutClient(_settings(host, port, timeout)) as client:
        client.connect()
        protocol = _version_or_blank(client, "NETVER")
        banner = _version_or_blank(client, "VER")
        names = sorted(client.list_ups())
        types = device_types(client, names)
    match = re.search(r"\b(\d+\.\d+(?:\.\d+)*)\b", banner)
    return UpsdFacts(tuple((name, types[name]) for name in names), protocol, match.group(1) if match else "",
                     starttls_offered(host, port, timeout))


def _version_or_blank(client, request):
    """NETVER's or VER's answer; "" from an upsd that does not know it
    (the record then leaves it out)."""
    reply = client.raw_request(request).strip()
    return "" if reply.startswith("ERR") else reply
