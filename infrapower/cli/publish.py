"""`infrapower publish`: announce this host's upsd on the local network with
mDNS/DNS-SD as `_nut._tcp` (Home Assistant) and `_upsd._tcp` (nut-scanner
-A), with the host's real name, NUT's protocol version, whether STARTTLS is
offered and the devices upsd serves (with their types) in the TXT record,
kept current while it runs; SIGTERM withdraws the records.

Publishes through the host's avahi-daemon when one runs, else through a
built-in responder (python-zeroconf).  See docs/publish.md."""

import argparse
import logging
import sys

DEFAULT_CONFIG_DIR = "/etc/nut"


def add_parser(subparsers):
    """Add `publish` to an argparse subparsers object (infrapower.cli)."""
    parser = subparsers.add_parser("publish", help="announce upsd and its devices with mDNS/DNS-SD",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR,
                       help="where upsd.conf is: its LISTEN lines say what to publish (default %(default)s)")
    where.add_argument("--upsd", metavar="HOST:PORT",
                       help="where upsd listens on this host, instead of reading upsd.conf")
    parser.add_argument("--publisher", choices=("auto", "avahi", "zeroconf"), default="auto",
                        help="auto (default): avahi-daemon when it runs, else python-zeroconf")
    parser.add_argument("--name", help="service instance name (default: the host name)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls of upsd (default 10)")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="seconds upsd may not answer before the records are withdrawn (default 60)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for each exchange with upsd (default 5)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (python-zeroconf's too)")
    parser.set_defaults(func=run)

    def error(message):  # one line (argparse would add the usage), exit 2 like scan's
        print(f"infrapower publish: {message} (see infrapower publish --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error
    return parser


def run(args):
    from infrapower.errors import InfrapowerError

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("infrapower publish: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        logging.getLogger("zeroconf").setLevel(logging.ERROR)
    try:
        for name, value in (("--interval", args.interval), ("--timeout", args.timeout), ("--grace", args.grace)):
            if not 0 < value < 86400:
                raise InfrapowerError(f"{name} {value:g}: give a number of seconds above 0")
        from infrapower.publish import listen, service

        endpoints = listen.from_upsd_option(args.upsd) if args.upsd else listen.from_config_dir(args.config_dir)
        return service.run(service.Options(tuple(endpoints), args.publisher, args.name, args.interval,
                                           args.grace, args.timeout))
    except InfrapowerError as error:
        print(f"infrapower publish: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: one line for the user, the traceback at debug level only
        logging.getLogger(__name__).debug("unexpected failure", exc_info=True)
        print(f"infrapower publish: internal error: {type(error).__name__}: {error} (run with -v for details)",
              file=sys.stderr)
        return 1
    finally:
        root.removeHandler(handler)
