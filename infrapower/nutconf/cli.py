"""`infrapower config`: NUT's configuration files, read and edited in
place without losing a comment (infrapower.nutconf.syntax).

  get FILE SECTION.KEY | KEY        print a value (one line per repeated key)
  set FILE SECTION.KEY | KEY VALUE...  set it (adds the section or key when missing)
  del FILE SECTION.KEY | KEY | SECTION
  check [--config-dir DIR] [FILE...]  what NUT would refuse or silently ignore
  add-fencer --user NAME --device DEV --outlets 1-8   a least-privilege fencing user
  add-fencer --user NAME --from-plan [--servers FILE]  the same for every outlet of the
                                    PowerChain's fencing plan (read live, as `chain --plan`)

A bare KEY is a global directive (upsmon.conf's POLLFREQ, nut.conf's MODE,
upsd.conf's MAXAGE); SECTION.KEY names a key in a [section] (ups.conf
devices, upsd.users users).  A VALUE `-` is read from standard input, so a
password never needs to be in argv.  Exit 0; 1 when problems were found or
the key is missing; 2 for bad usage or an unreadable file.
"""

import os
import re
import sys
from pathlib import Path

from infrapower.nutconf import kinds
from infrapower.nutconf.fencer import fencer_commands
from infrapower.nutconf.syntax import ConfError, ConfFile

PASSWORD_ENV = "INFRAPOWER_NUT_PASSWORD"
WRITTEN_KEYS = ("password", "instcmds", "actions")  # what add-fencer writes of a user
USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class Usage(Exception):
    """Bad usage or an unreadable file: exit 2."""


def add_parser(subparsers):
    import argparse

    parser = subparsers.add_parser("config", help="NUT's config files: get, set, del, check, add-fencer",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="config_command")

    get = commands.add_parser("get", help="print a value")
    get.add_argument("file")
    get.add_argument("name", help="SECTION.KEY, or KEY for a global directive")
    get.set_defaults(func=run(cmd_get))

    put = commands.add_parser("set", help="set a value in place")
    put.add_argument("file")
    put.add_argument("name", help="SECTION.KEY, or KEY for a global directive")
    put.add_argument("values", nargs="+", metavar="VALUE", help="one word, several for a directive; `-`: stdin")
    put.set_defaults(func=run(cmd_set))

    delete = commands.add_parser("del", help="delete a key (every line of it) or a whole section")
    delete.add_argument("file")
    delete.add_argument("name", help="SECTION.KEY, KEY or SECTION")
    delete.set_defaults(func=run(cmd_del))

    check = commands.add_parser("check", help="what NUT would refuse or silently ignore")
    check.add_argument("--config-dir", help="every NUT file in DIR (default /etc/nut when no FILE)")
    check.add_argument("files", nargs="*", metavar="FILE")
    check.set_defaults(func=run(cmd_check))

    fencer = commands.add_parser("add-fencer", help="a upsd.users user with exactly fence_nut's commands")
    where = fencer.add_mutually_exclusive_group()
    where.add_argument("--config-dir", help="the directory of upsd.users (default /etc/nut)")
    where.add_argument("--users", metavar="FILE", help="the upsd.users file itself")
    fencer.add_argument("--user", "--name", dest="user", default="fencer", help="user name (default fencer)")
    fencer.add_argument("--password-file", help=f"file holding the password (else ${PASSWORD_ENV}, "
                        "else the user's current one, else a prompt)")
    fencer.add_argument("--device", help="the NUT device fence_nut switches (ups.conf section)")
    what = fencer.add_mutually_exclusive_group()
    what.add_argument("--outlets", help="outlet numbers: 1-8,10")
    what.add_argument("--whole-load", action="store_true", help="the device switches as a whole (load.off/on)")
    what.add_argument("--from-plan", action="store_true",
                      help="every outlet the PowerChain's fencing plan cuts through this upsd (reads it live)")
    chain = fencer.add_argument_group("--from-plan: the PowerChain (as `infrapower chain` reads it)")
    chain.add_argument("--ups-conf", help="ups.conf with its parent lines (default: the one in --config-dir)")
    chain.add_argument("--servers", help="the servers file (default: servers.conf in --config-dir, if any)")
    chain.add_argument("--upsd", metavar="HOST[:PORT]", help="the upsd reading that ups.conf (default localhost:3493)")
    chain.add_argument("--timeout", type=float, default=3.0, help="seconds per peer exchange (default: %(default)s)")
    fencer.add_argument("--set", action="store_true",
                        help="also `actions = SET` (devices switched by writing outlet.N.status)")
    fencer.add_argument("--cycle", action="store_true", help="also outlet.N.load.cycle (fence_nut never sends it)")
    fencer.set_defaults(func=run(cmd_add_fencer))
    return parser


def run(command):
    """The command with the exit codes: ConfError is a problem (1),
    Usage and unreadable files are 2."""

    def guarded(args):
        try:
            return command(args)
        except Usage as error:
            print(f"infrapower config: {error}", file=sys.stderr)
            return 2
        except ConfError as error:
            print(error, file=sys.stderr)
            return 2 if error.line == 0 else 1
        except OSError as error:  # a directory this user may not look into (/etc/nut 0750)
            print(f"infrapower config: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
            return 2

    return guarded


def _read(path):
    if not Path(path).is_file():
        raise Usage(f"{path}: no such file")
    return ConfFile.read(path)


def _where(conf, name, for_section=False):
    """(section or None, key or None) that `name` means in this file."""
    if not conf.sections and conf.kind not in ("ups.conf", "upsd.users", None):
        return None, name
    if for_section and name in conf.sections:
        return name, None
    prefixes = [section for section in conf.sections if name.startswith(f"{section}.")]
    if prefixes:
        section = max(prefixes, key=len)
        return section, name[len(section) + 1:]
    if "." in name:
        section, key = name.split(".", 1)
        return section, key
    return None, name


def cmd_get(args):
    conf = _read(args.file)
    section_name, key = _where(conf, args.name)
    section = conf.globals if section_name is None else conf.sections.get(section_name)
    found = section.all(key) if section else []
    for entry in found:
        print(" ".join(entry.args) if entry.args else ("" if entry.assign else "yes"))
    return 0 if found else 1


def _value(word, name):
    """A VALUE word; `-` reads it from standard input (a pipe, or a
    terminal prompt that does not echo: it is usually a password)."""
    if word != "-":
        return word
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{name}: ")
    return sys.stdin.readline().rstrip("\r\n")


def cmd_set(args):
    conf = _read(args.file)
    section_name, key = _where(conf, args.name)
    values = [_value(word, args.name) for word in args.values]
    conf.set(section_name, key, values[0] if len(values) == 1 else values)
    conf.write()
    return 0


def cmd_del(args):
    conf = _read(args.file)
    section_name, key = _where(conf, args.name, for_section=True)
    if not conf.delete(section_name, key):
        print(f"{args.file}: no {args.name}", file=sys.stderr)
        return 1
    conf.write()
    return 0


def cmd_check(args):
    problems = []
    if args.config_dir or not args.files:
        directory = Path(args.config_dir or "/etc/nut")
        if not directory.is_dir():
            raise Usage(f"{directory}: not a directory")
        problems += kinds.check_dir(directory)
    for path in args.files:
        try:
            conf = _read(path)
        except ConfError as error:
            problems.append(error)
            continue
        problems += kinds.problems(conf, Path(path).stat().st_mode)
    for problem in problems:
        print(problem)
    if any(problem.line == 0 and "cannot read" in problem.problem for problem in problems):
        return 2
    return 1 if problems else 0


def outlet_numbers(text):
    """`1-8,10` → [1, ..., 8, 10]; anything else is bad usage."""
    numbers = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise Usage(f"--outlets {text}: outlet numbers and ranges, such as 1-8,10")
        first, last = int(low), int(high) if dash else int(low)
        if first < 1 or last < first or last - first > 1023:
            raise Usage(f"--outlets {text}: {part} is not a range of outlet numbers from 1")
        numbers += range(first, last + 1)
    return sorted(set(numbers))


def _password(args, current):
    if args.password_file:
        try:
            password = Path(args.password_file).read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise Usage(f"{args.password_file}: {getattr(error, 'strerror', None) or error}") from None
        if not password:
            # upsd ignores a user without a password: fencing would fail later.
            raise Usage(f"--password-file {args.password_file} is empty")
        return password
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if current:
        return None  # keep it
    if not sys.stdin.isatty():
        raise Usage(f"a new user needs a password: --password-file, ${PASSWORD_ENV} or a terminal to ask on")
    import getpass

    password = getpass.getpass(f"upsd password for {args.user}: ")
    if not password:
        raise Usage("no password given: upsd ignores a user without one")
    return password


def _plan_commands(args, directory):
    """(instcmds, exit code) for --from-plan; the plan's notes on stderr."""
    from infrapower.chain.model import ChainError, Upsd
    from infrapower.nutconf import fencer

    try:
        upsd = Upsd.parse(args.upsd) if args.upsd else None
    except ValueError as error:
        raise Usage(f"--upsd {args.upsd}: {error}") from None
    try:
        chain, plans, problems = fencer.read_plan(str(directory), args.ups_conf, args.servers, upsd, args.timeout)
    except ChainError as error:
        raise Usage(str(error)) from None
    for line in problems:
        print(line, file=sys.stderr)
    if problems and not plans:
        return None, 1
    grant = fencer.plan_grant(chain, plans, args.cycle)
    for reason in grant.refused:
        print(f"not fenced by the plan: {reason}", file=sys.stderr)
    for plug in grant.elsewhere:
        print(f"cut through another upsd, grant it there: {plug}", file=sys.stderr)
    if not grant.commands:
        print(f"the plan cuts nothing through upsd {chain.upsd}: no user written", file=sys.stderr)
        return None, 1
    return grant.commands, 1 if problems or grant.refused else 0


def _one_spelling(conf, user):
    """upsd reads upsd.users keys in any case (`Password` is `password`)
    and keeps a user's first password line: before add-fencer writes the
    user, other spellings of what it writes go, and so do all password
    lines but one when there are several, so the lines written are the ones
    upsd uses."""
    section = conf.sections.get(user)
    if section is None:
        return
    for key in {entry.key for entry in section.entries if entry.key.lower() in WRITTEN_KEYS} - set(WRITTEN_KEYS):
        conf.delete(user, key)
    if len(kinds.user_entries(conf.sections[user], "password")) > 1:
        conf.delete(user, "password")


def cmd_add_fencer(args):
    if not USER_NAME.fullmatch(args.user):
        raise Usage(f"--user {args.user!r}: letters, digits and . _ @ - only")
    if args.from_plan == bool(args.device):
        raise Usage("name the --device (with --outlets or --whole-load), or use --from-plan")
    if args.device and not (args.outlets or args.whole_load):
        raise Usage(f"--device {args.device}: say which --outlets fence_nut switches (or --whole-load)")
    directory = Path(args.config_dir or "/etc/nut")
    path = Path(args.users) if args.users else directory / "upsd.users"
    if path.exists():
        conf = _read(path)
    elif path.parent.is_dir():
        conf = ConfFile("", path, "upsd.users")
    else:
        raise Usage(f"{path.parent}: not a directory")
    status = 0
    if args.from_plan:
        commands, status = _plan_commands(args, path.parent)
        if commands is None:
            return status
    else:
        ups_conf = path.parent / "ups.conf"
        if ups_conf.is_file() and args.device not in ConfFile.read(ups_conf).sections:
            print(f"{ups_conf}:0: no device [{args.device}] here (fine if it is another host's upsd)", file=sys.stderr)
        outlets = outlet_numbers(args.outlets) if args.outlets else None
        commands = fencer_commands(outlets or (), args.cycle)
    current = kinds.users(conf).get(args.user)
    password = _password(args, current.password if current else None)
    if password is None:
        password = current.password  # kept, and written once
    _one_spelling(conf, args.user)
    conf.set(args.user, "password", password)  # a line break is refused here: nothing written yet
    conf.set_all(args.user, "instcmds", commands)
    actions = ["SET"] if args.set else []
    conf.set_all(args.user, "actions", actions)
    conf.write()
    # Read back as upsd reads it (first password, keys in any case): the
    # file must now grant exactly this, or nothing is reported done.
    written = kinds.users(ConfFile.read(path)).get(args.user)
    if written is None or (written.password, written.instcmds, written.actions) != (password, commands, actions):
        print(f"{path}: [{args.user}] does not read back as written: check the file by hand", file=sys.stderr)
        return 1
    shown = ", ".join(commands[:4]) + (f", ... ({len(commands)} in all)" if len(commands) > 4 else "")
    print(f"{path}: [{args.user}] instcmds {shown}" + ("; actions = SET" if args.set else "; no actions"))
    print("upsd reads it on reload: upsd -c reload (or systemctl reload nut-server)")
    return status
