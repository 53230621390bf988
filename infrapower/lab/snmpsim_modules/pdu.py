# snmpsim variation module: the outlets of a simulated PDU.
#
# snmpsim exec()s this file and calls init/variate/shutdown with
# `moduleContext` in its globals.  Every record of a lab PDU's data file
# names this module, and its value is a key into the PDU's profile
# (written by infrapower.lab.pdus), so static values, outlet status and
# outlet commands all go through here: a SET on anything read-only gets
# notWritable, a wrong value wrongValue, as on real PDUs.
#
# Outlet state is the rack's (infrapower.lab.rack), shared with NUT's
# test driver and the BMCs, so a command here cuts power there.

import json
import os
import time

from pysnmp.smi import error as smi_error

from snmpsim.grammar.snmprec import SnmprecGrammar

# How long an outlet with the "silent" fault holds its request before
# answering: far longer than any SNMP client waits.
SILENT_HOLD_SECONDS = 120


def init(**context):
    from infrapower.lab.rack import Rack

    options = dict(item.split("=", 1) for item in (context.get("options") or "").split(",") if "=" in item)
    profile_path = options["profile"]
    with open(profile_path) as handle:
        profile = json.load(handle)
    moduleContext["profile"] = profile
    moduleContext["rack"] = Rack(os.environ["INFRAPOWER_LAB_DIR"])


def _typed(tag, value):
    return SnmprecGrammar.TAG_MAP[tag](value)


def _raise(error_class, oid, context):
    index = max(0, context["varsTotal"] - context["varsRemaining"] - 1)
    raise error_class(name=oid, idx=index)


def _hold_while_silent(rack, outlet, context):
    if _rack_state(rack, context)["faults"].get(outlet, {}).get("kind") != "silent":
        return
    deadline = time.monotonic() + SILENT_HOLD_SECONDS
    while time.monotonic() < deadline:
        if rack.read()["faults"].get(outlet, {}).get("kind") != "silent":
            return
        time.sleep(0.05)


def _status_value(spec, slot):
    """The raw status value for an outlet's state, through the vendor's
    pending states while a switch is under way."""
    values = spec["values"]
    pending = slot.get("pending")
    if pending is not None:
        transient = "pending_on" if pending["on"] else "pending_off"
        if transient in values:
            return values[transient]
    return values["on" if slot["on"] else "off"]


def _rack_state(rack, context):
    """The rack's state, read again only when it may have changed: its file
    was rewritten (by any simulator or a test) or a pending switch fell
    due.  A walk of 200 outlets must not cost 200 locked reads of the
    state file (on a real PDU reading an outlet costs nothing)."""
    from infrapower.lab.rack import next_due

    cached = moduleContext.get("snapshot")
    if context["setFlag"] or cached is None or cached[0] != rack.stamp() or cached[2] <= time.time():
        state = rack.read()  # settles what is due, which may rewrite the file
        moduleContext["snapshot"] = (rack.stamp(), state, next_due(state))
    return moduleContext["snapshot"][1]


def _apply_command(rack, spec, action):
    outlet = spec["outlet"]
    delay = spec.get("switch_delay", 0.0)
    if action == "cycle":
        rack.cycle_outlet(outlet, spec.get("cycle_seconds", 1.0), delay)
    else:
        rack.switch_outlet(outlet, action == "on", delay)


def variate(oid, tag, value, **context):
    if not context["nextFlag"] and not context["exactMatch"]:
        return context["origOid"], tag, context["errorStatus"]

    spec = moduleContext["profile"][value]
    rack = moduleContext["rack"]
    role = spec["role"]
    outlet = spec.get("outlet")

    if outlet is not None:
        _hold_while_silent(rack, outlet, context)

    if context["setFlag"]:
        actions = spec.get("actions")
        if not actions:
            _raise(smi_error.NotWritableError, oid, context)
        written = context["origValue"]
        if not written.isSameTypeWith(_typed(tag, 0 if tag == "2" else "")):
            _raise(smi_error.WrongTypeError, oid, context)
        action = actions.get(str(written))
        if action is None:
            _raise(smi_error.WrongValueError, oid, context)
        if action != "none":
            _apply_command(rack, spec, action)
        if role == "command":
            return oid, tag, written

    if role == "status":
        slot = _rack_state(rack, context)["outlets"][outlet]
        return oid, tag, _typed(tag, _status_value(spec, slot))
    if role == "command":
        return oid, tag, _typed(tag, spec.get("readback", 0))
    if role == "inlet":
        powered = _rack_state(rack, context)["upses"][spec["ups"]]["on"]
        return oid, tag, _typed(tag, spec["value"] if powered else 0)
    return oid, tag, _typed(tag, spec["value"])


def shutdown(**context):
    pass
