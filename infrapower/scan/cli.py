"""`infrapower scan`: find SNMP PDUs and UPSes (with their NUT mapping and
outlets), upsd servers (devices, outlets, TLS) and BMCs (power state and
power supplies, with credentials) on a range, read-only.

Options are nut-scanner's where it has them.  Secrets never go on the
command line: SNMPv3 passphrases come from files (-W, -X) or from
$INFRAPOWER_SNMP_AUTH_PASSWORD / $INFRAPOWER_SNMP_PRIV_PASSWORD, the BMC
password from --ipmi-password-file or $IPMI_PASSWORD; no output ever
holds one.  Exit status 0 after a scan (found or not), 2 for a bad option.
"""

import argparse
import os
import sys
import time

EXIT_USAGE = 2
AUTH_ENV, PRIV_ENV, IPMI_ENV = "INFRAPOWER_SNMP_AUTH_PASSWORD", "INFRAPOWER_SNMP_PRIV_PASSWORD", "IPMI_PASSWORD"
FORMATS = ("table", "json", "ups.conf", "servers", "pcs")
MAX_THREADS = 1024


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, its width from os: argparse builds one per
    option, and its own default imports shutil (with bz2, lzma, fnmatch),
    ~10 ms of a scan's start-up, which counts in its time."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        if width is None:
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns - 2
            except (OSError, ValueError):
                width = int(os.environ.get("COLUMNS", "80")) - 2 if os.environ.get("COLUMNS", "").isdigit() else 78
        super().__init__(prog, indent_increment, max_help_position, width)


def add_parser(subparsers):
    """Add `scan` to an argparse subparsers object (infrapower.cli)."""
    parser = subparsers.add_parser("scan", help="discover PDUs, UPSes, upsd servers and BMCs on a range",
                                   description=__doc__, formatter_class=_Formatter)
    return _configure(parser)


def main(argv):
    """`infrapower scan ARGV` without the other commands' parsers."""
    parser = argparse.ArgumentParser(prog="infrapower scan", description=__doc__,
                                     formatter_class=_Formatter)
    args = _configure(parser).parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


def _configure(parser):
    _arguments(parser)
    parser.set_defaults(func=run)

    def error(message):  # one line, exit 2 (argparse would add the usage)
        print(f"infrapower scan: {message} (see infrapower scan --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    parser.error = error
    return parser


def _arguments(parser):
    from infrapower.scan.targets import MAX_HOSTS

    where = parser.add_argument_group("what to scan")
    where.add_argument("-m", "--mask_cidr", action="append", default=[], metavar="CIDR", help="a network (repeatable)")
    where.add_argument("-s", "--start_ip", help="first address of a range (alone: one host)")
    where.add_argument("-e", "--end_ip", help="last address of the range")
    where.add_argument("--max-hosts", type=int, default=MAX_HOSTS, help="refuse larger ranges (default %(default)s)")
    where.add_argument("-t", "--timeout", type=float, default=2.0, help="seconds per probe (default %(default)s)")
    where.add_argument("-T", "--thread", type=int, default=64, help="probes at once (default %(default)s)")
    where.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary (stderr)")
    buses = parser.add_argument_group("buses (default: all)")
    buses.add_argument("-S", "--snmp_scan", action="store_true", help="SNMP agents (PDUs, UPSes)")
    buses.add_argument("-O", "--oldnut_scan", action="store_true", help="upsd servers")
    buses.add_argument("-I", "--ipmi_scan", action="store_true", help="BMCs")
    buses.add_argument("-A", "--avahi_scan", action="store_true",
                       help="upsd servers published with mDNS (_nut._tcp, _upsd._tcp)")
    snmp = parser.add_argument_group("SNMP")
    snmp.add_argument("-c", "--community", action="append", default=[],
                      help="v1/v2c community, repeatable: every one is tried on every host, the first that "
                           "answers is used (default: public, unless -u is given)")
    snmp.add_argument("--snmp-version", choices=["1", "2c"], default="1", help="for communities (default 1)")
    snmp.add_argument("--snmp-port", action="append", metavar="PORT[,PORT]", help="default 161")
    snmp.add_argument("-u", "--secName", help="SNMPv3 user")
    snmp.add_argument("-l", "--secLevel", help="noAuthNoPriv, authNoPriv, authPriv (default: what the keys imply)")
    snmp.add_argument("-w", "--authProtocol", help="MD5 (default), SHA, SHA-224, SHA-256, SHA-384, SHA-512")
    snmp.add_argument("-W", "--authPassword-file", metavar="FILE", help=f"the auth passphrase (else ${AUTH_ENV})")
    snmp.add_argument("-x", "--privProtocol", help="DES (default), AES, AES-192, AES-256")
    snmp.add_argument("-X", "--privPassword-file", metavar="FILE", help=f"the privacy passphrase (else ${PRIV_ENV})")
    nut = parser.add_argument_group("NUT")
    nut.add_argument("-p", "--port", action="append", metavar="PORT[,PORT]", help="upsd port (default 3493)")
    ipmi = parser.add_argument_group("IPMI")
    ipmi.add_argument("--ipmi-port", action="append", metavar="PORT[,PORT]", help="default 623")
    ipmi.add_argument("--ipmi-user", help="log in to every BMC that answers (read-only: power state, PSUs)")
    ipmi.add_argument("--ipmi-password-file", metavar="FILE", help=f"its password (else ${IPMI_ENV})")
    out = parser.add_argument_group("output (default: a table on standard output)")
    out.add_argument("--format", choices=FORMATS, help="one format on standard output")
    for name in ("json", "ups-conf", "servers", "pcs"):
        out.add_argument(f"--{name}", nargs="?", const="-", metavar="FILE", help=f"write {name} to FILE (or stdout)")
    out.add_argument("--secrets-dir", default=None, metavar="DIR",
                     help="where the pcs commands' key files are (default /etc/fence-agents-infrapower/keys)")


def _secret(path, variable, what):
    """A secret from a file (its first line) or the environment; never argv."""
    if path:
        try:
            with open(path) as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as error:
            raise _usage(f"{what} file {path}: {error.strerror or error}")
    return os.environ.get(variable)


def _usage(message):
    from infrapower.scan import ScanError

    return ScanError(message)


def credentials(args):
    """The SNMP credentials to try, in the order given."""
    from infrapower.scan.snmp import Credential

    found = [Credential(args.snmp_version, community) for community in args.community]
    v3 = any((args.secLevel, args.authProtocol, args.authPassword_file, args.privProtocol, args.privPassword_file))
    if args.secName:
        from infrapower.errors import SnmpError
        from infrapower.snmp.usm import UsmUser

        auth = _secret(args.authPassword_file, AUTH_ENV, "-W")
        priv = _secret(args.privPassword_file, PRIV_ENV, "-X")
        try:
            user = UsmUser.checked(args.secName, args.secLevel, args.authProtocol, auth, args.privProtocol, priv)
        except SnmpError as error:
            message = str(error).replace("snmp_sec_level", "-l").replace("snmp_auth_prot", "-w") \
                .replace("snmp_priv_prot", "-x").replace("snmp_priv_passwd", f"-X or ${PRIV_ENV}") \
                .replace("needs password", f"needs -W or ${AUTH_ENV}")
            raise _usage(message) from None
        found.append(Credential("3", usm=user))
    elif v3:
        raise _usage("SNMPv3 options need -u/--secName")
    if not found:
        found.append(Credential(args.snmp_version, "public"))
    return found


def make_plan(args):
    """ScanPlan from the options, or ScanError (one line, exit 2)."""
    from infrapower.ports import IPMI_PORT, NUT_PORT, SNMP_PORT
    from infrapower.scan import mdns
    from infrapower.scan.run import ADDRESS_BUSES, BUSES, ScanPlan
    from infrapower.scan.targets import parse_hosts, parse_ports

    if not 0 < args.timeout <= 300:
        raise _usage(f"--timeout {args.timeout:g}: give seconds between 0 and 300")
    if not 1 <= args.thread <= MAX_THREADS:
        raise _usage(f"--thread {args.thread}: give 1 to {MAX_THREADS}")
    flags = (args.snmp_scan, args.oldnut_scan, args.ipmi_scan, args.avahi_scan)
    chosen = tuple(bus for bus, flag in zip(BUSES, flags) if flag)
    if args.avahi_scan and not mdns.available():
        raise _usage("-A needs python-zeroconf (Debian: python3-zeroconf; PyPI: zeroconf)")
    # every network bus by default; mDNS where python-zeroconf is there to browse with
    buses = chosen or tuple(bus for bus in BUSES if bus != "mdns" or mdns.available())
    ranged = args.mask_cidr or args.start_ip or args.end_ip
    if chosen == ("mdns",) and not ranged:
        hosts = []  # mDNS alone needs no range
    elif not ranged and not chosen:
        raise _usage("nothing to scan: give -m/--mask_cidr or -s/--start_ip (and -e/--end_ip), or -A for mDNS")
    else:
        hosts = parse_hosts(args.mask_cidr, args.start_ip, args.end_ip, args.max_hosts)
        if not any(bus in ADDRESS_BUSES for bus in buses):
            raise _usage("-A browses mDNS, it scans no range: add -S, -O or -I to scan the addresses too")
    ipmi_password = None
    if args.ipmi_user is not None:
        ipmi_password = _secret(args.ipmi_password_file, IPMI_ENV, "--ipmi-password-file") or ""
    elif args.ipmi_password_file:
        raise _usage("--ipmi-password-file needs --ipmi-user")
    return ScanPlan(
        hosts=hosts, buses=buses,
        snmp_ports=tuple(parse_ports(args.snmp_port, SNMP_PORT, "--snmp-port")),
        nut_ports=tuple(parse_ports(args.port, NUT_PORT, "-p/--port")),
        ipmi_ports=tuple(parse_ports(args.ipmi_port, IPMI_PORT, "--ipmi-port")),
        credentials=tuple(credentials(args)) if "snmp" in buses else (),
        ipmi_user=args.ipmi_user, ipmi_password=ipmi_password, timeout=args.timeout, threads=args.thread,
    )


def _outputs(args):
    """[(format, path or "-")] in the order the options name them."""
    wanted = [(name, getattr(args, attr)) for name, attr in
              (("json", "json"), ("ups.conf", "ups_conf"), ("servers", "servers"), ("pcs", "pcs")) if getattr(args, attr)]
    if args.format:
        wanted.insert(0, (args.format, "-"))
    return wanted or [("table", "-")]


def render(results, fmt, args):
    from infrapower.scan import output

    secrets_dir = (args.secrets_dir or output.DEFAULT_SECRETS_DIR).rstrip("/") or "/"
    if fmt == "table":
        return output.table(results) + "\n"
    if fmt == "json":
        return output.to_json(results) + "\n"
    if fmt == "ups.conf":
        return output.ups_conf(results, args.ipmi_user)
    if fmt == "servers":
        return output.servers_file(results, args.ipmi_user)
    return output.pcs_text(results, args.ipmi_user, secrets_dir)


def _progress(done, total):
    width = 30
    filled = width * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} probes", end="", file=sys.stderr, flush=True)


def run(args):
    from infrapower.errors import InfrapowerError
    from infrapower.scan import ScanError
    from infrapower.scan.run import scan

    try:
        plan = make_plan(args)
        outputs = _outputs(args)
    except ScanError as error:
        print(f"infrapower scan: {error}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    show = not args.quiet and sys.stderr.isatty()
    try:
        results = scan(plan, progress=_progress if show else None)
    except InfrapowerError as error:  # the tables missing, say
        print(f"infrapower scan: {error}", file=sys.stderr)
        return 1
    if show:
        print(file=sys.stderr)
    for fmt, path in outputs:
        text = render(results, fmt, args)
        if path == "-":
            sys.stdout.write(text)
            continue
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
        except OSError as error:
            print(f"infrapower scan: cannot write {path}: {error.strerror or error}", file=sys.stderr)
            return 1
    if not args.quiet:
        counts = {kind: sum(1 for r in results if r["kind"] == kind and "error" not in r) for kind in plan.buses}
        found = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        scanned = " and ".join(([f"{len(plan.hosts)} host(s)"] if plan.hosts else []) +
                               (["mDNS"] if "mdns" in plan.buses else []))
        print(f"scanned {scanned} in {time.monotonic() - started:.1f} s: {found}", file=sys.stderr)
    return 0
