"""SNMP probes, read-only (GET and walks, never a SET), with
fence_snmp_pdu's own code: its session, its mapping detection
(sysObjectID, then the model OIDs, as snmp-ups' mibs=auto) and its
outlet listing."""

from infrapower.errors import InfrapowerError, SnmpError

# The tables whose mapping names ups.conf gets: what Debian 12's NUT
# (2.8.0) knows; master renamed or added some.
CONF_NUT_VERSION = "2.8.0"
IDENTITY = ("device.type", "device.mfr", "device.model", "device.serial")
# UPS mappings name their maker, model and serial ups.*: the same identity
_UPS_IDENTITY = {"ups.mfr": "device.mfr", "ups.model": "device.model", "ups.serial": "device.serial"}


class Credential:
    """One way to talk to an agent: a community (v1/v2c) or a v3 user
    (a plain class: dataclasses costs the scan's start-up ~10 ms)."""

    def __init__(self, version, community="", usm=None):
        self.version = version  # "1", "2c", "3"
        self.community = community
        self.usm = usm  # infrapower.snmp.usm.UsmUser

    def __repr__(self):  # never the community or the keys
        return f"Credential(v{self.version}{', user ' + self.usm.user if self.usm else ''})"

    @property
    def label(self):
        return f"v3 user {self.usm.user}" if self.usm else f"v{self.version} community"


def _settings(host, port, credential, timeout):
    from infrapower.snmp.session import SnmpSettings

    return SnmpSettings(host, port, credential.version, credential.community or "public", credential.usm, timeout)


def _silent(error):
    """A timeout with nothing dropped: nobody there (not worth a line)."""
    text = str(error)
    return text.startswith("no answer from") and "last answer dropped" not in text


def ping(host, port, credential, timeout):
    """("ok", sysObjectID) when the agent answers with this credential,
    (None, None) when nothing answers, ("error", one line) otherwise."""
    from infrapower.snmp.pdu import SYS_OBJECT_ID
    from infrapower.snmp.session import Session

    try:
        session = Session(_settings(host, port, credential, timeout))
    except InfrapowerError as error:
        return "error", str(error)
    try:
        (_, sysoid), = session.get([SYS_OBJECT_ID])
    except SnmpError as error:
        return (None, None) if _silent(error) else ("error", str(error))
    finally:
        session.close()
    return "ok", sysoid if isinstance(sysoid, str) else None


def conf_names(documents):
    """{(sysoid, symbol) or name: NUT 2.8.0's mapping name} to translate
    the newest tables' names into what ups.conf's snmp-ups knows."""
    from infrapower import tables

    path = tables.path_for_version(CONF_NUT_VERSION)
    older = tables.load(path) if path else None
    names = {}
    for mapping in (older or {}).get("mappings", []):
        names.setdefault((mapping.get("sysoid"), mapping.get("symbol")), mapping["name"])
        names.setdefault(mapping.get("symbol"), mapping["name"])
    return names


def _identity(session, table):
    """device.type/mfr/model/serial as the mapping reads them (its static
    defaults where it has no OID); the first unit of a daisy chain."""
    from infrapower.snmp.oid import normalise_oid

    found, asked = {}, {}
    # A daisy chain's first unit is index 0 or 1 (Eaton numbers its master 0, as Pdu._base probes)
    units = ("0", "1") if (table.get("outlets") or {}).get("daisy") else ("1", "0")
    entries = table["entries"]
    device_first = [e for e in entries if e["info"] in IDENTITY] + [e for e in entries if e["info"] in _UPS_IDENTITY]
    for entry in device_first:
        info = _UPS_IDENTITY.get(entry["info"], entry["info"])
        if info in found or info in asked:
            continue
        oid = entry.get("oid")
        if not oid:
            if entry.get("dfl"):
                found[info] = str(entry["dfl"])
        elif oid.count("%i") <= 1:
            asked[info] = ([normalise_oid(oid.replace("%i", unit)) for unit in units] if "%i" in oid
                           else [normalise_oid(oid)], entry.get("dfl"))
    oids = sorted({oid for candidates, _ in asked.values() for oid in candidates})
    answers = dict(session.get(oids)) if oids else {}
    for info, (candidates, default) in asked.items():
        value = next((answers.get(oid) for oid in candidates if answers.get(oid) not in (None, "")), None)
        if value is not None or default:
            found.setdefault(info, str(value if value is not None else default).strip())
    return found


def details(host, port, credential, timeout, document, names):
    """What the agent is: its NUT mapping (as this pack's tables and as
    NUT 2.8.0 call it), identity, outlets with names and states, units of
    a daisy chain, switchability.  A dict for the output writers."""
    from infrapower.snmp.pdu import Pdu, PduError, identify, switched_mapping_names
    from infrapower.snmp.session import Session

    result = {"mapping": None, "conf_mapping": None, "outlets": [], "units": 0, "switchable": False}
    session = Session(_settings(host, port, credential, timeout))
    try:
        try:
            mapping = identify(session, document)
        except PduError as error:
            result["note"] = str(error).split(";")[0]  # the hint to force a mib is fence_snmp_pdu's, not ours
            return result
        table = document["tables"][mapping["table"]]
        result["mapping"] = mapping["name"]
        result["conf_mapping"] = names.get((mapping.get("sysoid"), mapping.get("symbol"))) or names.get(mapping.get("symbol"))
        result.update({info.split(".", 1)[1]: value for info, value in _identity(session, table).items()})
        view = table.get("outlets") or {}
        if not view.get("status_oid"):
            result["note"] = f"the {mapping['name']} mapping has no outlets"
            return result
        result["switchable"] = mapping["name"] in switched_mapping_names(document)
        result["nut_commands"] = bool((view.get("commands") or {}).get("off"))
        try:
            listing = Pdu(session, document, mapping).listing()
        except PduError as error:
            result["note"] = str(error)
            return result
        result["outlets"] = [{"id": ident, "name": name, "state": state} for ident, (name, state) in listing.items()]
        locked = _switchable_outlets(session, view, any(":" in ident for ident in listing))
        for outlet in result["outlets"]:
            outlet["switchable"] = result["switchable"] and locked.get(outlet["id"], True)
        result["units"] = len({ident.split(":")[0] for ident in listing}) if any(":" in i for i in listing) else 1
        return result
    finally:
        session.close()


def _switchable_outlets(session, view, chained):
    """{outlet id: False/True} from the PDU's own per-outlet "switchable"
    column, where the mapping has one that can say no (Eaton, HPE,
    Raritan PX2 ...); {} elsewhere, or when the column cannot be read."""
    import re

    from infrapower.snmp.oid import normalise_oid

    template, values = view.get("switchable_oid"), view.get("switchable_map") or {}
    if not template or "no" not in values.values():
        return {}
    template = normalise_oid(template)
    column = template.split("%i", 1)[0].rstrip(".")
    try:
        rows = session.walk([column])[column]
    except SnmpError:
        return {}
    pattern = re.compile(re.escape(template).replace("%i", r"(\d+)"))
    base = view.get("index_base") or 1
    unit_first = ((view.get("daisy") or {}).get("index") or 1) == 1
    places = {}
    for oid, raw in rows:
        match = pattern.fullmatch(oid)
        if not match or values.get(str(raw)) not in ("yes", "no"):
            continue
        numbers = [int(group) for group in match.groups()]
        unit, index = (1, numbers[0]) if len(numbers) == 1 else (numbers if unit_first else numbers[::-1])
        places[(unit, index - base + 1)] = values[str(raw)] == "yes"
    first_unit = min((unit for unit, _ in places), default=1)
    return {(f"{unit - first_unit + 1}:{number}" if chained else str(number)): state
            for (unit, number), state in places.items()}
