#!/usr/bin/python3 -tt
"""fence_snmp_pdu: fence through any switched PDU NUT's snmp-ups knows.

Options are fence_apc_snmp's, so migrating is renaming the agent; `mib`
forces a mapping.  The vendor knowledge is the OID tables generated from
NUT's sources (infrapower.tables), the protocol is infrapower.snmp, the
outlet logic infrapower.pdu; every command is verified by reading the
outlet back (infrapower.fence.run_action).
"""

import sys

FENCE_LIBDIR = "/usr/share/fence"

from infrapower.fence import DEFAULT_IO_TIMEOUT, load_fencing, main_guard, plugs_from, run_action, timeout_option  # noqa: E402

def define_options(all_opt):
    # The client's own tables (stdlib only at import), so metadata and
    # validation never disagree.
    from infrapower.snmp import AUTH_PROTOCOLS, PRIV_KEY_BYTES as PRIV_PROTOCOLS

    AUTH_PROTOCOLS, PRIV_PROTOCOLS = list(AUTH_PROTOCOLS), list(PRIV_PROTOCOLS)
    all_opt["mib"] = {
        "getopt": ":",
        "longopt": "mib",
        "help": "--mib=[name]                   NUT mapping to use instead of detecting it (e.g. apc_pdu, eaton_epdu)",
        "required": "0",
        "shortdesc": "NUT snmp-ups mapping name, when the PDU's sysObjectID is not recognised",
        "order": 2,
    }
    all_opt["snmp_auth_prot"]["choices"] = AUTH_PROTOCOLS
    all_opt["snmp_auth_prot"]["help"] = "-b, --snmp-auth-prot=[prot]    Set authentication protocol (" + "|".join(AUTH_PROTOCOLS) + ")"
    all_opt["snmp_priv_prot"]["choices"] = PRIV_PROTOCOLS
    all_opt["snmp_priv_prot"]["help"] = "-B, --snmp-priv-prot=[prot]    Set privacy protocol (" + "|".join(PRIV_PROTOCOLS) + ")"
    # As fence_apc_snmp, so that an existing configuration keeps working.
    all_opt["snmp_version"]["default"] = "1"
    all_opt["community"]["default"] = "private"


def fence(options):
    from infrapower import pdu, snmp, tables

    # A plug's grammar is checked before any I/O (name resolution included).
    plugs = [pdu.check_plug(plug) for plug in plugs_from(options)]
    document = tables.load()
    session = snmp.session_from_options(options, timeout_option(options, "--shell-timeout", DEFAULT_IO_TIMEOUT))
    try:
        mapping = pdu.identify(session, document, options.get("--mib"))
        outlets = pdu.Pdu(session, document, mapping)
        return run_action(options, outlets, plugs)
    finally:
        session.close()


def main():
    fencing = load_fencing(FENCE_LIBDIR)
    device_opt = ["ipaddr", "login", "passwd", "no_login", "no_password", "port", "snmp_version", "snmp",
                  "inet4_only", "inet6_only", "mib", "method"]
    define_options(fencing.all_opt)
    options = fencing.check_input(device_opt, fencing.process_input(device_opt))
    fencing.show_docs(options, {
        "shortdesc": "Fence agent for switched PDUs over SNMP, driven by NUT's snmp-ups tables",
        "longdesc": "fence_snmp_pdu switches the outlets of any PDU that Network UPS Tools' snmp-ups driver "
                    "can switch (APC, Eaton, HPE, Raritan, Baytech, Emerson/Avocent, Pulizzi, ...), "
                    "using OID tables generated from NUT's sources. The PDU's mapping is detected from its "
                    "sysObjectID (set mib to force one). Plugs are outlet numbers, outlet names as the PDU "
                    "names them, or unit:outlet on daisy chains; several plugs are switched and verified together. "
                    "It supports SNMP v1, v2c and v3 (authNoPriv and authPriv) without spawning processes.",
        "vendorurl": "https://networkupstools.org/stable-hcl.html",
    })
    fencing.run_delay(options)
    main_guard(lambda: fence(options))


if __name__ == "__main__":
    sys.exit(main())
