"""The table generator: on a tiny synthetic NUT tree, then on the committed table directories."""

import json
import os
import re
import subprocess

import pytest

from infrapower import tables
from infrapower.tables import generate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE_DIR = os.path.join(REPO, "agents", "fence_snmp_pdu", "tables")
NUT_280 = os.path.join(TABLE_DIR, "nut-2.8.0")
NUT_MASTER = os.path.join(TABLE_DIR, "nut-master")
DEBIAN_SNMP_UPS = "/lib/nut/snmp-ups"

SNMP_UPS_H = """
#define SU_INFOSIZE 128
#define SU_OUTLET (1UL << 11)
#ifndef WITH_SNMP_LKP_FUN
# define WITH_SNMP_LKP_FUN 1
#endif
"""

SNMP_UPS_C = """
#include "snmp-ups.h"
static mib2nut_info_t *mib2nut[] = {
    &acme_switched,
    &acme_legacy,
    &chain_pdu,
    NULL
};
"""

# 2.8.0 style: plain braces, DO_* values from #defines, SU_CMD_OFFSET.
ACME_MIB_C = """
#include "acme-mib.h"
#define DO_OFF "2"
#define DO_ON  "1"
static info_lkp_t acme_status_info[] = {
    { 1, "on", NULL, NULL },
    { 2, "off", NULL, NULL },
    { 3, "pendingOff", NULL, NULL },
    { 4, "rebooting", NULL, NULL },
    { 5, "weird", NULL, NULL },
    { 0, NULL, NULL, NULL }
};
static info_lkp_t acme_legacy_info[] = {
    { 1, "on", NULL, NULL },
    { 2, "off", NULL, NULL },
    { 0, NULL, NULL, NULL }
};
static info_lkp_t unused_info[] = { { 7, "x", NULL, NULL }, { 0, NULL, NULL, NULL } };
static snmp_info_t acme_mib[] = {
    { "outlet.count", 0, 1, ACME_OID ".1.0", NULL, SU_FLAG_STATIC | SU_FLAG_OK, NULL },
#if WITH_UNMAPPED_DATA_POINTS
    { "outlet.%i.status", ST_FLAG_STRING, SU_INFOSIZE, ".9.9.%i", NULL, SU_OUTLET, NULL },
#endif
    { "outlet.%i.status", ST_FLAG_STRING, SU_INFOSIZE, NULL, "on", SU_OUTLET, &acme_status_info[0] },
    { "outlet.%i.status", ST_FLAG_STRING, SU_INFOSIZE, ACME_OID ".2.%i", NULL, SU_FLAG_OK | SU_OUTLET, &acme_status_info[0] },
    { "outlet.%i.status", ST_FLAG_STRING, SU_INFOSIZE, ACME_OID ".3.%i", NULL, SU_FLAG_OK | SU_OUTLET, &acme_status_info[0] },
    { "outlet.%i.load.off", 0, 1, ACME_OID ".4.%i.0", DO_OFF, SU_TYPE_CMD | SU_OUTLET | SU_CMD_OFFSET, NULL },
    { "outlet.%i.load.on", 0, 1, ACME_OID ".4.%i.0", DO_ON, SU_TYPE_CMD | SU_OUTLET | SU_CMD_OFFSET, NULL },
    { "outlet.%i.load.cycle", ST_FLAG_STRING, 1, ACME_OID ".5.%i", "reboot", SU_TYPE_CMD | SU_OUTLET, NULL },
    { NULL, 0, 0, NULL, NULL, 0, NULL }
};
static snmp_info_t acme_legacy_mib[] = {
    { "outlet.count", 0, 1, ".1.3.7.1.0", NULL, SU_FLAG_OK, NULL },
    { "outlet.%i.status", ST_FLAG_RW | ST_FLAG_STRING, SU_INFOSIZE, ".1.3.7.2.%i", NULL, SU_FLAG_OK | SU_OUTLET, &acme_legacy_info[0] },
    { NULL, 0, 0, NULL, NULL, 0, NULL }
};
mib2nut_info_t acme_switched = { "acme", "0.1", NULL, ACME_OID ".0.0", acme_mib, ACME_SYSOID, NULL };
mib2nut_info_t acme_legacy = { "acme", "0.1", NULL, NULL, acme_legacy_mib, NULL, NULL };
mib2nut_info_t acme_unlisted = { "unlisted", "0.1", NULL, NULL, acme_mib, ".1.3.6.1.4.1.9999", NULL };
"""

ACME_MIB_H = """
#include "main.h"
#include "snmp-ups.h"
#define ACME_OID ".1.3.6.1.4.1.4242"
#define ACME_SYSOID ACME_OID ".100"
"""

# master style: helper macros, daisy chain, LKP_FUN branches, groups.
CHAIN_MIB_C = """
#include "chain-mib.h"
#if WITH_SNMP_LKP_FUN
static info_lkp_t chain_count_info[] = {
    info_lkp_nuf_s2l(1, "dummy", chain_count_fun),
    info_lkp_sentinel
};
#endif
static info_lkp_t chain_status_info[] = {
    info_lkp_default(0, "off"),
    info_lkp_default(1, "on"),
    info_lkp_sentinel
};
static snmp_info_t chain_mib[] = {
#if WITH_SNMP_LKP_FUN
    snmp_info_default("device.count", 0, 1, ".1.3.5.1.1.0", "0", SU_FLAG_STATIC, &chain_count_info[0]),
#else
    snmp_info_default("device.count", 0, 1, ".1.3.5.1.2.%i", "1", SU_FLAG_STATIC, NULL),
#endif
    snmp_info_default("device.model", ST_FLAG_STRING, SU_INFOSIZE, ".1.3.5.1.3.%i", NULL, SU_FLAG_OK, NULL),
    snmp_info_default("outlet.count", 0, 1, ".1.3.5.2.1.%i", "0", SU_FLAG_STATIC | SU_FLAG_OK, NULL),
    snmp_info_default("outlet.%i.status", ST_FLAG_STRING, SU_INFOSIZE, ".1.3.5.6.%i.%i",
        NULL, SU_FLAG_OK | SU_OUTLET | SU_TYPE_DAISY_1, &chain_status_info[0]),
    snmp_info_default("outlet.%i.load.off", 0, 1, ".1.3.5.7.%i.%i", "0",
        SU_TYPE_CMD | SU_OUTLET | SU_TYPE_DAISY_1, NULL),
    snmp_info_default("outlet.%i.load.off.delay", 0, 1, ".1.3.5.7.%i.%i", NULL,
        SU_TYPE_CMD | SU_OUTLET | SU_TYPE_DAISY_1, NULL),
    snmp_info_default("outlet.group.count", 0, 1, ".1.3.5.3.%i", NULL, SU_FLAG_OK, NULL),
    snmp_info_default("outlet.group.%i.status", ST_FLAG_STRING, SU_INFOSIZE, ".1.3.5.8.%i.%i",
        NULL, SU_FLAG_OK | SU_OUTLET_GROUP | SU_TYPE_DAISY_2, &chain_status_info[0]),
    snmp_info_default("outlet.group.%i.load.on", 0, 1, ".1.3.5.9.%i.%i", "1",
        SU_TYPE_CMD | SU_OUTLET_GROUP | SU_TYPE_DAISY_2, NULL),
    snmp_info_sentinel
};
mib2nut_info_t chain_pdu = { "chain_pdu", "1.0", NULL, NULL, chain_mib, ".1.3.5", NULL };
"""


@pytest.fixture
def nut_tree(tmp_path):
    drivers = tmp_path / "drivers"
    drivers.mkdir()
    files = {
        "snmp-ups.h": SNMP_UPS_H, "snmp-ups.c": SNMP_UPS_C,
        "acme-mib.c": ACME_MIB_C, "acme-mib.h": ACME_MIB_H,
        "chain-mib.c": CHAIN_MIB_C, "chain-mib.h": '#include "snmp-ups.h"\n',
    }
    for name, text in files.items():
        (drivers / name).write_text(text)
    return str(tmp_path)


@pytest.fixture
def document(nut_tree):
    return generate.build_document(nut_tree, version="9.9.9", commit="abc")


def test_header_and_probe_order(document):
    assert document["format"] == tables.FORMAT == 2
    assert document["generator"] == "infrapower tables generate"
    assert document["nut"] == {"version": "9.9.9", "commit": "abc", "source": "networkupstools/nut"}
    assert [(m["name"], m["symbol"], m["table"], m["sysoid"], m["model_oid"], m["source_file"])
            for m in document["mappings"]] == [
        ("acme", "acme_switched", "acme_mib", ".1.3.6.1.4.1.4242.100", ".1.3.6.1.4.1.4242.0.0", "acme-mib.c"),
        ("acme", "acme_legacy", "acme_legacy_mib", None, None, "acme-mib.c"),
        ("chain_pdu", "chain_pdu", "chain_mib", ".1.3.5", None, "chain-mib.c"),
    ]
    # only tables a probed mapping uses
    assert sorted(document["tables"]) == ["acme_legacy_mib", "acme_mib", "chain_mib"]


def test_entries_drop_disabled_rows_and_lookups_are_those_used(document):
    acme = document["tables"]["acme_mib"]
    assert [e["oid"] for e in acme["entries"] if e["info"] == "outlet.%i.status"] == [
        None, ".1.3.6.1.4.1.4242.2.%i", ".1.3.6.1.4.1.4242.3.%i"]
    assert acme["lookups"] == {"acme_status_info": [[1, "on"], [2, "off"], [3, "pendingOff"],
                                                    [4, "rebooting"], [5, "weird"]]}


def test_outlet_view_first_oid_wins_with_alternatives_and_normalised_states(document):
    outlets = document["tables"]["acme_mib"]["outlets"]
    assert outlets["count_oid"] == ".1.3.6.1.4.1.4242.1.0"
    assert outlets["status_oid"] == ".1.3.6.1.4.1.4242.2.%i"
    assert outlets["status_oid_alternatives"] == [".1.3.6.1.4.1.4242.3.%i"]
    assert outlets["status_map"] == {"1": "on", "2": "off", "3": "pending_off", "4": "cycling", "5": "unknown"}
    assert outlets["status_raw"]["3"] == "pendingOff"
    assert outlets["commands"] == {
        "off": {"oid": ".1.3.6.1.4.1.4242.4.%i.0", "value": "2", "value_required": False,
                "set_type": "integer", "index_offset": 1, "daisy_position": None},
        "on": {"oid": ".1.3.6.1.4.1.4242.4.%i.0", "value": "1", "value_required": False,
               "set_type": "integer", "index_offset": 1, "daisy_position": None},
        "cycle": {"oid": ".1.3.6.1.4.1.4242.5.%i", "value": "reboot", "value_required": False,
                  "set_type": "string", "index_offset": 0, "daisy_position": None},
    }
    assert outlets["switched_by_status"] is None
    assert outlets["daisy"] is None and outlets["groups"] is None
    assert outlets["index_base"] == 1


def test_switched_by_status_when_no_commands(document):
    outlets = document["tables"]["acme_legacy_mib"]["outlets"]
    assert outlets["commands"] is None
    assert outlets["switched_by_status"] == {"oid": ".1.3.7.2.%i", "on": 1, "off": 2,
                                             "set_type": "integer", "daisy_position": None}


def test_daisy_chain_groups_and_lookup_fun_fallback(document):
    chain = document["tables"]["chain_mib"]
    # WITH_SNMP_LKP_FUN off: the #else device.count row, no function lookup
    assert [e["oid"] for e in chain["entries"] if e["info"] == "device.count"] == [".1.3.5.1.2.%i"]
    assert "chain_count_info" not in chain["lookups"]
    outlets = chain["outlets"]
    assert outlets["daisy"] == {"index": [1, 2], "device_count_oid": ".1.3.5.1.2.%i",
                                "device_count_method": "walk", "device_index_probe_oid": ".1.3.5.1.3.%i"}
    assert outlets["commands"]["off"]["daisy_position"] == 1
    assert outlets["commands"]["off_delay"]["value"] is None
    assert outlets["commands"]["off_delay"]["value_required"] is True
    groups = outlets["groups"]
    assert groups["count_oid"] == ".1.3.5.3.%i"
    assert groups["commands"]["on"] == {"oid": ".1.3.5.9.%i.%i", "value": "1", "value_required": False,
                                        "set_type": "integer", "index_offset": 0, "daisy_position": 2}


def test_output_is_deterministic_and_row_per_line(document, nut_tree):
    text = generate.dump(document)
    assert text == generate.dump(generate.build_document(nut_tree, version="9.9.9", commit="abc"))
    assert json.loads(text) == document
    row_lines = [line for line in text.splitlines() if '"info": "outlet.%i.load.on"' in line]
    assert len(row_lines) == 1 and row_lines[0].strip().startswith("{")


def test_main_writes_a_table_directory(nut_tree, tmp_path):
    out = tmp_path / "tables" / "nut-1.2"
    assert generate.main(["--nut-source", nut_tree, "--nut-version", "1.2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["acme_legacy_mib.json", "acme_mib.json", "chain_mib.json",
                                                      "index.json"]
    index = json.loads((out / "index.json").read_text())
    assert "tables" not in index and index["table_names"] == ["acme_legacy_mib", "acme_mib", "chain_mib"]
    assert tables.load(str(out))["nut"]["version"] == "1.2"
    # A regeneration replaces the directory whole: a table NUT dropped leaves no file behind.
    (out / "gone_mib.json").write_text("{}")
    assert generate.main(["--nut-source", nut_tree, "--nut-version", "1.3", "--out", str(out)]) == 0
    assert not (out / "gone_mib.json").exists() and tables.load(str(out))["nut"]["version"] == "1.3"
    assert [p.name for p in out.parent.iterdir()] == ["nut-1.2"]


def test_main_without_out_prints_the_whole_document(nut_tree, capsys):
    assert generate.main(["--nut-source", nut_tree, "--nut-version", "1.2"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["tables"]) == ["acme_legacy_mib", "acme_mib", "chain_mib"]


@pytest.mark.parametrize("setup, message", [
    ("missing", "does not look like a NUT source tree"),
    ("no-version", "pass --nut-version"),
    ("undefined-mapping", "no *-mib.c defines it"),
])
def test_main_reports_one_clear_error_line(nut_tree, tmp_path, capsys, setup, message):
    args = ["--nut-source", nut_tree, "--nut-version", "1"]
    if setup == "missing":
        args = ["--nut-source", str(tmp_path / "nowhere"), "--nut-version", "1"]
    elif setup == "no-version":
        args = ["--nut-source", nut_tree]
    else:
        path = os.path.join(nut_tree, "drivers", "snmp-ups.c")
        with open(path, "a") as handle:
            handle.write("static mib2nut_info_t *mib2nut[] = { &ghost, NULL };\n")
        os.rename(path, path)
    if setup == "undefined-mapping":
        # the appended array replaces nothing: rewrite snmp-ups.c instead
        with open(os.path.join(nut_tree, "drivers", "snmp-ups.c"), "w") as handle:
            handle.write("static mib2nut_info_t *mib2nut[] = { &ghost, NULL };\n")
    assert generate.main(args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_version_from_git_work_tree(nut_tree):
    def git(*args):
        subprocess.run(["git", "-C", nut_tree] + list(args), check=True, capture_output=True)
    try:
        git("init", "-q")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
        git("-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", "v2.8.0", "-m", "v2.8.0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not usable here")
    version, commit = generate.detect_nut_version(nut_tree)
    assert version == "2.8.0" and re.match(r"^[0-9a-f]{40}$", commit)


# --------------------------------------------------------------------------
# The committed tables

# mapping name -> files it must be switchable in
SWITCHABLE = {
    "eaton_epdu": (NUT_280, NUT_MASTER),
    "eaton_pdu_nlogic": (NUT_MASTER,),
    "pulizzi_switched1": (NUT_280, NUT_MASTER),
    "pulizzi_switched2": (NUT_280, NUT_MASTER),
    "aphel_revelation": (NUT_280, NUT_MASTER),
    "emerson_avocent_pdu": (NUT_280, NUT_MASTER),
    "hpe_epdu": (NUT_280, NUT_MASTER),
    "hpe_pdu3_cis": (NUT_MASTER,),
    "raritan": (NUT_280, NUT_MASTER),
    "raritan-px2": (NUT_280, NUT_MASTER),
    "baytech": (NUT_280, NUT_MASTER),
    "baytech_rpc3nc": (NUT_MASTER,),
    "apc_pdu": (NUT_280, NUT_MASTER),
    "cpqpower": (NUT_280, NUT_MASTER),
    "pw": (NUT_280,),
    "pxgx_ups": (NUT_280,),
    "eaton_pw_nm2": (NUT_MASTER,),
    "eaton_pxg_ups": (NUT_MASTER,),
}


def _committed(path):
    if not os.path.exists(path):
        pytest.fail("%s is not generated" % path)
    return tables.load(path)


def _outlets_of(document, name):
    mapping = next(m for m in document["mappings"] if m["name"] == name)
    return document["tables"][mapping["table"]]["outlets"]


@pytest.mark.parametrize("name, path", [(n, p) for n, paths in sorted(SWITCHABLE.items()) for p in paths])
def test_committed_tables_cover_switched_pdus(name, path):
    outlets = _outlets_of(_committed(path), name)
    assert outlets is not None, name
    commands = outlets["commands"] or {}
    assert ("off" in commands and "on" in commands) or outlets["switched_by_status"], name
    assert outlets["status_oid"] and outlets["status_map"], name


@pytest.mark.parametrize("path", [NUT_280, NUT_MASTER])
def test_apc_pdu_is_switched_by_status(path):
    outlets = _outlets_of(_committed(path), "apc_pdu")
    assert outlets["commands"] is None
    assert outlets["switched_by_status"] == {
        "oid": ".1.3.6.1.4.1.318.1.1.4.4.2.1.3.%i", "on": 1, "off": 2,
        "set_type": "integer", "daisy_position": None}


def test_committed_marlin_is_a_daisy_chain():
    outlets = _outlets_of(_committed(NUT_MASTER), "eaton_epdu")
    assert outlets["daisy"]["index"] == 1
    assert outlets["commands"]["off"]["oid"].count("%i") == 2


def test_pulizzi_commands_carry_the_offset():
    outlets = _outlets_of(_committed(NUT_280), "pulizzi_switched1")
    assert {c["index_offset"] for c in outlets["commands"].values()} == {1}


def test_committed_files_are_regeneration_stable(tmp_path):
    for path in (NUT_280, NUT_MASTER):
        loaded = tables.load(path)
        rewritten = tmp_path / os.path.basename(path)
        generate.write_tables(dict(loaded, tables=dict(loaded["tables"])), str(rewritten))
        names = sorted(os.listdir(path))
        assert names == sorted(os.listdir(rewritten)), path
        for name in names:
            with open(os.path.join(path, name), encoding="utf-8") as committed:
                assert committed.read() == (rewritten / name).read_text(encoding="utf-8"), (path, name)


def test_loader_defaults_to_master_and_finds_by_sysoid():
    document = tables.load()
    assert document["nut"]["commit"] == _committed(NUT_MASTER)["nut"]["commit"]
    assert tables.find_by_sysoid(document, "1.3.6.1.4.1.318.1.3.4.5")["symbol"] == "apc_pdu_rpdu2"
    assert tables.find_by_sysoid(document, ".1.3.6.1.4.1.1") is None
    names = tables.mapping_names(document)
    assert names.count("apc_pdu") == 1 and "eaton_epdu" in names


def _debian_list():
    if not os.access(DEBIAN_SNMP_UPS, os.X_OK):
        pytest.skip("%s is absent: install Debian's nut-snmp to cross-check" % DEBIAN_SNMP_UPS)
    proc = subprocess.run([DEBIAN_SNMP_UPS, "-s", "x", "-x", "port=127.0.0.1", "-x", "mibs=--list"],
                          capture_output=True, text=True, timeout=30)
    rows = []
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 5 and fields[0].strip().isdigit():
            rows.append(tuple(f.strip() for f in fields[1:]))
    assert rows, "no mapping rows in snmp-ups output:\n" + proc.stdout + proc.stderr
    return rows


def test_nut_280_matches_debian_snmp_ups_list():
    shown = lambda value: "<NULL>" if value is None else value
    expected = [(m["name"], shown(m["version"]), shown(m["sysoid"]), shown(m["model_oid"]))
                for m in _committed(NUT_280)["mappings"]]
    assert expected == _debian_list()
