"""Generate fence_snmp_pdu's OID tables from NUT's snmp-ups driver sources.

Usage::

    python3 -m infrapower.tables.generate --nut-source DIR [--out TABLEDIR]
        [--nut-version VERSION] [--nut-commit SHA]

DIR is a NUT source tree (a git work tree or an extracted tarball).  The
mapping tables are read from ``DIR/drivers/*-mib.c``, the ``mibs=auto`` probe
order from the ``mib2nut[]`` array in ``DIR/drivers/snmp-ups.c`` and shared
constants (``SU_INFOSIZE``...) from ``DIR/drivers/snmp-ups.h``.

Besides the faithful per-row copy of every compiled-in ``snmp_info_t`` entry,
each table gets a derived ``outlets`` view: the handful of OIDs and values a
fence agent needs (outlet count, status and its normalised states, on/off/
cycle commands, daisy-chain placement).  Everything in the output is a fact
read from NUT's sources; nothing is hand-written.

The output is a directory per NUT version (``--out``, e.g.
``agents/fence_snmp_pdu/tables/nut-master``): ``index.json`` holds the
header and the mappings plus the names of the tables, and each table has
its own ``<name>.json``, so a fence agent parses the mappings and the one
table it uses instead of every vendor's (see :mod:`infrapower.tables`).
Without ``--out`` the whole document goes to standard output as one JSON
text, for reading and diffing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from infrapower.errors import InfrapowerError
from infrapower.tables import FORMAT, INDEX_FILE, OUTLET_VIEW_KEYS, cparse

GENERATOR = "infrapower tables generate"
NUT_UPSTREAM = "networkupstools/nut"

# Headers next to the *-mib.c files that may carry OID #defines for them.
# snmp-ups.h is read once up front; main.h & co. hold no table data.
_LOCAL_HEADER = re.compile(r"^[\w.-]+-(mib|helpers)\.h$")
# A table's file is <C identifier>.json beside index.json.
_TABLE_NAME = re.compile(r"^[A-Za-z_]\w*$")

# NUT command / setting suffixes of "outlet.%i." -> our command names.
_COMMANDS = (
    ("load.off", "off"),
    ("load.on", "on"),
    ("load.cycle", "cycle"),
    ("load.off.delay", "off_delay"),
    ("load.on.delay", "on_delay"),
    ("load.cycle.delay", "cycle_delay"),
)
_DELAY_SETTINGS = ("delay.shutdown", "delay.start", "delay.reboot")

# Outlet state strings seen in NUT lookups -> the agent's vocabulary.
# Anything unlisted normalises to "unknown" (and stays visible in status_raw).
_STATE_WORDS = {
    "on": "on",
    "off": "off",
    "pendingon": "pending_on",
    "pending_on": "pending_on",
    "pendingoff": "pending_off",
    "pending_off": "pending_off",
    "cycling": "cycling",
    "cycle": "cycling",
    "rebooting": "cycling",
    "reboot": "cycling",
    "pendingcycle": "cycling",
    "error": "error",
    "fault": "error",
    "failed": "error",
    "failure": "error",
    "fail": "error",
    # Baytech: the outlet is locked in that state, but powered accordingly.
    "lockon": "on",
    "lockoff": "off",
}


class GenerateError(InfrapowerError):
    """A user-facing failure: bad source tree, unreadable mapping..."""


# --------------------------------------------------------------------------
# Reading the NUT tree


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        raise GenerateError(f"cannot read {path}: {exc.strerror or exc}") from None


def _drivers_dir(nut_source):
    drivers = os.path.join(nut_source, "drivers")
    for required in ("snmp-ups.c", "snmp-ups.h"):
        if not os.path.isfile(os.path.join(drivers, required)):
            raise GenerateError(
                f"{nut_source} does not look like a NUT source tree (no drivers/{required})"
            )
    return drivers


def _base_preprocessor(drivers):
    """Macros every mapping file sees: the build config plus snmp-ups.h."""
    base = cparse.Preprocessor(filename="snmp-ups.h")
    base.run(_read(os.path.join(drivers, "snmp-ups.h")))
    return base


def _file_preprocessor(base, drivers, filename):
    pp = cparse.Preprocessor(predefined=(), filename=filename)
    pp.macros = dict(base.macros)
    pp.function_macros = set(base.function_macros)
    seen = set()

    def include(header, preprocessor):
        path = os.path.join(drivers, header)
        if header in seen or not _LOCAL_HEADER.match(header) or not os.path.isfile(path):
            return
        seen.add(header)
        previous = preprocessor.filename
        preprocessor.filename = header
        preprocessor.run(_read(path), include=include)
        preprocessor.filename = previous

    return pp, include


def _parse(text, filename, pp=None, include=None):
    try:
        return cparse.parse_source(text, filename, preprocessor=pp, include=include)
    except cparse.CParseError as exc:
        raise GenerateError(f"cannot parse {exc}") from None


def read_nut_tree(nut_source):
    """Parse a NUT tree: probe order, mib2nut definitions, tables, lookups.

    Returns ``(probe_order, mib2nut, tables, lookups)`` where ``mib2nut``
    maps a C symbol to its fields plus ``source_file``, ``tables`` maps a
    snmp_info_t array name to (rows, source_file) and ``lookups`` maps a
    source file to its info_lkp_t arrays (they are file-static in NUT).
    """
    drivers = _drivers_dir(nut_source)
    core = _parse(_read(os.path.join(drivers, "snmp-ups.c")), "snmp-ups.c")
    probe_order = core["pointer_arrays"].get("mib2nut")
    if not probe_order:
        raise GenerateError(f"no mib2nut[] array found in {drivers}/snmp-ups.c")

    base = _base_preprocessor(drivers)
    # Lookups shared by several mappings live in the driver core (e.g.
    # su_convert_to_iso_date_info in snmp-ups-helpers.c).
    shared_lookups = dict(core["lookups"])
    helpers = os.path.join(drivers, "snmp-ups-helpers.c")
    if os.path.isfile(helpers):
        shared_lookups.update(_parse(_read(helpers), "snmp-ups-helpers.c")["lookups"])
    mib2nut, tables, lookups = {}, {}, {}
    mib_files = sorted(name for name in os.listdir(drivers) if name.endswith("-mib.c"))
    if not mib_files:
        raise GenerateError(f"no drivers/*-mib.c files in {nut_source}")
    for filename in mib_files:
        pp, include = _file_preprocessor(base, drivers, filename)
        parsed = _parse(_read(os.path.join(drivers, filename)), filename, pp, include)
        # A file's own (static) lookups shadow the shared ones, as in C.
        lookups[filename] = dict(shared_lookups, **parsed["lookups"])
        for name, rows in parsed["tables"].items():
            if name in tables:
                raise GenerateError(f"snmp_info_t {name} defined in both {tables[name][1]} and {filename}")
            tables[name] = (rows, filename)
        for symbol, record in parsed["mib2nut"].items():
            if symbol in mib2nut:
                raise GenerateError(f"mib2nut_info_t {symbol} defined in both "
                                    f"{mib2nut[symbol]['source_file']} and {filename}")
            mib2nut[symbol] = dict(record, source_file=filename)
    return probe_order, mib2nut, tables, lookups


def detect_nut_version(nut_source):
    """(version, commit) from git when DIR is a work tree, else (None, None)."""
    if not os.path.exists(os.path.join(nut_source, ".git")):
        return None, None

    def git(*args):
        try:
            out = subprocess.run(["git", "-C", nut_source] + list(args), check=True,
                                 capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stdout.strip() or None

    described = git("describe", "--tags", "--always")
    version = described[1:] if described and re.match(r"^v\d", described) else described
    return version, git("rev-parse", "HEAD")


# --------------------------------------------------------------------------
# Deriving the fencing view


def _by_info(entries, info):
    return [e for e in entries if e["info"] == info]


def _first_with_oid(candidates):
    return next((e for e in candidates if e["oid"]), None)


def _alternatives(candidates, chosen):
    return [e["oid"] for e in candidates if e["oid"] and e is not chosen]


def normalise_state(raw):
    """NUT's outlet state string -> on/off/pending_*/cycling/error/unknown."""
    return _STATE_WORDS.get(raw.replace(" ", "").lower(), "unknown") if raw else "unknown"


def _daisy_position(entry):
    """1 or 2: which %i of a two-%i OID template is the chained unit.

    None for single-%i OIDs even when flagged: snmp-ups only applies the
    daisy position when the template carries both numbers.
    """
    if not entry["oid"] or entry["oid"].count("%i") < 2:
        return None
    if "SU_TYPE_DAISY_1" in entry["flags"]:
        return 1
    if "SU_TYPE_DAISY_2" in entry["flags"]:
        return 2
    return None


def _lookup_pairs(rows):
    return [[row["value"], row["string"]] for row in rows if row["string"] is not None]


def _derive_items(entries, prefix, template_flag, lookups):
    """The fencing view over one template family (outlets or outlet groups).

    ``prefix`` is "outlet" or "outlet.group"; ``template_flag`` the SU_ flag
    marking its per-item templates.  Returns None without any templates.
    """
    item = prefix + ".%i."
    templates = [e for e in entries if e["info"].startswith(item) and template_flag in e["flags"]]
    if not templates:
        return None

    def pick(info):
        candidates = _by_info(templates, item + info)
        return candidates, _first_with_oid(candidates)

    view = {}
    count_candidates = _by_info(entries, prefix + ".count")
    count = _first_with_oid(count_candidates)
    view["count_oid"] = count["oid"] if count else None
    view["count_oid_alternatives"] = _alternatives(count_candidates, count)
    for field in ("id", "name", "desc"):
        candidates, chosen = pick(field)
        view[field + "_oid"] = chosen["oid"] if chosen else None
        view[field + "_oid_alternatives"] = _alternatives(candidates, chosen)

    candidates, status = pick("status")
    view["status_oid"] = status["oid"] if status else None
    view["status_oid_alternatives"] = _alternatives(candidates, status)
    status_pairs = _lookup_pairs(lookups.get(status["lookup"], [])) if status and status["lookup"] else []
    view["status_raw"] = {str(v): s for v, s in status_pairs} or None
    view["status_map"] = {str(v): normalise_state(s) for v, s in status_pairs} or None

    candidates, switchable = pick("switchable")
    view["switchable_oid"] = switchable["oid"] if switchable else None
    view["switchable_oid_alternatives"] = _alternatives(candidates, switchable)
    switch_pairs = (_lookup_pairs(lookups.get(switchable["lookup"], []))
                    if switchable and switchable["lookup"] else [])
    view["switchable_map"] = {str(v): s for v, s in switch_pairs} or None
    first_switchable = candidates[0] if candidates else None
    view["switchable_default"] = first_switchable["dfl"] if first_switchable else None

    commands, skipped = {}, {}
    for suffix, name in _COMMANDS:
        cmd_entries = [e for e in _by_info(templates, item + suffix) if "SU_TYPE_CMD" in e["flags"]]
        cmd = _first_with_oid(cmd_entries)
        if cmd is None:
            if cmd_entries:
                skipped[name] = "no OID"
            continue
        commands[name] = {
            "oid": cmd["oid"],
            # NUT sends dfl unless the caller passes a value; a NULL dfl
            # (delayed commands) means the value is mandatory: the delay.
            "value": cmd["dfl"],
            "value_required": cmd["dfl"] is None,
            # snmp-ups SETs a string when ST_FLAG_STRING, else an INTEGER
            # (TimeTicks for SU_TYPE_TIME).
            "set_type": ("string" if "ST_FLAG_STRING" in cmd["info_flags"]
                         else "timeticks" if "SU_TYPE_TIME" in cmd["flags"] else "integer"),
            # SU_CMD_OFFSET documents firmware whose command table is indexed
            # outlet+1 (Pulizzi).  NB: snmp-ups computes but never applies it.
            "index_offset": 1 if "SU_CMD_OFFSET" in cmd["flags"] else 0,
            "daisy_position": _daisy_position(cmd),
        }
    view["commands"] = commands or None
    view["commands_skipped"] = skipped or None

    settings = {}
    for suffix in _DELAY_SETTINGS:
        entry = _first_with_oid(_by_info(templates, item + suffix))
        if entry:
            settings[suffix] = {
                "oid": entry["oid"],
                "writable": "ST_FLAG_RW" in entry["info_flags"],
                "daisy_position": _daisy_position(entry),
            }
    view["delay_settings"] = settings or None

    view["switched_by_status"] = _switched_by_status(status, status_pairs, commands)

    positions = sorted({p for p in map(_daisy_position, templates) if p})
    view["daisy_positions"] = positions or None
    # snmp-ups does not know the base statically: it probes index 0 then 1
    # on the first template with an OID.  1 is the documented norm
    # ("Indexes start from 1, ie outlet.1 => <OID>.1"); the probe OID lets
    # the agent do what NUT does.
    probe = _first_with_oid(templates)
    view["index_base"] = 1
    view["index_probe_oid"] = probe["oid"] if probe else None
    view["index_probe_daisy_position"] = _daisy_position(probe) if probe else None
    return view


def _switched_by_status(status, status_pairs, commands):
    """APC sPDU style: no outlet commands, the status OID itself is written.

    Only when the status entry is read-write and its lookup maps integers to
    both "on" and "off" (so we know which integer to SET).
    """
    if commands.get("on") or commands.get("off"):
        return None
    if not status or "ST_FLAG_RW" not in status["info_flags"]:
        return None
    values = {}
    for value, string in status_pairs:
        state = normalise_state(string)
        if isinstance(value, int) and state in ("on", "off"):
            values.setdefault(state, value)
    if set(values) != {"on", "off"}:
        return None
    return {"oid": status["oid"], "on": values["on"], "off": values["off"],
            "set_type": "integer", "daisy_position": _daisy_position(status)}


def _daisy_view(entries, views):
    """Where a chained unit's number goes, for tables with daisy templates.

    ``views`` are the derived outlet and outlet-group views (or None).
    """
    positions = set()
    for view in views:
        if view and view["daisy_positions"]:
            positions.update(view["daisy_positions"])
    if not positions:
        return None
    count = _first_with_oid(_by_info(entries, "device.count"))
    model = _first_with_oid(_by_info(entries, "device.model"))
    return {
        # index == position of the unit's %i in two-%i outlet templates
        "index": positions.pop() if len(positions) == 1 else sorted(positions),
        "device_count_oid": count["oid"] if count else None,
        # A templated count OID is not read but iterated: NUT counts the
        # unit indices that answer (Marlin's fallback without helpers).
        "device_count_method": (None if not count else
                                "walk" if "%i" in count["oid"] else "get"),
        # NUT probes this OID (templated with the unit) at index 0 then 1 to
        # learn the unit base; the unit index in OIDs is then
        # device_number + base - 1 (device numbers start at 1).
        "device_index_probe_oid": model["oid"] if model and model["oid"] and "%i" in model["oid"] else None,
        # "%i" in count_oid (and other non-outlet OIDs) is the unit too.
    }


def derive_outlets(entries, lookups):
    """The ``outlets`` view of one table (None if it has no outlet templates)."""
    outlets = _derive_items(entries, "outlet", "SU_OUTLET", lookups)
    if outlets is None:
        return None
    outlets["groups"] = _derive_items(entries, "outlet.group", "SU_OUTLET_GROUP", lookups)
    outlets["daisy"] = _daisy_view(entries, (outlets, outlets["groups"]))
    return outlets


# --------------------------------------------------------------------------
# Assembling the document


def _table_document(rows, source_file, file_lookups):
    used = []
    for row in rows:
        if row["lookup"] and row["lookup"] not in used:
            used.append(row["lookup"])
    missing = [name for name in used if name not in file_lookups]
    if missing:
        raise GenerateError(f"{source_file}: lookup {', '.join(missing)} not defined in the same file")
    document = {
        "source_file": source_file,
        "entries": rows,
        "lookups": {name: _lookup_pairs(file_lookups[name]) for name in used},
        "outlets": derive_outlets(rows, file_lookups),
    }
    functions = {name: sorted({f for row in file_lookups[name] for f in row["functions"]})
                 for name in used}
    functions = {name: funcs for name, funcs in functions.items() if funcs}
    if functions:
        # Lookups NUT resolves through C helpers when WITH_SNMP_LKP_FUN is on.
        document["lookup_functions"] = functions
    return document


def build_document(nut_source, version=None, commit=None):
    probe_order, mib2nut, tables, lookups = read_nut_tree(nut_source)
    detected_version, detected_commit = detect_nut_version(nut_source)
    version = version or detected_version
    commit = commit or detected_commit
    if not version:
        raise GenerateError(f"cannot tell the NUT version of {nut_source} (not a git work tree): "
                            "pass --nut-version")

    mappings, table_docs = [], {}
    for symbol in probe_order:
        record = mib2nut.get(symbol)
        if record is None:
            raise GenerateError(f"snmp-ups.c lists {symbol} in mib2nut[] but no *-mib.c defines it")
        table = record["snmp_info"]
        if table not in tables:
            raise GenerateError(f"{record['source_file']}: mapping {symbol} uses undefined table {table}")
        mappings.append({
            "name": record["mib_name"],
            "symbol": symbol,
            "version": record["mib_version"],
            "sysoid": record["sysOID"],
            "model_oid": record["oid_auto_check"],
            "power_status_oid": record["oid_pwr_status"],
            "table": table,
            "source_file": record["source_file"],
        })
        if table not in table_docs:
            rows, source_file = tables[table]
            table_docs[table] = _table_document(rows, source_file, lookups[source_file])

    return {
        "format": FORMAT,
        "generator": GENERATOR,
        "nut": {"version": version, "commit": commit, "source": NUT_UPSTREAM},
        "mappings": mappings,
        "tables": table_docs,
    }


def split(document):
    """(index, {table name: table}): what goes into index.json (everything
    but the tables, plus their names) and into one file per table."""
    index = {key: value for key, value in document.items() if key != "tables"}
    index["table_names"] = sorted(document["tables"])
    index["outlet_views"] = {
        name: {key: view.get(key) for key in OUTLET_VIEW_KEYS}
        for name, view in sorted((name, table.get("outlets") or {}) for name, table in document["tables"].items())
        if view.get("status_oid")
    }
    return index, document["tables"]


def write_tables(document, directory):
    """Write `document` as a table directory (index.json and one
    <table>.json per table), replacing `directory` whole: a table that NUT
    dropped leaves no stale file behind, and a failure leaves the previous
    directory as it was."""
    index, table_docs = split(document)
    for name in table_docs:
        if not _TABLE_NAME.match(name) or name + ".json" == INDEX_FILE:
            raise GenerateError(f"table name {name!r} cannot be a file name next to {INDEX_FILE}")
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", dir=parent)
    previous = staging + ".previous"
    try:
        for name, table in table_docs.items():
            _write(os.path.join(staging, name + ".json"), dump(table))
        _write(os.path.join(staging, INDEX_FILE), dump(index))
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the tables from a non-root agent
        if os.path.lexists(directory):
            os.rename(directory, previous)
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.lexists(previous) and not os.path.lexists(directory):
            os.rename(previous, directory)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o644)


def dump(document):
    """Deterministic, reviewable JSON: sorted keys, one table row per line."""
    return _render(document, 0) + "\n"


def _is_flat(value):
    """Rendered on one line: a list of scalars, or a dict whose values are
    scalars or lists of scalars (an snmp_info_t row, a command, a map)."""
    scalar = lambda v: not isinstance(v, (dict, list))
    if isinstance(value, list):
        return all(map(scalar, value))
    if isinstance(value, dict):
        return all(scalar(v) or (isinstance(v, list) and all(map(scalar, v))) for v in value.values())
    return True


def _render(value, depth):
    """Indented JSON whose flat containers stay on one line, so a
    regeneration diff reads row by row."""
    if _is_flat(value):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_render(value[k], depth + 1)}"
                 for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + _render(v, depth + 1) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m infrapower.tables.generate",
        description="Generate fence_snmp_pdu OID tables from NUT snmp-ups sources.",
    )
    parser.add_argument("--nut-source", required=True, metavar="DIR",
                        help="NUT source tree (containing drivers/*-mib.c)")
    parser.add_argument("--out", metavar="TABLEDIR",
                        help="the table directory to write, e.g. agents/fence_snmp_pdu/tables/nut-master "
                             "(default: the whole document on standard output)")
    parser.add_argument("--nut-version", help="NUT version, when DIR is not a git work tree")
    parser.add_argument("--nut-commit", help="NUT commit sha, when DIR is not a git work tree")
    args = parser.parse_args(argv)

    try:
        document = build_document(args.nut_source, args.nut_version, args.nut_commit)
        if args.out:
            write_tables(document, args.out)
        else:
            sys.stdout.write(dump(document))
    except (GenerateError, OSError) as exc:
        print(f"infrapower tables generate: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
