#!/usr/bin/python3 -tt
"""fence_nut: fence outlets through a NUT upsd server.

Any outlet that NUT can switch, whatever driver serves it, becomes a fence
device; upsd.users' per-command grants are the access control.  A node fed
by two PDUs is fenced by one device: plug=pdu1:3,pdu2:3.
"""

FENCE_LIBDIR = "/usr/share/fence"

OPTIONS = {
    "ups": {
        "getopt": ":",
        "longopt": "ups",
        "help": "--ups=[name]                   The NUT device whose outlets plug numbers/names refer to",
        "required": "0",
        "shortdesc": "Default NUT device (plugs may also be written DEVICE:OUTLET, or DEVICE:UNIT:OUTLET on a daisy chain)",
        "order": 1,
    },
    "ssl_ca": {
        "getopt": ":",
        "longopt": "ssl-ca",
        "help": "--ssl-ca=[path]                CA file (or directory) that signed upsd's certificate",
        "required": "0",
        "shortdesc": "CA certificate file or directory to verify upsd with (implies ssl)",
        "order": 1,
    },
    "ssl_required": {
        "getopt": "",
        "longopt": "ssl-required",
        "help": "--ssl-required                 Refuse to talk to upsd without TLS",
        "required": "0",
        "shortdesc": "Refuse a upsd that does not offer TLS",
        "order": 1,
    },
}

DOCS = {
    "shortdesc": "Fence agent for outlets switched through a NUT upsd server",
    "longdesc": "fence_nut switches PDU and UPS outlets through a Network UPS Tools (NUT) upsd server, "
    "whatever driver serves them, and verifies every change by reading the outlet status back. "
    "A plug is OUTLET on the device named by ups, or DEVICE:OUTLET; OUTLET is the outlet number or "
    "its outlet.N.desc/outlet.N.name. On a daisy chain that snmp-ups serves as one device (outlets "
    "device.U.outlet.N), a plug is UNIT:OUTLET on the device named by ups, or DEVICE:UNIT:OUTLET "
    "(pdu1:2:3: outlet 3 of unit 2), switched with device.U.outlet.N.load.off/on; a plain OUTLET there "
    "is unit 1's. Several plugs (pdu1:3,pdu2:3) are fenced as one node: every "
    "feed off and verified off before any comes back on. A device without outlets stands for its "
    "whole load (load.off/load.on). The upsd user needs instcmds for outlet.N.load.off and "
    "outlet.N.load.on in upsd.users; where a device offers no outlet commands but a writable "
    "outlet.N.status, the outlet is switched with SET VAR and the user needs actions = SET.",
    "vendorurl": "https://networkupstools.org",
}


def adjust(all_opt):
    from infrapower.ports import NUT_PORT

    all_opt["ipport"]["default"] = str(NUT_PORT)
    all_opt["ssl"]["help"] = "-z, --ssl                      Use STARTTLS with upsd (verify with ssl_ca)"


def open_device(settings, options):
    from infrapower.nut.outlets import open_outlets

    return open_outlets(settings)


def settings(options):
    from infrapower.options import nut_settings

    return nut_settings(options)


if __name__ == "__main__":
    from infrapower.agent import Agent, main

    main(Agent(
        device_opt=["ipaddr", "ipport", "login", "passwd", "port", "ups", "ssl", "ssl_ca", "ssl_required", "no_login",
                    "no_password"],
        docs=DOCS, options=OPTIONS, adjust=adjust, settings=settings, open_device=open_device,
        # fencing.py's gnutls-cli options: upsd's TLS is STARTTLS in process.
        hidden=("ssl_secure", "ssl_insecure", "gnutlscli_path"),
    ), FENCE_LIBDIR)
