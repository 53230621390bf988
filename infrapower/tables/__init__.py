"""fence_snmp_pdu's vendor knowledge: OID tables generated from NUT sources.

The JSON files are produced by :mod:`infrapower.tables.generate` from the
``drivers/*-mib.c`` mapping tables of Network UPS Tools' snmp-ups driver and
committed under ``agents/fence_snmp_pdu/tables/``.  This module only loads
them; it is cheap to import (stdlib ``json`` and ``os``, no work at import
time) because every fence agent run imports it.
"""

import json
import os
import re
import sys

from infrapower.errors import InfrapowerError
from infrapower.snmp.oid import normalise_oid

__all__ = ["TableError", "default_path", "find_by_name", "find_by_sysoid", "load", "mapping_names", "mappings_by_sysoid",
           "table_paths"]

# Preferred default: NUT master describes the most hardware.
DEFAULT_NAME = "nut-master.json"
_TABLE_FILE = re.compile(r"^nut-(.+)\.json$")


class TableError(InfrapowerError):
    """No table file found, or a file that is not a table document."""


def _search_dirs():
    """Where table files live, first match wins per file name: the source
    checkout's agents/fence_snmp_pdu/tables/, then the installed copy under
    <prefix>/share/fence-agents-infrapower/tables/ (setup.cfg data_files)."""
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return [
        os.path.join(repo, "agents", "fence_snmp_pdu", "tables"),
        os.path.join(sys.prefix, "share", "fence-agents-infrapower", "tables"),
    ]


def _version_key(filename):
    """Sort key: numeric NUT versions ascending; "master" newest of all."""
    label = _TABLE_FILE.match(filename).group(1)
    if label == "master":
        return (1, ())
    return (0, tuple(int(part) for part in re.findall(r"\d+", label)))


def table_paths():
    """All table files found, oldest NUT first (first directory wins per name)."""
    found = {}
    for directory in _search_dirs():
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if _TABLE_FILE.match(name) and name not in found:
                found[name] = os.path.join(directory, name)
    return [found[name] for name in sorted(found, key=_version_key)]


def default_path():
    """The newest table file (nut-master.json when present)."""
    paths = table_paths()
    if not paths:
        raise TableError(f"no nut-*.json table file found in {', '.join(_search_dirs())}")
    return paths[-1]


def load(path=None):
    """Load one table document (default: :func:`default_path`)."""
    path = path or default_path()
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise TableError(f"cannot load OID table {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != 1 or "mappings" not in document:
        raise TableError(f"{path} is not a format-1 OID table")
    return document


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
