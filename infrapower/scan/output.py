"""What a scan found, written as a table, JSON, ups.conf sections, a
servers file skeleton or pcs commands.  Pure functions of the results
(dicts from infrapower.scan.run); no passphrase or password ever reaches
them, so none can be written: where a device needs one, the output names
a file to create (`*_script` options, ipmi-psu's password_file) or leaves
a commented placeholder."""

import re

DEFAULT_SECRETS_DIR = "/etc/fence-agents-infrapower/keys"  # infrapower chain --plan's default
IPMI_PSU_DRIVER = "/lib/nut/ipmi-psu"
KINDS = {"snmp": "SNMP", "nut": "upsd", "ipmi": "BMC", "mdns": "mDNS"}
# snmp-ups (NUT 2.8.0) spells the v3 protocols without dashes.
_V3_PROTOCOL = {"SHA-224": "SHA224", "SHA-256": "SHA256", "SHA-384": "SHA384", "SHA-512": "SHA512",
                "AES-192": "AES192", "AES-256": "AES256"}
_HOST_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*")


def section_name(*parts):
    """A NUT device / section name from parts: letters, digits, - and _."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(str(p) for p in parts if p not in (None, ""))).strip("-")


def _where(result, default_port):
    """host, or host:port when the port is not the standard one."""
    host = f"[{result['host']}]" if ":" in result["host"] else result["host"]
    return host if result["port"] == default_port else f"{host}:{result['port']}"


def _quoted(value):
    """A ups.conf value as NUT reads it back (the pack's one quoter: `\\`,
    `"` and `#` escaped).  What a device says about itself may hold line
    breaks or NULs, which would end the line early: they become blanks."""
    from infrapower.nut.words import quote

    text = "".join(" " if char in "\r\n\0" else char for char in str(value))
    return quote(text, config=True, always=True)


def pdus(results):
    return [r for r in results if r["kind"] == "snmp" and r.get("mapping") and "error" not in r]


def upsds(results):
    """upsd servers found on the range or published with mDNS, each once."""
    found, seen = [], set()
    for r in results:
        if r["kind"] in ("nut", "mdns") and "devices" in r and (r["host"], r["port"]) not in seen:
            seen.add((r["host"], r["port"]))
            found.append(r)
    return found


def bmcs(results):
    return [r for r in results if r["kind"] == "ipmi" and r.get("asf")]


def _device_label(result):
    words = [result.get("mfr"), result.get("model")]
    return " ".join(w for w in words if w) or result.get("mapping") or ""


# -- the table ----------------------------------------------------------------


def _snmp_lines(r):
    if "error" in r:
        return [f"error: {r['error']}"]
    who = f"v3 user {r['sec_name']} ({r['sec_level']})" if r.get("sec_name") else \
        f"v{r['version']} community {r['community']}"
    others = [c for c in r.get("communities", []) if c != r.get("community")]
    if others:
        who += f" (also answers: {', '.join(others)})"
    if not r.get("mapping"):
        return [f"sysObjectID {r.get('sysoid') or '?'}: {r.get('note') or 'no NUT mapping'}", who]
    conf = r.get("conf_mapping")
    mapping = r["mapping"] + ("" if conf == r["mapping"] else f" (NUT 2.8.0: {conf or 'unknown'})")
    lines = [f"{r.get('type') or 'device'} {_device_label(r)}, mapping {mapping}", who]
    outlets = r.get("outlets") or []
    if outlets:
        units = f" on {r['units']} daisy-chained units" if r.get("units", 1) > 1 else ""
        locked = [o for o in outlets if r.get("switchable") and o.get("switchable") is False]
        how = ("not switchable" if not r.get("switchable") else
               f"switchable but {len(locked)}" if locked else "switchable")
        lines.append(f"{len(outlets)} outlets{units}, {how}: "
                     + ", ".join(f"{o['id']} {o['name'] or '-'} {o['state']}"
                                 + (" (not switchable)" if o in locked else "") for o in outlets))
    elif r.get("note"):
        lines.append(r["note"])
    return lines + [f"note: {e}" for e in r.get("errors", [])]


def _nut_lines(r):
    if "error" in r:
        return [f"error: {r['error']}"]
    tls = {"verified": "TLS offered, certificate verified", "offered": "TLS offered (certificate not verified here)",
           "no": "no TLS"}.get(r.get("tls"), "TLS unknown")
    lines = [f"upsd, {len(r['devices'])} devices, {tls}"]
    for d in r["devices"]:
        extra = f", {d['outlets']} outlets" if d.get("outlets") else ""
        what = d.get("error") or f"{d.get('type', '?')}{extra}, driver {d.get('driver', '?')}"
        lines.append(f"{d['name']}: {what}" + (f" ({d['desc']})" if d.get("desc") else ""))
    return lines


def _mdns_lines(r):
    published = ", ".join(r.get("services", []))
    head = [f"published as {', '.join(repr(n) for n in r.get('names', []))} ({published})"
            + (f", host {r['server']}" if r.get("server") else "")] if r.get("names") else []
    if "error" in r:
        return head + [f"error: {r['error']}"] if head else [f"error: {r['error']}"]
    return head + _nut_lines(r)


def _ipmi_lines(r):
    if "error" in r:
        return [f"error: {r['error']}"]
    lines = [f"BMC (ASF presence pong{', IPMI' if r.get('ipmi') else ', no IPMI bit'})"]
    if r.get("login_error"):
        lines.append(f"login failed: {r['login_error']}")
    elif "power" in r:
        lines.append(f"power {r['power']}, cipher suite {r.get('cipher')}, {len(r.get('psus', []))} power supplies")
        for p in r.get("psus", []):
            rating = f", {p['rating_watts']} W" if p.get("rating_watts") else ""
            lines.append(f"{p['name']}: {p['maker']} {p['model']}, serial {p['serial'] or '?'}{rating}, {p['state']}")
    return lines


def table(results):
    """One block per thing found: kind and address, then indented lines."""
    if not results:
        return "nothing found"
    writers = {"snmp": _snmp_lines, "nut": _nut_lines, "ipmi": _ipmi_lines, "mdns": _mdns_lines}
    blocks = []
    for r in results:
        lines = writers[r["kind"]](r)
        head = f"{KINDS[r['kind']]:<5} {r['address']:<22} "
        blocks.append("\n".join([head + lines[0]] + [" " * len(head) + line for line in lines[1:]]))
    return "\n".join(blocks)


def to_json(results):
    import json

    return json.dumps(results, indent=1)


# -- ups.conf -------------------------------------------------------------------


def _snmp_section(r):
    lines = [f"[{section_name(r.get('conf_mapping') or r['mapping'], r['host'], r['port'] if r['port'] != 161 else '')}]",
             '\tdriver = "snmp-ups"', f"\tport = {_quoted(_where(r, 161))}"]
    if _device_label(r):
        lines.append(f"\tdesc = {_quoted(_device_label(r))}")
    if r.get("conf_mapping"):
        lines.append(f"\tmibs = {_quoted(r['conf_mapping'])}")
    else:
        lines.append(f'\tmibs = "auto"   # NUT 2.8.0 has no {r["mapping"]} mapping (newer NUT has)')
    if r.get("sec_name"):
        lines += ['\tsnmp_version = "v3"', f"\tsecName = {_quoted(r['sec_name'])}", f"\tsecLevel = {_quoted(r['sec_level'])}"]
        if r["sec_level"] != "noAuthNoPriv":
            lines += [f"\tauthProtocol = {_quoted(_V3_PROTOCOL.get(r['auth_protocol'], r['auth_protocol']))}",
                      '\t# authPassword = "..."   # fill in: a scan never writes a passphrase']
        if r["sec_level"] == "authPriv":
            lines += [f"\tprivProtocol = {_quoted(_V3_PROTOCOL.get(r['priv_protocol'], r['priv_protocol']))}",
                      '\t# privPassword = "..."']
    else:
        if r["version"] != "1":
            lines.append(f'\tsnmp_version = "v{r["version"]}"')
        lines.append(f"\tcommunity = {_quoted(r['community'])}")
    return lines


def ups_conf(results, ipmi_user=None, driver_installed=None):
    """Sections NUT 2.8.0's drivers start as they are: snmp-ups for every
    SNMP device with a mapping, dummy-ups repeaters for remote upsd
    devices, ipmi-psu per power supply (when that driver is installed)."""
    import os

    installed = os.path.exists(IPMI_PSU_DRIVER) if driver_installed is None else driver_installed
    out = ["# written by `infrapower scan`: review the names before use"]
    if upsds(results):
        out.append("# remote upsd devices: nut-scanner writes driver = \"nutclient\", which NUT 2.8.0 does not ship; "
                   "dummy-ups repeats them")
    for r in pdus(results):
        out += [""] + _snmp_section(r)
    for r in upsds(results):
        for d in r["devices"]:
            out += ["", f"[{section_name(d['name'], r['host'], r['port'] if r['port'] != 3493 else '')}]",
                    '\tdriver = "dummy-ups"', f"\tport = {_quoted(d['name'] + '@' + _where(r, 3493))}"]
            if d.get("desc"):
                out.append(f"\tdesc = {_quoted(d['desc'])}")
    for r in bmcs(results):
        if not r.get("psus"):
            continue
        if not installed:
            out += ["", f"# {r['address']}: {len(r['psus'])} power supplies; install the ipmi-psu driver "
                        "(make install-driver) for their sections"]
            continue
        for number, psu in enumerate(r["psus"], start=1):
            out += ["", f"[{section_name('bmc', r['host'], r['port'] if r['port'] != 623 else '', f'psu{number}')}]",
                    '\tdriver = "ipmi-psu"', f"\tport = {_quoted(_where(r, 623))}",
                    f"\tdesc = {_quoted(psu['name'] + ', ' + psu['maker'] + ' ' + psu['model'])}",
                    f"\tusername = {_quoted(ipmi_user or 'BMC_USER')}",
                    f"\tpassword_file = {_quoted('/etc/nut/' + section_name(r['host'], r['port']) + '.bmc.pw')}"
                    "   # create it (first line: the password), mode 0600",
                    f"\tpsu = {number}", "\t# parent = DEVICE:OUTLET   # a scan cannot see cables"]
    return "\n".join(out) + "\n"


# -- the servers file -----------------------------------------------------------


def servers_file(results, ipmi_user=None):
    """A skeleton for infrapower chain: BMCs as servers with their power
    supplies, SNMP PDUs as `snmp =` sections, parents left commented."""
    out = ["# written by `infrapower scan`: rename the servers to the nodes' names and give each",
           "# power supply its parent (DEVICE:OUTLET): a scan cannot see cables"]
    found = upsds(results)
    for index, r in enumerate(found):
        out.append(f"{'' if index == 0 else '# '}upsd = {r['address']}")
    for r in bmcs(results):
        out += ["", f"[{section_name('server', r['host'], r['port'] if r['port'] != 623 else '')}]",
                f"\tdesc = {_quoted('BMC ' + r['address'] + (', power ' + r['power'] if r.get('power') else ''))}",
                f"\tbmc = {_where(r, 623)}"]
        if ipmi_user is not None:
            out += [f"\tbmc_username = {ipmi_user}", "\t# bmc_password = ...   # a scan never writes a password"]
        psus = r.get("psus") or []
        for number, psu in enumerate(psus, start=1):
            out.append(f"\t# psu.psu{number} = DEVICE:OUTLET   # {psu['name']}: {psu['maker']} {psu['model']}, "
                       f"serial {psu['serial'] or '?'}")
        if not psus:
            out.append("\t# psu.psu1 = DEVICE:OUTLET")
    for r in pdus(results):
        if not r.get("outlets"):
            continue
        out += ["", f"[{section_name(r['mapping'], r['host'], r['port'] if r['port'] != 161 else '')}]",
                f"\tsnmp = {_where(r, 161)}", f"\tmib = {r['mapping']}"]
        if r.get("sec_name"):
            out += ["\tsnmp_version = v3", f"\tsecName = {r['sec_name']}", f"\tsecLevel = {r['sec_level']}"]
            if r["sec_level"] != "noAuthNoPriv":
                out += [f"\tauthProtocol = {r['auth_protocol']}", "\tpassword_script = PASSWORD_COMMAND   # prints the key"]
            if r["sec_level"] == "authPriv":
                out += [f"\tprivProtocol = {r['priv_protocol']}", "\tsnmp_priv_passwd_script = PRIV_PASSWORD_COMMAND"]
        else:
            out += [f"\tsnmp_version = v{r['version']}", f"\tcommunity = {r['community']}"]
        out.append("\t# parent = UPS_OR_OUTLET")
    return "\n".join(out) + "\n"


# -- pcs commands -----------------------------------------------------------------


def _script(secrets_dir, device, option):
    import shlex

    return f"cat {shlex.quote(f'{secrets_dir}/{device}.{option}')}"


def _host_map(outlets):
    """pcmk_host_map from outlets named like hosts (`:` of a daisy
    chain's unit:outlet escaped), else a placeholder."""
    pairs = [f"{o['name']}:{o['id'].replace(':', chr(92) + ':')}" for o in outlets
             if _HOST_NAME.fullmatch(o.get("name") or "") and not o["name"].lower().startswith("outlet")
             and o.get("switchable") is not False]
    return ";".join(pairs) or "NODE:OUTLET"


def pcs_commands(results, ipmi_user=None, secrets_dir=DEFAULT_SECRETS_DIR):
    """(lines, key files): `pcs stonith create` per switchable SNMP PDU
    (fence_snmp_pdu), per upsd serving outlets (fence_nut) and
    per BMC (fence_ipmi_psu); keys only as `*_script=cat FILE`."""
    import shlex

    lines, files = [], []

    def create(name, agent, options):
        words = ["pcs", "stonith", "create", name, agent] + [f"{k}={v}" for k, v in options.items()]
        lines.append(" ".join(shlex.quote(w) for w in words))

    for r in pdus(results):
        if not r.get("outlets") or not r.get("switchable"):
            continue
        name = section_name("fence", r["mapping"], r["host"], r["port"])
        options = {"ip": r["host"], "ipport": r["port"], "mib": r["mapping"]}
        if r.get("sec_name"):
            options.update(snmp_version="3", username=r["sec_name"], snmp_sec_level=r["sec_level"])
            if r["sec_level"] != "noAuthNoPriv":
                options.update(snmp_auth_prot=r["auth_protocol"], password_script=_script(secrets_dir, name, "password"))
                files.append(f"{secrets_dir}/{name}.password")
            if r["sec_level"] == "authPriv":
                options.update(snmp_priv_prot=r["priv_protocol"],
                               snmp_priv_passwd_script=_script(secrets_dir, name, "snmp_priv_passwd"))
                files.append(f"{secrets_dir}/{name}.snmp_priv_passwd")
        else:
            options.update(snmp_version=r["version"], community=r["community"])
        options["pcmk_host_map"] = _host_map(r["outlets"])
        create(name, "fence_snmp_pdu", options)
    for r in upsds(results):
        # PSU devices (ipmi-psu) switch a chassis, not a feed: not a fence device's plugs here
        switchable = [d["name"] for d in r["devices"] if d.get("outlets")]
        if not switchable:
            continue
        name = section_name("fence", "nut", r["host"], r["port"])
        options = {"ip": r["host"], "ipport": r["port"], "username": "UPSD_USER",
                   "password_script": _script(secrets_dir, name, "password")}
        if r.get("tls") == "verified":
            options["ssl"] = "1"
        options["pcmk_host_map"] = f"NODE:{switchable[0]}\\:OUTLET"
        files.append(f"{secrets_dir}/{name}.password")
        create(name, "fence_nut", options)
    for r in bmcs(results):
        name = section_name("fence", "bmc", r["host"], r["port"])
        options = {"ip": r["host"], "ipport": r["port"], "username": ipmi_user or "BMC_USER",
                   "password_script": _script(secrets_dir, name, "password")}
        if r.get("cipher"):
            options["cipher"] = r["cipher"]
        if len(r.get("psus") or []) >= 2:
            options["min_psus"] = len(r["psus"])
        options["pcmk_host_list"] = "NODE"
        files.append(f"{secrets_dir}/{name}.password")
        create(name, "fence_ipmi_psu", options)
    return lines, files


def pcs_text(results, ipmi_user=None, secrets_dir=DEFAULT_SECRETS_DIR):
    lines, files = pcs_commands(results, ipmi_user, secrets_dir)
    head = ["# written by `infrapower scan`: replace NODE, OUTLET, UPSD_USER, BMC_USER; devices of one node's",
            "# feeds go into one `pcs stonith level add`"]
    if files:
        head.append("# key files to create on every node (mode 0600, the key on the first line): " + " ".join(files))
    return "\n".join(head + lines) + "\n"
