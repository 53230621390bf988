"""What NUT's words mean, file by file: typed views over a ConfFile, and
the checks of what NUT would refuse or silently ignore.  Every problem is a
ConfError, one line `FILE:LINE: what is wrong`."""

import stat
from dataclasses import dataclass, field
from pathlib import Path

from infrapower.nutconf.syntax import SECRET_KINDS, ConfError, ConfFile, comment_mark_in_quotes

# upsd.users: what `actions` may grant (upsd 2.8.0, user.c).
USER_ACTIONS = ("SET", "FSD")
UPSMON_ROLES = ("primary", "secondary", "master", "slave")

# Keys NUT reads, per file (upsd 2.8.0 to 2.8.5, upsmon, upssched): anything
# else is a misspelling NUT ignores or refuses.
UPS_CONF_GLOBALS = frozenset(
    "chroot driverpath maxstartdelay maxretry retrydelay pollinterval user group synchronous "
    "debug_min LIBUSB_DEBUG".split()
)
UPSD_CONF_KEYS = frozenset(
    "LISTEN MAXAGE STATEPATH DATAPATH MAXCONN CERTFILE CERTPATH CERTIDENT CERTREQUEST DISABLE_WEAK_SSL "
    "TRACKINGDELAY ALLOW_NO_DEVICE ALLOW_NOT_ALL_LISTENERS DEBUG_MIN".split()
)
UPSMON_CONF_KEYS = frozenset(
    "MONITOR MINSUPPLIES SHUTDOWNCMD NOTIFYCMD POLLFREQ POLLFREQALERT HOSTSYNC DEADTIME POWERDOWNFLAG "
    "NOTIFYMSG NOTIFYFLAG RBWARNTIME NOCOMMWARNTIME FINALDELAY RUN_AS_USER CERTPATH CERTIDENT CERTHOST "
    "CERTVERIFY FORCESSL SHUTDOWNEXIT OBLBDURATION OFFDURATION OVERDURATION DEBUG_MIN ALARMCRITICAL "
    "POLLFAIL_LOG_THROTTLE_MAX".split()
)
UPSSCHED_CONF_KEYS = frozenset("CMDSCRIPT PIPEFN LOCKFN AT".split())
NUT_CONF_KEYS = frozenset("MODE ALLOW_NO_DEVICE UPSD_OPTIONS UPSMON_OPTIONS POWEROFF_WAIT POWEROFF_QUIET".split())
USER_KEYS = frozenset("password actions instcmds upsmon".split())


@dataclass
class Device:
    """A ups.conf section."""

    name: str
    driver: object
    port: object
    desc: object
    parent: object  # the pack's PowerChain key: what feeds this device
    line: int


@dataclass
class User:
    """A upsd.users section."""

    name: str
    password: object = field(repr=False)
    actions: list  # upper case, as upsd compares them
    instcmds: list
    upsmon: object  # primary / secondary (master / slave), or None
    line: int = 0


@dataclass
class Listen:
    address: str
    port: object  # str, or None for upsd's default
    line: int


@dataclass
class Monitor:
    """An upsmon.conf MONITOR line (system powervalue user password role)."""

    system: str
    power_value: str
    user: str
    password: str = field(repr=False)
    role: str
    line: int


def devices(conf):
    return {
        name: Device(name, s.get("driver"), s.get("port"), s.get("desc"), s.get("parent"), s.line)
        for name, s in conf.sections.items()
    }


def user_entries(section, key):
    """A upsd.users user's `key` lines: upsd 2.8.0 reads the keys in any
    case (strcasecmp: `Password` is `password`)."""
    return [entry for entry in section.entries if entry.key.lower() == key]


def _words(section, key):
    return [word for entry in user_entries(section, key) for word in entry.args]


def users(conf):
    """{name: User}.  The password is the first one: upsd keeps it and
    ignores any later password line ("Ignoring duplicate password")."""
    found = {}
    for name, section in conf.sections.items():
        passwords, roles = user_entries(section, "password"), user_entries(section, "upsmon")
        found[name] = User(
            name,
            passwords[0].value if passwords else None,
            [word.upper() for word in _words(section, "actions")],
            _words(section, "instcmds"),
            roles[-1].value if roles else None,
            section.line,
        )
    return found


def listen(conf):
    return [
        Listen(entry.args[0] if entry.args else "", entry.args[1] if len(entry.args) > 1 else None, entry.line)
        for entry in conf.globals.all("LISTEN")
    ]


def monitors(conf):
    """MONITOR lines; a malformed one is a ConfError."""
    found = []
    for entry in conf.globals.all("MONITOR"):
        if len(entry.args) != 5:
            raise ConfError(conf.path, entry.line, "MONITOR wants: system powervalue username password role")
        found.append(Monitor(*entry.args, entry.line))
    return found


# -- checks --------------------------------------------------------------------


def _unknown(conf, section, known, what):
    return [
        ConfError(conf.path, entry.line, f"unknown {what} `{entry.key}`: NUT ignores or refuses it")
        for entry in section.entries
        if entry.key not in known
    ]


def problems(conf, mode=None):
    """What NUT would refuse or silently ignore in one file, as ConfErrors
    (none raised).  `mode`: the file's st_mode, for the secrets check."""
    found = [
        ConfError(conf.path, number, "`#` inside quotes: NUT refuses the whole line (write it as \\#)")
        for number, text in enumerate(conf.lines, start=1)
        if comment_mark_in_quotes(text)
    ]
    kind = conf.kind
    if kind == "ups.conf":
        found += _unknown(conf, conf.globals, UPS_CONF_GLOBALS, "global")
        for device in devices(conf).values():
            for key in ("driver", "port"):
                if not getattr(device, key):
                    found.append(ConfError(conf.path, device.line, f"[{device.name}] has no {key}"))
    elif kind == "upsd.users":
        found += [ConfError(conf.path, e.line, "a line outside any [user] section") for e in conf.globals.entries]
        for name, section in conf.sections.items():
            found += [ConfError(conf.path, entry.line, f"unknown key in [{name}] `{entry.key}`: NUT ignores or "
                                "refuses it") for entry in section.entries if entry.key.lower() not in USER_KEYS]
            user = users(conf)[name]
            if not user.password:
                found.append(ConfError(conf.path, section.line, f"[{name}] has no password: upsd ignores the user"))
            passwords = user_entries(section, "password")
            found += [ConfError(conf.path, entry.line, f"a second password for [{name}]: upsd keeps the first "
                                f"(line {passwords[0].line}) and ignores this one") for entry in passwords[1:]]
            for entry in user_entries(section, "actions"):
                for word in entry.args:
                    if word.upper() not in USER_ACTIONS:
                        found.append(ConfError(conf.path, entry.line, f"unknown action `{word}` (SET, FSD)"))
            for entry in user_entries(section, "instcmds"):
                for word in entry.args:
                    if word.upper() != "ALL" and not all(part for part in word.split(".")):
                        found.append(ConfError(conf.path, entry.line, f"`{word}` is not an instant command name"))
            for role in user_entries(section, "upsmon"):
                if (role.value or "").lower() not in UPSMON_ROLES:
                    found.append(ConfError(conf.path, role.line, f"upsmon role `{role.value}` (primary, secondary)"))
    elif kind == "upsd.conf":
        found += _unknown(conf, conf.globals, UPSD_CONF_KEYS, "directive")
        for item in listen(conf):
            entry = next(e for e in conf.globals.all("LISTEN") if e.line == item.line)
            if not item.address or len(entry.args) > 2:
                found.append(ConfError(conf.path, item.line, "LISTEN wants: address [port]"))
            elif item.port is not None and not (item.port.isdigit() and 0 < int(item.port) < 65536):
                found.append(ConfError(conf.path, item.line, f"LISTEN port `{item.port}` is not a TCP port"))
    elif kind == "upsmon.conf":
        found += _unknown(conf, conf.globals, UPSMON_CONF_KEYS, "directive")
        for entry in conf.globals.all("MONITOR"):
            if len(entry.args) != 5:
                found.append(ConfError(conf.path, entry.line, "MONITOR wants: system powervalue username password role"))
            elif entry.args[4] not in UPSMON_ROLES:
                found.append(ConfError(conf.path, entry.line, f"MONITOR role `{entry.args[4]}` (primary, secondary)"))
    elif kind == "upssched.conf":
        found += _unknown(conf, conf.globals, UPSSCHED_CONF_KEYS, "directive")
    elif kind == "nut.conf":
        found += _unknown(conf, conf.globals, NUT_CONF_KEYS, "setting")
    if kind in ("upsd.conf", "upsmon.conf", "upssched.conf", "nut.conf"):
        found += [ConfError(conf.path, s.line, f"[{s.name}]: this file has no sections") for s in conf.sections.values()]
    if mode is not None and kind in SECRET_KINDS and mode & (stat.S_IROTH | stat.S_IWOTH):
        found.append(ConfError(conf.path, 0, "holds passwords but others may read it: chmod o-rwx"))
    return found


def check_dir(directory):
    """Every known NUT file in a directory, read and checked: ConfErrors."""
    found = []
    for path in sorted(Path(directory).iterdir()):
        if path.name not in ("ups.conf", "upsd.conf", "upsd.users", "upsmon.conf", "nut.conf", "upssched.conf"):
            continue
        try:
            conf = ConfFile.read(path)
        except ConfError as error:
            found.append(error)
            continue
        found += problems(conf, path.stat().st_mode)
    return found
