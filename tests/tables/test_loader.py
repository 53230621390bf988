"""The loader: one directory per NUT version, a table read only when looked up."""

import configparser
import glob
import json
import os
import shutil
import subprocess

import pytest

from infrapower import tables
from infrapower.tables import generate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE_DIR = os.path.join(REPO, "agents", "fence_snmp_pdu", "tables")
NUT_MASTER = os.path.join(TABLE_DIR, "nut-master")
# The format-1 single files as last committed (git blobs): the directories
# must re-assemble to them byte for byte.
FORMAT_1_BLOBS = {
    "nut-2.8.0": "daad3bc13a535eda4274d4641f0144539a9e4011",
    "nut-master": "f5fff1f3830cfd8b7c5d742973a6ec93afa571ea",
}


@pytest.fixture
def copy_of_master(tmp_path):
    """A writable copy of nut-master to damage."""
    directory = tmp_path / "nut-master"
    shutil.copytree(NUT_MASTER, directory)
    return directory


def _one_line(error):
    message = str(error)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_load_parses_the_index_and_reads_only_the_tables_looked_up():
    document = tables.load()
    assert document["format"] == 2 and "table_names" not in document
    looked_up = document["tables"]
    assert looked_up.read_names() == []
    # Names, membership, len and the mappings need no table file.
    assert "eaton_marlin_mib" in looked_up and "nothing_mib" not in looked_up
    assert len(looked_up) == len(list(looked_up)) == len({m["table"] for m in document["mappings"]})
    mapping = tables.find_by_name(document, "apc_pdu")
    assert looked_up.read_names() == []
    table = looked_up[mapping["table"]]
    assert table["outlets"]["switched_by_status"]["on"] == 1
    assert looked_up.read_names() == ["apc_pdu_mib"]
    assert looked_up["apc_pdu_mib"] is table  # read once
    assert looked_up.get("nothing_mib") is None
    with pytest.raises(KeyError):
        looked_up["nothing_mib"]


def test_a_table_directory_with_only_the_table_used_is_enough(copy_of_master):
    """The agent opens index.json and its table's file, nothing else."""
    for path in copy_of_master.iterdir():
        if path.name not in ("index.json", "apc_pdu_mib.json"):
            path.unlink()
    document = tables.load(str(copy_of_master))
    assert tables.find_by_sysoid(document, ".1.3.6.1.4.1.318.1.3.4.5")["table"] == "apc_pdu_mib"
    assert document["tables"]["apc_pdu_mib"]["outlets"]["status_oid"]


def test_a_missing_table_file_is_one_error_line_naming_it(copy_of_master):
    (copy_of_master / "eaton_marlin_mib.json").unlink()
    document = tables.load(str(copy_of_master))
    with pytest.raises(tables.TableError) as error:
        document["tables"]["eaton_marlin_mib"]
    message = _one_line(error.value)
    assert str(copy_of_master / "eaton_marlin_mib.json") in message and "No such file" in message


@pytest.mark.parametrize("text", ['{"entries": [', "[]", '{"outlets": {}}'])
def test_a_corrupt_table_file_is_one_error_line_naming_it(copy_of_master, text):
    (copy_of_master / "eaton_marlin_mib.json").write_text(text)
    document = tables.load(str(copy_of_master))
    with pytest.raises(tables.TableError) as error:
        document["tables"]["eaton_marlin_mib"]
    assert str(copy_of_master / "eaton_marlin_mib.json") in _one_line(error.value)
    assert document["tables"]["apc_pdu_mib"]  # the others still load


@pytest.mark.parametrize("change, message", [
    (lambda index: index.update(format=1), "is format 1 OID tables, this infrapower reads format 2"),
    (lambda index: index.update(format=3), "is format 3 OID tables"),
    (lambda index: index.pop("table_names"), "has no valid table_names list"),
    (lambda index: index.update(table_names=["../../etc/passwd"]), "has no valid table_names list"),
    (lambda index: index["table_names"].remove("apc_pdu_mib"), "mappings use tables it does not list: apc_pdu_mib"),
    (lambda index: index.pop("mappings"), "is not an OID table index"),
])
def test_an_index_the_loader_cannot_read_is_one_error_line(copy_of_master, change, message):
    path = copy_of_master / "index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))
    with pytest.raises(tables.TableError) as error:
        tables.load(str(copy_of_master))
    assert message in _one_line(error.value) and str(path) in str(error.value)


def test_a_format_1_file_is_refused_in_one_line(tmp_path):
    single = tmp_path / "nut-master.json"
    single.write_text(json.dumps({"format": 1, "mappings": [], "tables": {}}))
    with pytest.raises(tables.TableError) as error:
        tables.load(str(single))
    assert "is format 1 OID tables" in _one_line(error.value)


def test_load_takes_the_directory_or_its_index():
    by_index = tables.load(os.path.join(NUT_MASTER, "index.json"))
    assert by_index["mappings"] == tables.load(NUT_MASTER)["mappings"]
    assert by_index["tables"]["apc_pdu_mib"] == tables.load(NUT_MASTER)["tables"]["apc_pdu_mib"]


def test_round_trip_of_a_generated_document(tmp_path):
    master = tables.load(NUT_MASTER)
    document = json.loads(generate.dump(dict(master, tables=dict(master["tables"]))))
    generate.write_tables(document, str(tmp_path / "nut-x"))
    loaded = tables.load(str(tmp_path / "nut-x"))
    assert dict(loaded, tables=dict(loaded["tables"])) == document


@pytest.mark.parametrize("name", sorted(FORMAT_1_BLOBS))
def test_directories_reassemble_byte_for_byte_to_the_format_1_files(name):
    """The conversion from one file per version changed no byte of data."""
    try:
        old = subprocess.run(["git", "-C", REPO, "cat-file", "blob", FORMAT_1_BLOBS[name]],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history here (a copy of the tree)")
    loaded = tables.load(os.path.join(TABLE_DIR, name))
    assert generate.dump(dict(loaded, tables=dict(loaded["tables"]), format=1)) == old


def test_table_paths_directories_with_an_index_oldest_first_checkout_first(tmp_path, monkeypatch):
    checkout, installed = tmp_path / "checkout", tmp_path / "share"
    for directory, versions in ((checkout, ("2.8.0", "master")), (installed, ("2.10.1", "2.8.0", "master"))):
        for version in versions:
            (directory / f"nut-{version}").mkdir(parents=True)
            (directory / f"nut-{version}" / "index.json").write_text("{}")
    (installed / "nut-2.9.0").mkdir()  # no index.json: not tables
    (installed / "nut-2.7.4.json").write_text("{}")  # a format-1 leftover
    monkeypatch.setattr(tables, "_search_dirs", lambda: [str(checkout), str(installed)])
    assert tables.table_paths() == [str(checkout / "nut-2.8.0"), str(installed / "nut-2.10.1"),
                                    str(checkout / "nut-master")]
    assert tables.default_path() == str(checkout / "nut-master")
    assert tables.path_for_version("2.10.1") == str(installed / "nut-2.10.1")
    assert tables.path_for_version("2.9.0") is None
    monkeypatch.setattr(tables, "_search_dirs", lambda: [str(tmp_path / "nowhere")])
    with pytest.raises(tables.TableError) as error:
        tables.default_path()
    assert "no nut-*/index.json OID tables found in" in _one_line(error.value)


def test_every_committed_directory_is_packaged():
    """setup.cfg's data_files name each version's directory (setuptools
    globs files, not trees): a new NUT version needs its line."""
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    data_files = config["options.data_files"]
    packaged = {os.path.basename(target): value.strip() for target, value in data_files.items()
                if target.startswith("share/fence-agents-infrapower/tables/")}
    committed = sorted(os.path.basename(p) for p in glob.glob(os.path.join(TABLE_DIR, "nut-*"))
                       if os.path.isfile(os.path.join(p, "index.json")))
    assert sorted(packaged) == committed
    for name in committed:
        assert packaged[name] == f"agents/fence_snmp_pdu/tables/{name}/*.json"


@pytest.mark.parametrize("name", ["nut-2.8.0", "nut-master"])
def test_outlet_views_in_the_index_repeat_the_tables(name):
    """index.json's outlet_views are the tables' own outlets views cut to
    OUTLET_VIEW_KEYS (derived by the generator's split, never by hand)."""
    directory = os.path.join(TABLE_DIR, name)
    with open(os.path.join(directory, "index.json"), encoding="utf-8") as handle:
        views = json.load(handle)["outlet_views"]
    document = tables.load(directory)
    for table_name in document["tables"]:
        outlets = document["tables"][table_name].get("outlets") or {}
        if outlets.get("status_oid"):
            assert views[table_name] == {key: outlets.get(key) for key in tables.OUTLET_VIEW_KEYS}
        else:
            assert table_name not in views
    fresh = tables.load(directory)["tables"]
    assert fresh.outlets("apc_pdu_mib")["status_oid"] and fresh.outlets("ietf_mib") == {}
    assert fresh.read_names() == []
