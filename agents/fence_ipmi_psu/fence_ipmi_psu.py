#!/usr/bin/python3 -tt
"""fence_ipmi_psu: IPMI power fencing that knows the server's power supplies.

Drop-in for fence_ipmilan's options (ip, ipport, username, password,
privlvl, cipher, hexadecimal_kg, method, lanplus), but RMCP+ is spoken in
process (no ipmitool, so no password in argv) and every command is
verified by polling the chassis state, with no fixed sleeps.  list,
list-status and monitor (min_psus) read the PSUs' FRU data and sensors.
"""

FENCE_LIBDIR = "/usr/share/fence"

# The same names, letters and defaults as fence_ipmilan's, so switching
# agents is renaming; help texts say what they mean here.
OPTIONS = {
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


def adjust(all_opt):
    from infrapower.ports import IPMI_PORT

    all_opt["ipport"]["default"] = str(IPMI_PORT)
    # -C is the cipher, as in fence_ipmilan: the list separator is long-only.
    all_opt["separator"]["getopt"] = ":"
    all_opt["separator"]["help"] = "--separator=[char]             Separator for CSV created by 'list' operation"


def settings(options):
    from infrapower.options import count_option, ipmi_settings

    return ipmi_settings(options), count_option(options, "--min-psus")


def open_device(settings, options):
    from infrapower.ipmi.chassis import open_chassis

    session_settings, min_psus = settings
    return open_chassis(session_settings, min_psus)


if __name__ == "__main__":
    from infrapower.agent import Agent, main

    main(Agent(
        device_opt=["ipaddr", "login", "no_login", "no_password", "passwd", "diag", "lanplus", "cipher", "privlvl",
                    "method", "hexadecimal_kg", "min_psus", "separator"],
        docs=DOCS, options=OPTIONS, adjust=adjust, settings=settings, open_device=open_device,
    ), FENCE_LIBDIR)
