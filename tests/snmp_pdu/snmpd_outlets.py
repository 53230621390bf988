#!/usr/bin/python3
"""An APC rack PDU's outlet table (PowerNet-MIB sPDUOutletControl, the
apc_pdu mapping NUT's snmp-ups uses) served to net-snmp's snmpd through
`pass_persist`: snmpd speaks SNMP, this script only answers get, getnext
and set for the subtree.  Stdlib only; run by snmpd as
`pass_persist .1.3.6.1.4.1.318.1.1.4 snmpd_outlets.py STATE.json`.

The outlets live in STATE.json ({"outlets": {"1": {"name", "on"}}}), so
tests read what a SET did, and the state survives an snmpd restart.
"""

import json
import os
import sys

PREFIX = ".1.3.6.1.4.1.318.1.1.4"
MODEL = PREFIX + ".1.4.0"  # rPDUIdentModelNumber: snmp-ups' confirmation of the mapping
COUNT = PREFIX + ".4.1.0"  # sPDUOutletConfigTableSize
INDEX, CONTROL, NAME = PREFIX + ".4.2.1.1", PREFIX + ".4.2.1.3", PREFIX + ".4.2.1.4"
ON, OFF = 1, 2  # sPDUOutletCtl: outletOn(1), outletOff(2)


def load(path):
    with open(path) as stream:
        return json.load(stream)


def save(path, state):
    temporary = f"{path}.tmp"
    with open(temporary, "w") as stream:
        json.dump(state, stream)
    os.replace(temporary, path)


def values(state):
    """{oid: (type, value)} of the whole subtree."""
    outlets = state["outlets"]
    table = {MODEL: ("string", "AP7900"), COUNT: ("integer", len(outlets))}
    for number, outlet in outlets.items():
        table[f"{INDEX}.{number}"] = ("integer", int(number))
        table[f"{CONTROL}.{number}"] = ("integer", ON if outlet["on"] else OFF)
        table[f"{NAME}.{number}"] = ("string", outlet["name"])
    return table


def key(oid):
    return tuple(int(part) for part in oid.strip(".").split("."))


def answer(oid, table):
    kind, value = table[oid]
    return f"{oid}\n{kind}\n{value}\n"


def serve(path, lines, out):
    for line in lines:
        command = line.strip()
        if not command:
            continue  # snmpd sends a blank line after a set's value line
        if command == "PING":
            out.write("PONG\n")
        elif command in ("get", "getnext"):
            oid = "." + next(lines).strip().lstrip(".")
            table = values(load(path))
            if command == "get":
                out.write(answer(oid, table) if oid in table else "NONE\n")
            else:
                later = sorted((o for o in table if key(o) > key(oid)), key=key)
                out.write(answer(later[0], table) if later else "NONE\n")
        elif command == "set":
            oid = "." + next(lines).strip().lstrip(".")
            kind, _, raw = next(lines).strip().partition(" ")
            out.write(set_value(path, oid, kind, raw) + "\n")
        else:
            out.write("NONE\n")
        out.flush()


def set_value(path, oid, kind, raw):
    state = load(path)
    number = oid[len(CONTROL) + 1 :] if oid.startswith(CONTROL + ".") else None
    if number not in state["outlets"]:
        return "not-writable"
    if kind != "integer":
        return "wrong-type"
    if raw not in (str(ON), str(OFF)):
        return "wrong-value"
    state["outlets"][number]["on"] = raw == str(ON)
    save(path, state)
    return "DONE"


if __name__ == "__main__":
    serve(sys.argv[1], iter(sys.stdin), sys.stdout)
