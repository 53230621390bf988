"""fence_snmp_pdu's OID tables (issue 18): what loading them costs an agent.

Ours is the loader as it is (infrapower.tables.load(): index.json, then
the one table the mapping uses, read on lookup); the peer is the layout
before it, one JSON document per NUT version with every table inline,
re-assembled from the same directory into a temporary file and parsed
with json.load, as the agent did.  Both look up the table of one mapping
(eaton_epdu: Eaton's Marlin, the largest outlet table) and read its
outlets view.

Two shapes: one load per process (as an agent run: interpreter start and
imports included, the same on both sides), and 100 loads in one process,
where the load itself is nearly all of the time.  Both run the checkout's
package (PYTHONPATH) on /usr/bin/python3.  Targets: an agent run is not
slower (the ~3 ms of CPU saved is ~10% of a 26 ms process, within this
machine's noise under load), and the load itself takes under 0.3x (in
process, load() + the Marlin table is ~0.4 CPU ms against ~3.5).

    python3 bench/bench.py bench/cases_tables.py
"""

import contextlib
import os
import tempfile
from pathlib import Path

from bench import Case

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/usr/bin/python3"
MAPPING = "eaton_epdu"

OURS = """
from infrapower import tables
for _ in range({loads}):
    document = tables.load()
    document["tables"][tables.find_by_name(document, {mapping!r})["table"]]["outlets"]
"""

PEER = """
import json
from infrapower import tables
for _ in range({loads}):
    with open({path!r}, encoding="utf-8") as handle:
        document = json.load(handle)
    document["tables"][tables.find_by_name(document, {mapping!r})["table"]]["outlets"]
"""


@contextlib.contextmanager
def session():
    """The newest tables as one format-1 file (every table inline)."""
    from infrapower import tables
    from infrapower.tables import generate

    loaded = tables.load()
    with tempfile.TemporaryDirectory(prefix="bench-tables-") as directory:
        single = Path(directory) / "single.json"
        single.write_text(generate.dump(dict(loaded, tables=dict(loaded["tables"]), format=1)), encoding="utf-8")
        yield single


def cases(context=None):
    env = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def case(name, loads, **options):
        return Case(name, ours=[PYTHON, "-c", OURS.format(loads=loads, mapping=MAPPING)],
                    peer=[PYTHON, "-c", PEER.format(loads=loads, mapping=MAPPING, path=str(context))],
                    env=env, interleave=True, **options)

    return [
        case(f"tables: load() + {MAPPING}'s table, one per process (an agent's share)", 1, runs=20, warmup=3, target=1.0),
        case(f"tables: load() + {MAPPING}'s table, 100 in one process", 100, runs=10, warmup=2, target=0.3),
    ]
