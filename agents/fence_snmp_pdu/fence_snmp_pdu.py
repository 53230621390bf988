#!/usr/bin/python3 -tt
"""fence_snmp_pdu: fence through any switched PDU NUT's snmp-ups knows.

Options are fence_apc_snmp's, so migrating is renaming the agent; `mib`
forces a mapping.  The vendor knowledge is the OID tables generated from
NUT's sources (infrapower.tables), the protocol is infrapower.snmp, the
outlet logic infrapower.snmp.pdu; every command is verified by reading the
outlet back (infrapower.fence.run_action).
"""

FENCE_LIBDIR = "/usr/share/fence"


def adjust(all_opt):
    # The client's own tables (stdlib only at import), so metadata and
    # validation never disagree.
    from infrapower.snmp.usm import AUTH_PROTOCOLS, PRIV_KEY_BYTES as PRIV_PROTOCOLS

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


DOCS = {
    "shortdesc": "Fence agent for switched PDUs over SNMP, driven by NUT's snmp-ups tables",
    "longdesc": "fence_snmp_pdu switches the outlets of any PDU that Network UPS Tools' snmp-ups driver "
                "can switch (APC, Eaton, HPE, Raritan, Baytech, Emerson/Avocent, Pulizzi, ...), "
                "using OID tables generated from NUT's sources. The PDU's mapping is detected from its "
                "sysObjectID (set mib to force one). Plugs are outlet numbers, outlet names as the PDU "
                "names them, or unit:outlet on daisy chains; several plugs are switched and verified together. "
                "It supports SNMP v1, v2c and v3 (authNoPriv and authPriv) without spawning processes.",
    "vendorurl": "https://networkupstools.org/stable-hcl.html",
}


def settings(options):
    from infrapower.fence import plugs_from
    from infrapower.options import snmp_settings
    from infrapower.snmp.pdu import check_plug

    # A plug's grammar is checked before any I/O (name resolution included).
    for plug in plugs_from(options):
        check_plug(plug)
    return snmp_settings(options)


def open_device(settings, options):
    from infrapower.snmp.pdu import open_pdu

    return open_pdu(settings, options.get("--mib"))


if __name__ == "__main__":
    from infrapower.agent import Agent, main

    main(Agent(
        device_opt=["ipaddr", "login", "passwd", "no_login", "no_password", "port", "snmp_version", "snmp",
                    "inet4_only", "inet6_only", "mib", "method"],
        docs=DOCS, adjust=adjust, settings=settings, open_device=open_device,
        # fence_apc_snmp's net-snmp programs: SNMP is spoken in process here.
        hidden=("snmpget_path", "snmpset_path", "snmpwalk_path"),
    ), FENCE_LIBDIR)
