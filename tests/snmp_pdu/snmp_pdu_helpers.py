"""What the fence_snmp_pdu tests share besides fixtures: labs of chosen
topologies, one simulated PDU per switched NUT mapping, running the
installed agent, and the checks every failure must pass."""

import os
import subprocess

import processes

from infrapower import lab as lab_module
from infrapower import tables
from infrapower.lab import pdus
from infrapower.lab.rack import default_topology
from infrapower.snmp.pdu import switched_mapping_names

AGENT = os.environ.get("FENCE_SNMP_PDU", "/usr/sbin/fence_snmp_pdu")


def topology_with(**extra_pdus):
    """The spec's rack plus more PDUs (each fed by ups1)."""
    topology = default_topology()
    for name, pdu in extra_pdus.items():
        topology["pdus"][name] = dict({"units": 1, "ups": "ups1", "switch_delay": 0.0}, **pdu)
    return topology


def running_lab(directory, topology, components=("pdus",)):
    return processes.running_lab(directory, topology=topology, components=components, ready_seconds=60)


def reset(lab):
    for name in lab.rack.topology()["pdus"]:
        pdus.set_silent(lab, name, False)

    lab.rack.reset()


def run_agent(lab, pdu, *args, stdin=None, community="private", timeout=60):
    """fence_snmp_pdu against one lab PDU; options as argv or, with
    `stdin`, as Pacemaker passes them."""
    if stdin is not None:
        text = "".join(f"{key}={value}\n" for key, value in dict(
            {"ip": "127.0.0.1", "ipport": lab.port(f"snmp:{pdu}")}, **stdin).items())
        return subprocess.run([AGENT], input=text, capture_output=True, text=True, timeout=timeout)
    base = [AGENT, "--ip=127.0.0.1", f"--ipport={lab.port(f'snmp:{pdu}')}"]
    if community is not None:
        base.append(f"--community={community}")
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=timeout)


def outlet_on(lab, outlet):
    return lab.rack.read()["outlets"][outlet]["on"]


def assert_one_line_error(result):
    """Exit 1, one ERROR line, never a traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- one simulated PDU per switched mapping --------------------------------------

DOCUMENT = tables.load()
# The first mapping of each name (several share one, by sysObjectID).
MAPPINGS = {}
for _mapping in DOCUMENT["mappings"]:
    if _mapping["name"] in switched_mapping_names(DOCUMENT) and _mapping.get("sysoid"):
        MAPPINGS.setdefault(_mapping["name"], _mapping)
PDU_NAMES = {name: "m_" + name.replace("-", "_") for name in MAPPINGS}
# The mappings Debian's snmp-ups (NUT 2.8.0) has.
NUT_280 = {m["name"] for m in tables.load(tables.path_for_version("2.8.0"))["mappings"]}


def mappings_topology(names=None):
    """The spec's rack plus a 4-outlet PDU of every switched mapping (or of `names`)."""
    return topology_with(**{
        PDU_NAMES[name]: {"mapping": name, "sysoid": MAPPINGS[name]["sysoid"], "outlets": 4}
        for name in (names or MAPPINGS)
    })
