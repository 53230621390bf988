#!/usr/bin/python3 -tt
"""fence_nut: fence outlets through a NUT upsd server.

Any outlet that NUT can switch, whatever driver serves it, becomes a fence
device; upsd.users' per-command grants are the access control.  A node fed
by two PDUs is fenced by one device: plug=pdu1:3,pdu2:3.
"""

import atexit
import os

FENCE_LIBDIR = "/usr/share/fence"

from infrapower.fence import DEFAULT_IO_TIMEOUT, load_fencing, main_guard, plugs_from, run_action, timeout_option

fencing = load_fencing(FENCE_LIBDIR)
from fencing import all_opt, atexit_handler, check_input, process_input, run_delay, show_docs  # noqa: E402

OWN_OPTIONS = {
    "ups": {
        "getopt": ":",
        "longopt": "ups",
        "help": "--ups=[name]                   The NUT device whose outlets plug numbers/names refer to",
        "required": "0",
        "shortdesc": "Default NUT device (plugs may also be written DEVICE:OUTLET)",
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
    "its outlet.N.desc/outlet.N.name. Several plugs (pdu1:3,pdu2:3) are fenced as one node: every "
    "feed off and verified off before any comes back on. A device without outlets stands for its "
    "whole load (load.off/load.on). The upsd user needs instcmds for outlet.N.load.off and "
    "outlet.N.load.on in upsd.users; where a device offers no outlet commands but a writable "
    "outlet.N.status, the outlet is switched with SET VAR and the user needs actions = SET.",
    "vendorurl": "https://networkupstools.org",
}


def enabled(options, name):
    """fencing.py keeps a boolean given as 0/no/off present: test its value."""
    return options.get(name, "0").lower() not in ("0", "no", "off", "false")


def fence(options):
    from infrapower.nut import NutClient
    from infrapower.nut_outlets import NutOutlets

    plugs = plugs_from(options)  # a malformed plug is refused before any I/O
    io_timeout = timeout_option(options, "--shell-timeout", DEFAULT_IO_TIMEOUT)
    client = NutClient(options["--ip"], options["--ipport"], io_timeout, verbose="--verbose" in options)
    # Any of these asks for TLS, and then TLS is required (NutClient.connect).
    tls = enabled(options, "--ssl") or "--ssl-ca" in options or enabled(options, "--ssl-required")
    ca = options.get("--ssl-ca")
    ca_is_dir = bool(ca) and os.path.isdir(ca)
    try:
        client.connect(
            tls=tls,
            ca_file=None if ca_is_dir else ca,
            ca_dir=ca if ca_is_dir else None,
        )
    except Exception as error:  # NutError: one line, what to change
        from infrapower.fence import FenceError

        raise FenceError(str(error)) from None
    with client:
        username = options.get("--username", "")
        outlets = NutOutlets(client, username, options.get("--ups"), command_timeout=io_timeout)
        if username:
            outlets.login(options.get("--password", ""))
        return run_action(options, outlets, plugs)


def main():
    device_opt = ["ipaddr", "ipport", "login", "passwd", "port", "ups", "ssl", "ssl_ca", "ssl_required", "no_login", "no_password"]
    atexit.register(atexit_handler)
    all_opt.update(OWN_OPTIONS)
    all_opt["ipport"]["default"] = "3493"
    all_opt["ssl"]["help"] = "-z, --ssl                      Use STARTTLS with upsd (verify with ssl_ca)"
    options = check_input(device_opt, process_input(device_opt))
    show_docs(options, DOCS)
    run_delay(options)
    main_guard(lambda: fence(options))


if __name__ == "__main__":
    main()
