"""fence_snmp_pdu's vendor knowledge: OID tables generated from NUT sources.

The tables are produced by :mod:`infrapower.tables.generate` from the
``drivers/*-mib.c`` mapping tables of Network UPS Tools' snmp-ups driver and
committed under ``agents/fence_snmp_pdu/tables/``: one directory per NUT
version (``nut-<version>/``) holding ``index.json`` (header and mappings)
and one ``<table>.json`` per table.  This module only loads them; it is
cheap to import (stdlib ``json``, ``os``, ``re``, no work at import time)
because every fence agent run imports it, and a load parses the index
alone: a table file is read when that table is first looked up, so an
agent pays for the one vendor it talks to, not for all of them.
"""

import json
import os
import re
import sys
from collections.abc import Mapping

from infrapower.errors import InfrapowerError
from infrapower.snmp.oid import normalise_oid

__all__ = ["TableError", "Tables", "default_path", "find_by_name", "find_by_sysoid", "load", "mapping_names",
           "mappings_by_sysoid", "path_for_version", "table_paths"]

# The document shape this loader reads (infrapower.tables.generate writes
# it): 2 is a directory of index.json plus a file per table; 1 was one file.
FORMAT = 2
# What index.json repeats of each table's outlets view (outlet_views):
# enough to guess a plug's state and a PDU's outlet count without the table.
OUTLET_VIEW_KEYS = ("status_oid", "index_base", "count_oid", "daisy")
INDEX_FILE = "index.json"
# Preferred default: NUT master describes the most hardware.
DEFAULT_NAME = "nut-master"
_TABLE_DIR = re.compile(r"^nut-(.+)$")
_TABLE_NAME = re.compile(r"^[A-Za-z_]\w*$")


class TableError(InfrapowerError):
    """No tables found, or a file that is not what the generator writes."""


class Tables(Mapping):
    """A table directory's tables by name, read from <name>.json the first
    time each is looked up (then kept).  Iterating, len() and `in` use the
    index's names and read nothing; .values()/.items() read every table."""

    def __init__(self, directory, names, outlet_views=None):
        self.directory = directory
        self._names = tuple(names)
        self._known = frozenset(self._names)
        self._read = {}
        self._outlet_views = outlet_views  # None: an index without them (read the tables)

    def outlets(self, name):
        """The part of table `name`'s outlets view that guesses need
        (OUTLET_VIEW_KEYS), from the index when it has it: a v2c agent
        guesses every mapping's outlet OIDs, and reading each mapping's
        table for that would cost what one file per table saves."""
        if self._outlet_views is not None and name in self._known:
            return self._outlet_views.get(name) or {}  # absent: a table without outlets
        return self[name].get("outlets") or {}

    def __getitem__(self, name):
        table = self._read.get(name)
        if table is not None:
            return table
        if name not in self._known:
            raise KeyError(name)
        path = os.path.join(self.directory, name + ".json")
        table = _read_json(path)
        if not isinstance(table, dict) or not isinstance(table.get("entries"), list):
            raise TableError(f"{path} is not an OID table (regenerate: infrapower tables generate)")
        # setdefault: threads sharing a document (the scan) get one copy.
        return self._read.setdefault(name, table)

    def __contains__(self, name):
        return name in self._known

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def read_names(self):
        """The names of the tables read so far."""
        return sorted(self._read)

    def __repr__(self):
        return f"Tables({self.directory!r}, {len(self._names)} tables, {len(self._read)} read)"


def _search_dirs():
    """Where table directories live, first match wins per name: the source
    checkout's agents/fence_snmp_pdu/tables/, then the installed copy under
    <prefix>/share/fence-agents-infrapower/tables/ (setup.cfg data_files)."""
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return [
        os.path.join(repo, "agents", "fence_snmp_pdu", "tables"),
        os.path.join(sys.prefix, "share", "fence-agents-infrapower", "tables"),
    ]


def _version_key(directory_name):
    """Sort key: numeric NUT versions ascending; "master" newest of all."""
    label = _TABLE_DIR.match(directory_name).group(1)
    if label == "master":
        return (1, ())
    return (0, tuple(int(part) for part in re.findall(r"\d+", label)))


def table_paths():
    """Every table directory found (nut-<version>/ with an index.json),
    oldest NUT first; the first search directory wins per name."""
    found = {}
    for directory in _search_dirs():
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if _TABLE_DIR.match(name) and name not in found and os.path.isfile(os.path.join(path, INDEX_FILE)):
                found[name] = path
    return [found[name] for name in sorted(found, key=_version_key)]


def path_for_version(version):
    """The table directory of NUT `version` ("2.8.0", "master"), else None."""
    wanted = f"nut-{version}"
    return next((path for path in table_paths() if os.path.basename(path) == wanted), None)


def default_path():
    """The newest table directory (nut-master when present)."""
    paths = table_paths()
    if not paths:
        raise TableError(f"no nut-*/{INDEX_FILE} OID tables found in {', '.join(_search_dirs())}")
    return paths[-1]


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TableError(f"cannot load OID table {path}: {reason}") from None


def load(path=None):
    """The table document of one directory (default: :func:`default_path`;
    its index.json names it too): format, generator, nut, mappings as
    written, and "tables" a :class:`Tables` that reads each table on first
    lookup."""
    path = path or default_path()
    if os.path.isdir(path):
        directory, index_path = path, os.path.join(path, INDEX_FILE)
    else:
        directory, index_path = os.path.dirname(path), path
    index = _read_json(index_path)
    if not isinstance(index, dict):
        raise TableError(f"{index_path} is not an OID table index")
    if index.get("format") != FORMAT:
        raise TableError(f"{index_path} is format {index.get('format')!r} OID tables, this infrapower reads "
                         f"format {FORMAT}: install the tables of this version, or regenerate them "
                         "(infrapower tables generate)")
    if not isinstance(index.get("mappings"), list):
        raise TableError(f"{index_path} is not an OID table index (no mappings)")
    names = index.pop("table_names", None)
    views = index.pop("outlet_views", None)
    if views is not None and not (isinstance(views, dict) and all(isinstance(v, dict) for v in views.values())):
        raise TableError(f"{index_path} has an invalid outlet_views map")
    if not isinstance(names, list) or not all(isinstance(n, str) and _TABLE_NAME.match(n) for n in names):
        raise TableError(f"{index_path} has no valid table_names list")
    missing = sorted({m.get("table") for m in index["mappings"]} - set(names), key=str)
    if missing:
        raise TableError(f"{index_path}: mappings use tables it does not list: {', '.join(map(str, missing))}")
    index["tables"] = Tables(directory, names, views)
    return index


def mapping_names(table=None):
    """Mapping names in snmp-ups' ``mibs=auto`` probe order, without repeats.

    Several mappings share a name (apc_pdu has three sysOIDs).
    """
    table = table if table is not None else load()
    names = []
    for mapping in table["mappings"]:
        if mapping["name"] not in names:
            names.append(mapping["name"])
    return names


def mappings_by_sysoid(table, sysoid):
    """Every mapping (probe order) whose sysOID equals ``sysoid``.

    Like snmp-ups' first pass, this is an exact match; the leading dot is
    optional on either side.  Callers should then confirm with the
    mapping's ``model_oid`` (when set), as snmp-ups does.
    """
    if not sysoid or not str(sysoid).strip("."):
        return []
    wanted = normalise_oid(sysoid)
    return [mapping for mapping in table["mappings"] if mapping.get("sysoid") and normalise_oid(mapping["sysoid"]) == wanted]


def find_by_sysoid(table, sysoid):
    """The first of mappings_by_sysoid, else None."""
    found = mappings_by_sysoid(table, sysoid)
    return found[0] if found else None


def find_by_name(table, name):
    """The mapping called ``name`` (any case), else None."""
    return next((mapping for mapping in table["mappings"] if mapping["name"].lower() == str(name).lower()), None)
