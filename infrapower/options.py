"""fencing.py's options (`{"--ip": ..., ...}`) as the protocol packages'
typed settings: the one place that knows the option names, so sessions
and the PowerChain never see an option dict.  Every check here runs
before any delay or network I/O and fails as one FenceError line."""

import math

from infrapower.errors import FenceError
from infrapower.ports import IPMI_PORT, NUT_PORT, SNMP_PORT

# Each network exchange is bounded by shell_timeout (login_timeout for a
# login): fencing.py's defaults, 3 and 5 s.  Under pacemaker-fenced the
# library sets them (and power_timeout) to 0 = no limit, as pacemaker
# enforces its own; a single exchange still gets this bound.
DEFAULT_IO_TIMEOUT = 5.0


def flag(options, name):
    """fencing.py keeps a boolean given as 0/no/off present: test its value."""
    return str(options.get(name, "0")).lower() not in ("0", "no", "off", "false", "")


def timeout_option(options, name, default):
    """A timeout option in seconds; 0 or absent means `default` (forever is
    only for the verification loop, where pacemaker's timeout rules)."""
    try:
        value = float(options.get(name, 0) or 0)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise FenceError(f"{_option_name(name)} must be a number of seconds, not {options.get(name)!r}")
    return value if value > 0 else default


def _option_name(name):
    """"--power-timeout" as an admin writes it: power_timeout."""
    return name.lstrip("-").replace("-", "_")


def port_option(options, default):
    text = options.get("--ipport") or str(default)
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise FenceError(f"ipport must be a port number (1-65535), not {text!r}")
    return int(text)


def host_option(options):
    """`ip`, refused now when no resolver could look it up (`a..b`, an
    over-long name): before the delay, and for validate-all too."""
    import socket

    from infrapower.resolve import check_host_name

    host = options["--ip"]
    try:
        check_host_name(host)
    except socket.gaierror as error:
        raise FenceError(f"ip: {error.strerror}") from None
    return host


def io_timeout(options):
    return timeout_option(options, "--shell-timeout", DEFAULT_IO_TIMEOUT)


# -- NUT ---------------------------------------------------------------------------


def nut_settings(options):
    from infrapower.nut.client import NutSettings

    return NutSettings(
        host=host_option(options),
        port=port_option(options, NUT_PORT),
        timeout=io_timeout(options),
        # Any of these asks for TLS, and then TLS is required (NutClient.connect).
        tls=flag(options, "--ssl") or flag(options, "--ssl-required") or "--ssl-ca" in options,
        ca=options.get("--ssl-ca") or None,
        username=options.get("--username", ""),
        password=options.get("--password", ""),
        ups=options.get("--ups") or None,
        verbose="--verbose" in options,
    )


# -- IPMI --------------------------------------------------------------------------


def ipmi_settings(options):
    from infrapower.ipmi.session import IpmiSettings, check_password

    password = options.get("--password", "")
    check_password(password)  # over 20 bytes: refused now, not as a "wrong password" later
    return IpmiSettings(
        host=host_option(options),
        port=port_option(options, IPMI_PORT),
        username=options.get("--username", ""),
        password=password,
        privilege=options.get("--privlvl", "administrator").lower(),
        cipher_suite=cipher_option(options.get("--cipher")),
        kg=kg_option(options.get("--hexadecimal-kg")),
        # Under pacemaker-fenced these arrive as 0: the BMC still gets a bound.
        login_timeout=timeout_option(options, "--login-timeout", DEFAULT_IO_TIMEOUT),
        command_timeout=io_timeout(options),
    )


def cipher_option(text):
    """None (unset: try 3, then 17) or a supported suite number; 0 is
    refused (no authentication at all)."""
    from infrapower.ipmi.session import check_cipher_suite

    if text in (None, ""):
        return None
    if not text.isascii() or not text.isdigit():
        raise FenceError(f"cipher must be a cipher suite number, not {text!r}")
    return check_cipher_suite(int(text))


def kg_option(text):
    """hexadecimal_kg as bytes (None when unset or all zeros); at most 20
    bytes."""
    from infrapower.ipmi.rmcp import effective_kg

    if not text:
        return None
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise FenceError("hexadecimal_kg must be hexadecimal digits (up to 40)") from None
    if len(key) > 20:
        raise FenceError("hexadecimal_kg is longer than 20 bytes (40 hex digits)")
    # All zeros is how BMCs show "no Kg" (§13.31): the user key is used.
    return effective_kg(key)


def count_option(options, name):
    text = str(options.get(name, "0") or "0")
    if not text.isascii() or not text.isdigit():
        raise FenceError(f"{_option_name(name)} must be a count (0 or more), not {text!r}")
    return int(text)


# -- SNMP --------------------------------------------------------------------------


def snmp_settings(options):
    """fence_apc_snmp's option names, as fence_snmp_pdu takes them."""
    from infrapower.snmp.session import SnmpSettings
    from infrapower.snmp.usm import UsmUser

    version = str(options.get("--snmp-version") or "1").lower()  # fencing.py upper-cases "2c"
    if version not in ("1", "2c", "3"):
        raise FenceError(f"snmp_version must be 1, 2c or 3, not {version!r}")
    import socket  # only the SNMP agent needs it here

    family = socket.AF_INET if flag(options, "--inet4-only") else socket.AF_INET6 if flag(options, "--inet6-only") else socket.AF_UNSPEC
    usm = None
    if version == "3":
        usm = UsmUser.checked(options.get("--username"), options.get("--snmp-sec-level"), options.get("--snmp-auth-prot"),
                              options.get("--password"), options.get("--snmp-priv-prot"), options.get("--snmp-priv-passwd"))
    return SnmpSettings(
        host=host_option(options),
        port=port_option(options, SNMP_PORT),
        version=version,
        community=options.get("--community", "private"),
        usm=usm,
        timeout=io_timeout(options),
        family=family,
    )
