"""`infrapower psu`: a server's power supplies, read out of band from its
BMC, as NUT-style variables (one block per PSU, as nut-ipmipsu names
them) for the PowerChain, or as JSON.

The password never goes in argv: --password-file, $IPMI_PASSWORD, or a
prompt.  `--lab SERVER` reads host, port and credentials from the running
lab instead.
"""

import json
import os
import sys

from infrapower.ports import IPMI_PORT


def add_parser(subparsers):
    parser = subparsers.add_parser("psu", help="a server's power supplies via its BMC, as NUT-style variables",
                                   description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", help="BMC address")
    target.add_argument("--lab", metavar="SERVER", help="a server of the running lab (clc, nc1, nc2)")
    parser.add_argument("--port", type=int, default=IPMI_PORT, help=f"RMCP+ UDP port (default {IPMI_PORT})")
    parser.add_argument("--user", default="", help="BMC user name")
    parser.add_argument("--password-file", help="file holding the password (else $IPMI_PASSWORD, else a prompt)")
    parser.add_argument("--privilege", default="user", choices=["callback", "user", "operator", "administrator"],
                        help="privilege level to ask for (reading needs only user; default user)")
    parser.add_argument("--cipher", help="RMCP+ cipher suite (default: 3, then 17)")
    parser.add_argument("--kg", metavar="HEX", help="BMC key (Kg), hexadecimal")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for the login and for each request")
    parser.add_argument("--json", action="store_true", help="JSON: every field and the NUT variables per PSU")
    parser.set_defaults(func=run)
    return parser


def _target(args):
    """(host, port, user, password) from the options or from the lab."""
    if args.lab:
        from infrapower.lab import Lab, default_lab_dir
        from infrapower.lab import bmc

        lab = Lab(default_lab_dir())
        return "127.0.0.1", lab.port(f"bmc:{args.lab}"), bmc.ADMIN_USER, bmc.ADMIN_PASSWORD
    if args.password_file:
        with open(args.password_file) as secret:
            password = secret.read().rstrip("\n")
    elif "IPMI_PASSWORD" in os.environ:
        password = os.environ["IPMI_PASSWORD"]
    else:
        import getpass

        password = getpass.getpass(f"password of {args.user or 'the null user'} on {args.host}: ")
    return args.host, args.port, args.user, password


def format_blocks(supplies):
    """`[name]` then `variable: value` lines (upsc's format), per PSU."""
    blocks = []
    for psu in supplies:
        lines = [f"[{psu.name}]"] + [f"{name}: {value}" for name, value in psu.nut_variables().items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def run(args):
    from infrapower.errors import InfrapowerError
    from infrapower.ipmi.chassis import open_session
    from infrapower.ipmi.psu import read_power_supplies
    from infrapower.ipmi.session import IpmiSettings
    from infrapower.options import cipher_option, kg_option

    try:
        host, port, user, password = _target(args)
        settings = IpmiSettings(host, port, user, password, privilege=args.privilege, cipher_suite=cipher_option(args.cipher),
                                kg=kg_option(args.kg), login_timeout=args.timeout, command_timeout=args.timeout)
        with open_session(settings) as session:
            supplies = read_power_supplies(session)
    except (InfrapowerError, OSError) as error:
        print(f"infrapower psu: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([dict(vars(psu), variables=psu.nut_variables()) for psu in supplies], indent=1))
    else:
        print(format_blocks(supplies))
    return 0
