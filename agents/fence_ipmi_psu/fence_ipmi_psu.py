#!/usr/bin/python3 -tt
"""fence_ipmi_psu: IPMI power fencing that knows the server's power supplies.

Drop-in for fence_ipmilan's options (ip, ipport, username, password,
privlvl, cipher, hexadecimal_kg, method, lanplus), but RMCP+ is spoken in
process (no ipmitool, so no password in argv) and every command is
verified by polling the chassis state, with no fixed sleeps.  list,
list-status and monitor (min_psus) read the PSUs' FRU data and sensors.
"""

import atexit

FENCE_LIBDIR = "/usr/share/fence"

from infrapower.fence import DEFAULT_IO_TIMEOUT, EXIT_OK, load_fencing, main_guard, run_action, timeout_option

# fencing.py's HTTP helpers (pycurl) serve no IPMI agent.
fencing = load_fencing(FENCE_LIBDIR)
from fencing import all_opt, atexit_handler, check_input, process_input, run_delay, show_docs  # noqa: E402

# The same names, letters and defaults as fence_ipmilan's, so switching
# agents is renaming; help texts say what they mean here.
OWN_OPTIONS = {
    "lanplus": {
        "getopt": "P",
        "longopt": "lanplus",
        "help": "-P, --lanplus                  Accepted for fence_ipmilan compatibility: IPMI 2.0 (RMCP+) is always used",
        "required": "0",
        "default": "1",
        "shortdesc": "Use IPMI 2.0 (RMCP+): always on, accepted for compatibility",
        "order": 1,
    },
    "cipher": {
        "getopt": "C:",
        "longopt": "cipher",
        "help": "-C, --cipher=[suite]           RMCP+ cipher suite: 1, 2, 3 or 17 (default: 3, then 17); 0 is refused",
        "required": "0",
        "shortdesc": "RMCP+ cipher suite (as ipmitool -C); 0 is refused",
        "order": 1,
    },
    "privlvl": {
        "getopt": "L:",
        "longopt": "privlvl",
        "help": "-L, --privlvl=[level]          Privilege level on the BMC (callback|user|operator|administrator)",
        "required": "0",
        "shortdesc": "Privilege level on the BMC (power control needs operator)",
        "default": "administrator",
        "choices": ["callback", "user", "operator", "administrator"],
        "order": 1,
    },
    "hexadecimal_kg": {
        "getopt": ":",
        "longopt": "hexadecimal-kg",
        "help": "--hexadecimal-kg=[key]         BMC key (Kg) for IPMI 2.0 authentication, in hexadecimal",
        "required": "0",
        "shortdesc": "Hexadecimal-encoded Kg key for IPMIv2 authentication",
        "order": 1,
    },
    "min_psus": {
        "getopt": ":",
        "longopt": "min-psus",
        "help": "--min-psus=[count]             monitor fails when fewer power supplies are healthy (0: off)",
        "required": "0",
        "default": "0",
        "shortdesc": "Fewest healthy power supplies for monitor to succeed (0 = no check)",
        "order": 1,
    },
}

DOCS = {
    "shortdesc": "Fence agent for IPMI that knows the server's power supplies",
    "longdesc": "fence_ipmi_psu powers a server off, on or through a reboot via its BMC over IPMI 2.0 (RMCP+), "
    "spoken in process: no ipmitool, no password on any command line. Every command is verified by polling "
    "the chassis power state within power_timeout, with no fixed sleeps; a reboot of a node that is already "
    "off powers it on and succeeds. Its options are fence_ipmilan's, so switching agents is renaming. "
    "list and list-status show the power supplies (FRU id, name, maker, model, serial, part, rating and "
    "state: ok, failed, input lost, absent, present); with min_psus, monitor fails when fewer power "
    "supplies are healthy, so a node left on one good supply shows as degraded, and status also prints each "
    "power supply's state. diag sends a diagnostic "
    "interrupt (NMI) where the BMC supports it.",
    "vendorurl": "https://www.intel.com/content/www/us/en/products/docs/servers/ipmi/ipmi-second-gen-interface-spec-v2-rev1-1.html",
}


def session_settings(options):
    """Options as open_session() arguments; FenceError for invalid ones
    (checked before any delay or network I/O)."""
    from infrapower.fence import FenceError
    from infrapower.ipmi import parse_cipher, parse_kg, parse_password

    try:
        port = int(options["--ipport"])
    except ValueError:
        raise FenceError(f"ipport must be a UDP port number, not {options['--ipport']!r}") from None
    return {
        "host": options["--ip"],
        "port": port,
        "username": options.get("--username", ""),
        "password": parse_password(options.get("--password", "")),
        "privilege": options.get("--privlvl", "administrator").lower(),
        "cipher_suite": parse_cipher(options.get("--cipher")),
        "kg": parse_kg(options.get("--hexadecimal-kg")),
        # Under pacemaker-fenced these arrive as 0: the BMC still gets a bound.
        "login_timeout": timeout_option(options, "--login-timeout", DEFAULT_IO_TIMEOUT),
        "command_timeout": timeout_option(options, "--shell-timeout", DEFAULT_IO_TIMEOUT),
    }


def min_psus(options):
    from infrapower.fence import FenceError

    try:
        count = int(options.get("--min-psus", "0") or 0)
    except ValueError:
        count = -1
    if count < 0:
        raise FenceError(f"min_psus must be a count of power supplies, not {options.get('--min-psus')!r}")
    return count


def print_power_supplies(supplies, separator, with_state):
    for psu in supplies:
        fields = [str(psu.fru_id if psu.fru_id is not None else psu.index), psu.name, psu.maker, psu.model,
                  psu.serial, psu.part, f"{psu.rating_watts} W" if psu.rating_watts else ""]
        if with_state:
            fields.append(psu.state)
        print(separator.join(field.replace(separator, " ") for field in fields))


def fence(options):
    settings = session_settings(options)
    required_psus = min_psus(options)
    action = options["--action"]
    if action == "validate-all":
        return EXIT_OK
    run_delay(options)

    from infrapower import ipmi

    with ipmi.open_session(**settings) as session:
        if action in ("list", "list-status"):
            from infrapower.ipmi_psu import read_power_supplies

            supplies = read_power_supplies(session)
            print_power_supplies(supplies, options.get("--separator", ","), action == "list-status")
            return EXIT_OK
        if action == "diag":
            ipmi.chassis_control(session, "diag")
            print("Success: Diagnostic interrupt sent")
            return EXIT_OK
        chassis = ipmi.ChassisPower(session, required_psus)
        code = run_action(options, chassis, [chassis.PLUG])
        if action == "status" and required_psus:
            # PSU-aware status is opted into with min_psus: it costs a
            # few more BMC exchanges than the chassis state alone.
            from infrapower.ipmi_psu import read_power_supplies

            for psu in read_power_supplies(session):
                print(f"{psu.name}: {psu.state}")
        return code


def main():
    device_opt = ["ipaddr", "login", "no_login", "no_password", "passwd", "diag", "lanplus", "cipher", "privlvl",
                  "method", "hexadecimal_kg", "min_psus", "separator"]
    atexit.register(atexit_handler)
    all_opt.update(OWN_OPTIONS)
    all_opt["ipport"]["default"] = "623"
    # -C is the cipher, as in fence_ipmilan: the list separator is long-only.
    all_opt["separator"]["getopt"] = ":"
    all_opt["separator"]["help"] = "--separator=[char]             Separator for CSV created by 'list' operation"
    # Validation of our own options happens in fence(), also for validate-all.
    options = check_input(device_opt, process_input(device_opt), other_conditions=True)
    show_docs(options, DOCS)
    main_guard(lambda: fence(options))


if __name__ == "__main__":
    main()
