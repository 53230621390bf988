"""The lab's switched PDUs: one snmpsim process per PDU, its records built
from fence_snmp_pdu's generated tables, its outlets wired to the rack.

A PDU serves everything its NUT mapping reads (so NUT's snmp-ups accepts
it), with outlet status, names and commands bound to the rack's state
through the `pdu` variation module.  Simulation extras (OID sets a real
unit serves beside its NUT mapping, such as APC's rPDU table that
fence_apc_snmp uses) come from `sim_extras.json`, in the same shape as a
generated table's outlet view.

Topology keys of a PDU: `mapping` (a NUT mapping name; `sysoid` picks one
where several share the name), `outlets` per unit, `units` (> 1: a daisy
chain, outlets `pduN:unit.outlet` in the rack), `switch_delay` (pending
states while switching), `cycle_seconds`, `unswitchable` (outlet numbers,
or "unit.outlet", the PDU reports as not switchable where its mapping can
say so), `anonymous` (a sysObjectID no mapping claims, no model OID) and
`reply_delay` (seconds before each request is answered: a slow agent).
Any mapping whose table has outlets can be simulated.
"""

import json
import signal
from pathlib import Path

from infrapower import tables
from infrapower.lab.core import LabError, PeerGone, free_port, lab_python, wait_until
from infrapower.lab.rack import MAINS_VOLTS, outlet_names
from infrapower.snmp.pdu import INLET_VOLTAGE

MODULES_DIR = Path(__file__).with_name("snmpsim_modules")
EXTRAS_FILE = Path(__file__).with_name("sim_extras.json")

READ_COMMUNITY = "public"
WRITE_COMMUNITY = "private"
V3_USER = {
    "user": "fencer",
    "auth_proto": "SHA",
    "auth_key": "lab-auth-secret",
    "priv_proto": "AES",
    "priv_key": "lab-priv-secret",
}
# One more SNMPv3 user per protocol family a client must speak, protocol
# names as fence agents spell them (snmpsim's spelling: _SNMPSIM_PROTOCOL).
V3_USERS = [
    V3_USER,
    {"user": "fencer-md5-des", "auth_proto": "MD5", "auth_key": "lab-md5-secret", "priv_proto": "DES", "priv_key": "lab-des-secret"},
    {"user": "fencer-sha224-aes192", "auth_proto": "SHA-224", "auth_key": "lab-sha224-secret", "priv_proto": "AES-192", "priv_key": "lab-aes192-secret"},
    {"user": "fencer-sha256-aes256", "auth_proto": "SHA-256", "auth_key": "lab-sha256-secret", "priv_proto": "AES-256", "priv_key": "lab-aes256-secret"},
    {"user": "fencer-sha384-aes", "auth_proto": "SHA-384", "auth_key": "lab-sha384-secret", "priv_proto": "AES", "priv_key": "lab-aes-secret"},
    {"user": "fencer-sha512-nopriv", "auth_proto": "SHA-512", "auth_key": "lab-sha512-secret", "priv_proto": None, "priv_key": None},
]
# AES-192/256 keys extended as net-snmp does (Blumenthal draft).
_SNMPSIM_PROTOCOL = {"SHA-224": "SHA224", "SHA-256": "SHA256", "SHA-384": "SHA384", "SHA-512": "SHA512",
                     "AES-192": "AES192BLMT", "AES-256": "AES256BLMT"}

TAG_INTEGER, TAG_STRING, TAG_OID, TAG_TIMETICKS = "2", "4", "6", "67"

# sysObjectID of a PDU with `anonymous` set in the topology: an enterprise
# number no NUT mapping claims.
ANONYMOUS_SYSOID = "1.3.6.1.4.1.99999.1.1"

# snmpsim serves SNMPv3 only under a context name equal to a data file's
# name, and drops pysnmp's default empty context; real PDUs (and every
# client: net-snmp, fence_apc_snmp) use the empty context.  The launcher
# maps the empty context to the read community's data, as a real agent
# serves its one MIB view there.
#
# A slow PDU (`reply_delay` in the topology, or `lab fault pdu NAME
# slow=SECONDS`): every incoming datagram waits that long before snmpsim
# handles it, in its one thread, so requests queue as on a real PDU whose
# agent serialises them.  The delay lives in a file beside the PDU's data
# (REPLY_DELAY_FILE), read again only when it changes.
REPLY_DELAY_FILE = "reply_delay"
_SNMPSIM_MAIN = f"""
import os, time
from pysnmp.proto import rfc3412
_delay_file = os.path.join(os.environ["INFRAPOWER_PDU_DIR"], "{REPLY_DELAY_FILE}")
_delay = [None, 0.0]
_receive = rfc3412.MsgAndPduDispatcher.receive_message
def receive_slowly(self, *args, **kwargs):
    try:
        stamp = os.stat(_delay_file).st_mtime_ns
    except FileNotFoundError:
        stamp = None
    if stamp != _delay[0]:
        try:
            with open(_delay_file) as handle:
                _delay[1] = float(handle.read() or 0)
        except (FileNotFoundError, ValueError):
            _delay[1] = 0.0
        _delay[0] = stamp
    if _delay[1] > 0:
        time.sleep(_delay[1])
    return _receive(self, *args, **kwargs)
rfc3412.MsgAndPduDispatcher.receive_message = receive_slowly
from pysnmp.entity.rfc3413 import context
register = context.SnmpContext.register_context_name
def register_with_empty_context(self, name, *args, **kwargs):
    register(self, name, *args, **kwargs)
    if str(name) == "{READ_COMMUNITY}":
        register(self, b"", *args, **kwargs)
context.SnmpContext.register_context_name = register_with_empty_context
from snmpsim.commands.responder import main
main()
"""


def _pdu_dir(lab, name):
    return lab.path("snmp", name)


def process_name(name):
    return f"snmpsim-{name}"


# -- building a PDU's records -------------------------------------------------


class _Profile:
    """Records of one simulated PDU: OID → spec, later written as a
    snmprec data file (values are keys into the profile) and a JSON
    profile the variation module loads."""

    def __init__(self):
        self.specs = {}

    def add(self, oid, tag, role, **spec):
        oid = oid.lstrip(".")
        current = self.specs.get(oid)
        # Outlet status and commands outrank static records on a shared OID
        # (APC's sPDUOutletCtl is both the status and the switch).
        rank = {"static": 0, "inlet": 1, "command": 2, "status": 3}
        if current and rank[current["role"]] > rank[role]:
            return
        if current and current["role"] == "status" and role == "status":
            spec["actions"] = spec.get("actions") or current.get("actions")
        self.specs[oid] = dict(spec, role=role, tag=tag)

    def write(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        keys = {}
        lines = []
        for index, oid in enumerate(sorted(self.specs, key=_oid_key)):
            key = f"r{index}"
            keys[key] = self.specs[oid]
            lines.append(f"{oid}|{self.specs[oid]['tag']}:pdu|{key}\n")
        (directory / "profile.json").write_text(json.dumps(keys, indent=1, sort_keys=True))
        data = directory / "data"
        data.mkdir(exist_ok=True)
        text = "".join(lines)
        # snmpsim picks the data file by community (v1/v2c) or context (v3).
        for community in (READ_COMMUNITY, WRITE_COMMUNITY):
            (data / f"{community}.snmprec").write_text(text)


def _oid_key(oid):
    return tuple(int(part) for part in oid.split("."))


def _instances(template, units, outlets, daisy, unit_base, offset=0):
    """(unit, outlet, concrete OID) for every outlet a template covers."""
    count = template.count("%i")
    for unit in range(1, units + 1):
        for number in range(1, outlets + 1):
            index = number + offset
            if count == 1:
                if units > 1 and unit != 1:
                    continue
                oid = template.replace("%i", str(index))
            elif count == 2:
                unit_index = unit - 1 + unit_base
                first, second = (unit_index, index) if daisy == 1 else (index, unit_index)
                oid = template.replace("%i", str(first), 1).replace("%i", str(second), 1)
            else:
                oid = template
            yield unit, number, oid


def _static_value(entry, lookups):
    """A plausible value for a record the fencing view does not drive."""
    lookup = entry.get("lookup")
    if lookup and lookups.get(lookup):
        return TAG_INTEGER, lookups[lookup][0][0]
    dfl = entry.get("dfl")
    if "ST_FLAG_STRING" in entry.get("info_flags", []):
        return TAG_STRING, (dfl or "lab").replace("%i", "1")
    try:
        return TAG_INTEGER, int(float(dfl))
    except (TypeError, ValueError):
        return TAG_INTEGER, 1


def _reverse(mapping):
    """state → raw value, first raw value winning (tables list the
    canonical value first)."""
    result = {}
    for raw, state in sorted(mapping.items(), key=lambda kv: int(kv[0]) if kv[0].lstrip("-").isdigit() else 0):
        result.setdefault(state, int(raw) if raw.lstrip("-").isdigit() else raw)
    return result


def _add_outlet_view(profile, view, pdu_name, pdu, names):
    """Status, commands, names and switchability of every outlet."""
    units, outlets = pdu.get("units", 1), pdu["outlets"]
    daisy = (view.get("daisy") or {}).get("index", 1)
    unit_base = (view.get("daisy") or {}).get("unit_base", 0)
    common = {"switch_delay": pdu.get("switch_delay", 0.0), "cycle_seconds": pdu.get("cycle_seconds", 1.0)}

    def outlet_key(unit, number):
        return f"{pdu_name}:{number}" if unit == 1 else f"{pdu_name}:{unit}.{number}"

    def each(template, offset=0):
        if template:
            yield from _instances(template, units, outlets, daisy, unit_base, offset)

    if view.get("count_oid") and "%i" not in view["count_oid"]:
        profile.add(view["count_oid"], TAG_INTEGER, "static", value=outlets)

    status_values = _reverse(view.get("status_map") or {"1": "on", "2": "off"})
    by_status = view.get("switched_by_status")
    status_actions = None
    if by_status:
        status_actions = {str(by_status["on"]): "on", str(by_status["off"]): "off"}
    for unit, number, oid in each(view.get("status_oid")):
        profile.add(oid, TAG_INTEGER, "status", outlet=outlet_key(unit, number), values=status_values,
                    actions=status_actions, **common)

    for action, command in sorted((view.get("commands") or {}).items()):
        if action not in ("on", "off", "cycle"):
            continue
        tag = TAG_STRING if command.get("set_type") == "string" else TAG_INTEGER
        value = str(command["value"])
        for unit, number, oid in each(command["oid"], command.get("index_offset", 0)):
            key = oid.lstrip(".")
            existing = profile.specs.get(key)
            if existing and existing["role"] == "status":
                existing.setdefault("actions", None)
                existing["actions"] = dict(existing["actions"] or {}, **{value: action})
                continue
            actions = dict((existing or {}).get("actions") or {}, **{value: action})
            profile.add(oid, tag, "command", outlet=outlet_key(unit, number), actions=actions,
                        readback=0 if tag == TAG_INTEGER else "", **common)

    for field in ("name_oid", "desc_oid"):
        for unit, number, oid in each(view.get(field)):
            profile.add(oid, TAG_STRING, "static", value=names[outlet_key(unit, number)])
    # snmp-ups probes the outlet index base (0 or 1) on index_probe_oid:
    # an outlet's index column, which the other records may not cover.
    for field in ("id_oid", "index_probe_oid"):
        for unit, number, oid in each(view.get(field)):
            if oid.lstrip(".") not in profile.specs:
                profile.add(oid, TAG_INTEGER, "static", value=number)
    switchable = view.get("switchable_map")
    if view.get("switchable_oid") and switchable:
        # `unswitchable` in the topology: outlet numbers (or "unit.outlet")
        # the PDU reports as not switchable, where the mapping can say so.
        values = _reverse(switchable)
        locked = {str(item) for item in pdu.get("unswitchable", [])}
        for unit, number, oid in each(view["switchable_oid"]):
            key = outlet_key(unit, number).split(":", 1)[1]
            value = values.get("no") if key in locked and "no" in values else values.get("yes")
            profile.add(oid, TAG_INTEGER, "static", value=value)


def build_profile(pdu_name, pdu, topology, table_data=None, extras=None):
    """Every record one simulated PDU serves."""
    table_data = table_data or tables.load()
    mapping = _find_mapping(table_data, pdu["mapping"], pdu.get("sysoid"))
    table = table_data["tables"][mapping["table"]]
    names = outlet_names(topology)
    profile = _Profile()

    profile.add("1.3.6.1.2.1.1.1.0", TAG_STRING, "static", value=f"infrapower lab PDU {pdu_name} ({mapping['name']})")
    profile.add("1.3.6.1.2.1.1.2.0", TAG_OID, "static", value=mapping["sysoid"].lstrip("."))
    profile.add("1.3.6.1.2.1.1.3.0", TAG_TIMETICKS, "static", value=123456)
    profile.add("1.3.6.1.2.1.1.4.0", TAG_STRING, "static", value="lab@localhost")
    profile.add("1.3.6.1.2.1.1.5.0", TAG_STRING, "static", value=pdu_name)
    profile.add("1.3.6.1.2.1.1.6.0", TAG_STRING, "static", value="infrapower lab rack")

    lookups = table.get("lookups", {})
    for entry in table["entries"]:
        oid = entry.get("oid")
        if not oid or "%i" in oid or entry["info"].startswith("unmapped."):
            continue
        if "SU_TYPE_CMD" in entry.get("flags", []):
            continue
        if entry["info"] in INLET_VOLTAGE:
            _add_inlet(profile, oid, entry, pdu)
            continue
        tag, value = _static_value(entry, lookups)
        if entry["info"] in ("device.count",):
            value = pdu.get("units", 1)
        profile.add(oid, tag, "static", value=value)
    if mapping.get("model_oid") and "%i" not in mapping["model_oid"]:
        profile.add(mapping["model_oid"], TAG_STRING, "static", value=f"Lab {mapping['name']} PDU")
    if pdu.get("anonymous"):
        # A device no table knows (an OEM rebrand, a new firmware): foreign
        # sysObjectID and no model OID, the same outlet tables.
        if mapping.get("model_oid"):
            profile.specs.pop(mapping["model_oid"].lstrip("."), None)
        profile.add("1.3.6.1.2.1.1.2.0", TAG_OID, "static", value=ANONYMOUS_SYSOID)

    views = [table.get("outlets")] + list((extras or _extras()).get(mapping["name"], []))
    for view in filter(None, views):
        _add_outlet_view(profile, view, pdu_name, pdu, names)
    # Per-unit templates (daisy chains): model and outlet count per unit.
    daisy = (table.get("outlets") or {}).get("daisy") or {}
    unit_base = daisy.get("unit_base", 0)
    for entry in table["entries"]:
        oid = entry.get("oid") or ""
        if entry["info"] in ("device.model", "outlet.count", "device.mfr", "device.serial", "device.count",
                             *INLET_VOLTAGE) and oid.count("%i") == 1:
            for unit in range(pdu.get("units", 1)):
                concrete = oid.replace("%i", str(unit + unit_base))
                if entry["info"] == "device.count":
                    # snmp-ups counts the units by walking this column
                    # (one row per unit, whatever the value).
                    if concrete.lstrip(".") not in profile.specs:
                        profile.add(concrete, TAG_INTEGER, "static", value=unit + 1)
                elif entry["info"] in INLET_VOLTAGE:
                    _add_inlet(profile, concrete, entry, pdu)
                elif entry["info"] == "outlet.count":
                    profile.add(concrete, TAG_INTEGER, "static", value=pdu["outlets"])
                else:
                    profile.add(concrete, TAG_STRING, "static", value=f"Lab {mapping['name']} unit {unit + 1}")
    return profile


def _add_inlet(profile, oid, entry, pdu):
    """The inlet's voltage: mains while the PDU's UPS is on, in the raw
    unit the mapping reads (NUT multiplies by `info_len`)."""
    raw = round(MAINS_VOLTS / (entry.get("info_len") or 1))
    profile.add(oid, TAG_INTEGER, "inlet", ups=pdu["ups"], value=raw)


def _find_mapping(table_data, name, sysoid=None):
    """The mapping a simulated PDU impersonates; several mappings share a
    name (APC's apc_pdu has one per product line), `sysoid` picks one."""
    for mapping in table_data["mappings"]:
        if mapping["name"] == name and mapping.get("sysoid") and sysoid in (None, mapping["sysoid"]):
            return mapping
    raise LabError(f"no NUT mapping named {name} with sysObjectID {sysoid or 'set'} in the tables")


def _extras():
    return json.loads(EXTRAS_FILE.read_text()) if EXTRAS_FILE.exists() else {}


# -- running -----------------------------------------------------------------


def _snmpsim_command():
    return [lab_python(), "-c", _SNMPSIM_MAIN]


def start(lab, names=None):
    """Write every PDU's records and start its snmpsim on a free port."""
    topology = lab.rack.topology()
    table_data = tables.load()
    extras = _extras()
    variation_dirs = [str(MODULES_DIR)]
    try:
        import snmpsim

        variation_dirs.append(str(Path(snmpsim.__file__).parent / "variation"))
    except ImportError:
        raise LabError("snmpsim is not installed in the lab's Python: install the pack's `lab` extra") from None
    for name in names or topology["pdus"]:
        pdu = topology["pdus"][name]
        directory = _pdu_dir(lab, name)
        build_profile(name, pdu, topology, table_data, extras).write(directory)
        port = free_port("udp")
        lab.set_port(f"snmp:{name}", port)
        argv = _snmpsim_command() + [
            f"--data-dir={directory / 'data'}",
            f"--cache-dir={directory / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}",
            f"--variation-module-options=pdu:profile={directory / 'profile.json'}",
            "--logging-method=stderr",
            "--log-level=error",
        ]
        for user in V3_USERS:
            argv += [
                f"--v3-user={user['user']}",
                f"--v3-auth-key={user['auth_key']}",
                f"--v3-auth-proto={_SNMPSIM_PROTOCOL.get(user['auth_proto'], user['auth_proto'])}",
            ]
            if user["priv_key"]:
                argv += [
                    f"--v3-priv-key={user['priv_key']}",
                    f"--v3-priv-proto={_SNMPSIM_PROTOCOL.get(user['priv_proto'], user['priv_proto'])}",
                ]
        for variation_dir in variation_dirs:
            argv.append(f"--variation-modules-dir={variation_dir}")
        set_reply_delay(lab, name, pdu.get("reply_delay", 0.0))
        lab.spawn(process_name(name), argv, env={"SNMPSIM_ALLOW_ROOT": "true", "INFRAPOWER_PDU_DIR": str(directory)})


def _answers(port, community=READ_COMMUNITY, timeout=0.2):
    """One raw SNMPv2c GET of sysObjectID: enough to know the agent is up,
    without importing pysnmp's high-level API into the orchestrator."""
    import socket

    from pysnmp.proto import api

    proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = proto.GetRequestPDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_varbinds(pdu, [("1.3.6.1.2.1.1.2.0", proto.Null(""))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    from pyasn1.codec.ber import encoder

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(encoder.encode(message), ("127.0.0.1", port))
        try:
            sock.recvfrom(65535)
        except socket.timeout:
            return False
    return True


def wait_ready(lab, deadline, names=None):
    for name in names or lab.rack.topology()["pdus"]:
        port = lab.port(f"snmp:{name}")

        def check(name=name, port=port):
            if not lab.alive(process_name(name)):
                raise PeerGone(f"snmpsim for {name} died: see {lab.path('logs', process_name(name) + '.log')}")
            return _answers(port)

        wait_until(check, deadline, f"simulated PDU {name} (udp {port})")


def set_silent(lab, name, silent):
    """The whole PDU stops answering (its SNMP agent is frozen), or resumes."""
    lab.signal(process_name(name), signal.SIGSTOP if silent else signal.SIGCONT)


def set_reply_delay(lab, name, seconds):
    """Every request to the PDU is answered `seconds` later (0: at once),
    one after another: a slow embedded SNMP agent."""
    if name not in lab.rack.topology()["pdus"]:
        raise LabError(f"the lab has no PDU named {name}")
    path = _pdu_dir(lab, name) / REPLY_DELAY_FILE
    if seconds and seconds > 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{float(seconds):g}\n")
        tmp.replace(path)
    else:
        path.unlink(missing_ok=True)


def status(lab):
    topology = lab.rack.topology()
    return {
        name: {
            "port": lab.ports().get(f"snmp:{name}"),
            "mapping": pdu["mapping"],
            "running": lab.alive(process_name(name)),
        }
        for name, pdu in topology["pdus"].items()
    }
