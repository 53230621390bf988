"""Switched PDU outlets over SNMP, driven by the tables generated from NUT.

Given a Session (infrapower.snmp) and a table document
(infrapower.tables.load()), this module identifies the PDU's mapping
the way NUT's snmp-ups does with mibs=auto, resolves plugs (outlet
number, outlet name as the PDU names it, `unit:outlet` on daisy chains),
reads outlet states through the mapping's status lookup, and switches
outlets with the mapping's commands (or by writing the status OID where
the mapping says so: APC's legacy sPDU table).
"""

import logging
import re
from contextlib import contextmanager

from infrapower.fence import FenceError, Outlets
from infrapower.snmp.oid import SYS_OBJECT_ID, normalise_oid

log = logging.getLogger(__name__)

# States in the tables' normalised status maps; anything else (pending_on,
# pending_off, cycling, unknown) means the outlet is on its way somewhere.
ERROR_STATES = ("error",)
# NUT's names for the voltage reaching a PDU's inlet, the likeliest first
# (older mappings publish the whole PDU's reading as outlet.voltage).
INLET_VOLTAGE = ("input.voltage", "input.L1.voltage", "outlet.voltage")


class PduError(FenceError):
    """The PDU cannot do what was asked (unknown device, no such outlet,
    outlet not switchable, ...)."""


# Outlet numbers are ASCII digits: Python's int() and str.isdigit() also
# take "３" or "٣", which no PDU means.  `unit:outlet` on daisy chains.
_NUMBERED = re.compile(r"(?:([0-9]+):)?([0-9]+)", re.ASCII)
# A plug made only of digits (any script) and separators is meant as a
# number, so it must be one; anything else is a name as the PDU spells it.
_NUMBER_LIKE = re.compile(r"[\d.:,;/\-]+")


def check_plug(plug):
    """The plug if its grammar is right, else PduError; no network I/O, so
    the agent refuses a bad plug before it talks to the PDU."""
    plug = str(plug)
    if _NUMBERED.fullmatch(plug):
        return plug
    if not plug or plug != plug.strip() or not plug.isprintable():
        raise PduError(f"plug {plug!r}: empty, or with surrounding blanks or control characters; "
                       "give an outlet number, unit:outlet, or the outlet's name")
    if _NUMBER_LIKE.fullmatch(plug):
        raise PduError(f"plug {plug!r}: outlet numbers are ASCII digits (e.g. 3), on daisy chains unit:outlet (e.g. 2:3)")
    return plug


def _has_outlets(table):
    view = table.get("outlets") or {}
    return bool(view.get("status_oid"))


def _switchable(view):
    return bool((view.get("commands") or {}).get("off") or view.get("switched_by_status"))


def _tables_label(document):
    return f"NUT {document.get('nut', {}).get('version', '?')}"


def switched_mapping_names(document):
    """Mapping names (probe order, no repeats) whose outlets can be switched."""
    names = []
    for mapping in document["mappings"]:
        view = document["tables"][mapping["table"]].get("outlets") or {}
        if _switchable(view) and mapping["name"] not in names:
            names.append(mapping["name"])
    return names


def identify(session, document, forced=None):
    """The mapping for this PDU: `forced` by name, else snmp-ups' mibs=auto
    order: exact sysObjectID match confirmed by the model OID, then every
    mapping's model OID in probe order."""
    from infrapower import tables

    if forced:
        mapping = tables.find_by_name(document, forced)
        if mapping is not None:
            return mapping
        raise PduError(f"mib {forced}: no such mapping in the {_tables_label(document)} tables; "
                       f"use one of {', '.join(switched_mapping_names(document))}")
    return detect(session, document)[0]


def detect(session, document, speculate=None, first=()):
    """(mapping, {OID: value read}) as identify() finds it without `mib`,
    in as few round trips as the protocol allows: SNMPv2c/v3 ask
    sysObjectID and every mapping's model OID in one GET (absent OIDs are
    answered one by one there); SNMPv1, where one absent OID fails the
    whole GET, asks sysObjectID alone, then the model OIDs of the mappings
    that claim it.  `speculate(candidates)` names OIDs the caller will
    read next if one of those candidates is the mapping (an outlet's
    status): they go into that second GET, so `status` costs no extra
    round trip.  `first`: OIDs to read along in the first GET on
    SNMPv2c/v3 (a listing's outlet counts)."""
    from infrapower import tables
    from infrapower.snmp.session import Refused

    mappings = document["mappings"]
    known = {}
    if session.version != "1":
        try:
            # Guesses, many absent: an agent answering noSuchName (as SNMPv1
            # does) would cost a round trip per absent OID; ask as for SNMPv1.
            known.update(session.get([SYS_OBJECT_ID] + _model_probes(mappings) + list(first), one_by_one=False))
        except Refused:
            known.clear()  # tooBig, or an agent that errs on others' OIDs: ask as SNMPv1 does
    if SYS_OBJECT_ID not in known:
        known.update(session.get([SYS_OBJECT_ID]))
    sysoid = known[SYS_OBJECT_ID]
    sysoid = normalise_oid(sysoid) if isinstance(sysoid, str) and sysoid.strip(".") else None
    candidates = tables.mappings_by_sysoid(document, sysoid)
    wanted = [oid for oid in _model_probes(candidates) if oid not in known]
    if candidates and speculate is not None:
        wanted += [oid for oid in speculate(candidates) if oid not in known and oid not in wanted]
    if wanted:
        known.update(session.get(wanted))
    found = _confirmed_by_model_oid(candidates, known, require=False)
    if found is None:
        missing = [oid for oid in _model_probes(mappings) if oid not in known]
        if missing:
            known.update(session.get(missing))
        found = _confirmed_by_model_oid(mappings, known, require=True)
    if found is None:
        raise PduError(
            f"unknown PDU: sysObjectID {sysoid or 'not readable'} matches no mapping of the {_tables_label(document)} tables; "
            f"if it is compatible with one, force it with mib=NAME ({', '.join(switched_mapping_names(document))})"
        )
    log.debug("sysObjectID %s: NUT mapping %s", sysoid, found["name"])
    return found, known


def _model_probes(mappings):
    """The model OIDs (normalised, sorted, no repeats) of `mappings` that
    can be read as they are (no %i)."""
    return sorted({normalise_oid(m["model_oid"]) for m in mappings if m.get("model_oid") and "%i" not in m["model_oid"]})


def _confirmed_by_model_oid(mappings, known, require):
    """First mapping whose model OID answered (in `known`); a mapping
    without a model OID is confirmed by its sysObjectID alone unless
    `require`."""
    for mapping in mappings:
        model_oid = mapping.get("model_oid")
        if not model_oid or "%i" in model_oid:
            if not require:
                return mapping
            continue
        if known.get(normalise_oid(model_oid)) not in (None, ""):
            return mapping
    return None


class Outlet:
    """One outlet: `unit` counts daisy-chained units from 1; `label` is the
    plug as the user or the listing names it."""

    __slots__ = ("unit", "number", "label")

    def __init__(self, unit, number, label):
        self.unit, self.number, self.label = unit, number, label

    def __repr__(self):
        return f"Outlet({self.label})"


class Pdu(Outlets):
    """The outlets of one identified PDU, for infrapower.fence.run_action.

    `mapping` None: the mapping is detected on first use (detect()); when
    that first use is `status`, the outlets' states are read in the same
    GET that confirms the mapping."""

    _IDENTIFIED = ("mapping", "name", "view", "daisy", "entries")

    def __init__(self, session, document, mapping=None):
        self.session = session
        self._document = document
        self._fresh = {}  # {OID: value} read with the detection, before any command: the first status only
        if mapping is not None:
            self._adopt(mapping)
        self._unit_base = None
        self._plugs = {}
        self._listing = None  # {id: (name, state)}, walked at most once per run
        self._outlet_of = {}  # listing id -> Outlet
        self._rows = None  # outlets the PDU says it has (read with the detection): sizes the walk

    def __getattr__(self, name):
        """The mapping's attributes, detecting it on first use."""
        if name not in self._IDENTIFIED or "_document" not in self.__dict__:
            raise AttributeError(name)
        self._detect(())
        return self.__dict__[name]

    def _adopt(self, mapping):
        document = self._document
        table = document["tables"][mapping["table"]]
        if not _has_outlets(table):
            raise PduError(f"the PDU is a {mapping['name']} ({_tables_label(document)}), which has no outlets NUT can read")
        self.view = table.get("outlets") or {}
        self.daisy = self.view.get("daisy") or None
        self.entries = table["entries"]
        self.name = mapping["name"]
        self.mapping = mapping

    def _detect(self, plugs, listing=False):
        """Detect the mapping; the status OIDs `plugs` would have under each
        candidate mapping are read along (numbered plugs of a single unit),
        and for a `listing` the outlet counts, so that one GETBULK can ask
        for every row at once."""

        def speculate(candidates):
            oids = []
            for candidate in candidates:
                view = _outlets_view(self._document, candidate)
                template = view.get("status_oid") or ""
                daisy = view.get("daisy") or {}
                probe = daisy.get("device_index_probe_oid") or ""
                chained = template.count("%i") == 2 and probe.count("%i") == 1
                if template.count("%i") != 1 and not chained:
                    continue
                if chained and plugs:  # the first unit's index (0 or 1) with the outlets of both guesses
                    oids += [normalise_oid(probe.replace("%i", base)) for base in ("0", "1")]
                for plug in plugs:
                    match = _NUMBERED.fullmatch(str(plug))
                    if not match or (match.group(1) not in (None, "1") and not chained):
                        continue
                    outlet = Outlet(int(match.group(1) or 1), int(match.group(2)), plug)
                    for base in ((0, 1) if chained else (None,)):
                        oids.append(normalise_oid(_instance(template, view, outlet, unit_base=base)))
            return oids

        mappings = [m for m in self._document["mappings"] if m.get("sysoid") or m.get("model_oid")]
        if self.session.version == "1":
            # SNMPv1 answers a GET with an absent OID by failing it whole: each
            # guess would cost a round trip, so only the candidates' are asked.
            mapping, known = detect(self.session, self._document, speculate)
        elif listing:
            # In the first GET, which asks every mapping's model OID anyway.
            first = _within_budget(self._document, _all_probes(self._document, mappings))
            mapping, known = detect(self.session, self._document, speculate, first=first)
            self._rows = _rows_from(known, _count_probes(self._document, mapping))
        else:
            # The plugs' states as every mapping would read them, in the same
            # first GET: a status costs one round trip, with `mib` or without.
            first = _within_budget(self._document, list(dict.fromkeys(speculate(mappings))))
            mapping, known = detect(self.session, self._document, speculate, first=first)
        self._adopt(mapping)
        wanted = set(speculate([mapping]))
        self._fresh = {oid: value for oid, value in known.items() if oid in wanted}
        probe = (self.daisy or {}).get("device_index_probe_oid") or ""
        if probe.count("%i") == 1 and normalise_oid(probe.replace("%i", "0")) in known:
            self._unit_base = 0 if known[normalise_oid(probe.replace("%i", "0"))] is not None else 1

    def _read(self, oids):
        """GET `oids`, or the values the detection read along for the first
        status (read in this action, before any command)."""
        fresh, self._fresh = self._fresh, {}
        if oids and all(normalise_oid(oid) in fresh for oid in oids):
            log.debug("SNMP %s   %s: read with the mapping's detection", self.session.where, " ".join(oids))
            return [(normalise_oid(oid), fresh[normalise_oid(oid)]) for oid in oids]
        return self.session.get(oids)

    # -- OIDs --

    def _oid(self, template, outlet, offset=0, daisy_position=None):
        base = self._base() if template.count("%i") >= 2 else None
        return _instance(template, self.view, outlet, offset, daisy_position, base)

    def _base(self):
        """The index of the first daisy-chained unit: snmp-ups probes 0
        then 1 (Eaton's ePDUs number the master unit 0)."""
        if self._unit_base is None:
            probe = (self.daisy or {}).get("device_index_probe_oid") or ""
            self._unit_base = 1
            if probe.count("%i") == 1:
                (_, unit_zero), _ = self.session.get([probe.replace("%i", "0"), probe.replace("%i", "1")])
                self._unit_base = 0 if unit_zero is not None else 1
        return self._unit_base

    def inlet_voltage(self):
        """The (first unit's) inlet voltage in volts, as the mapping reads
        it (raw value times NUT's multiplier), or None where the mapping
        has no such reading or the PDU does not answer it."""
        candidates = []
        for info in INLET_VOLTAGE:
            for entry in self.entries:
                oid = entry.get("oid") or ""
                if entry["info"] == info and oid.count("%i") <= 1:
                    candidates.append((oid.replace("%i", str(self._base())), entry.get("info_len") or 1))
        if not candidates:
            return None
        values = dict(self.session.get(list(dict.fromkeys(oid for oid, _ in candidates))))
        for oid, multiplier in candidates:
            try:
                return float(values.get(normalise_oid(oid))) * multiplier
            except (TypeError, ValueError):
                continue  # not answered, or not a number
        return None

    def _parse_instance(self, template, oid):
        """(unit, outlet number) an instance OID of `template` addresses."""
        pattern = re.escape(normalise_oid(template)).replace("%i", r"(\d+)")
        match = re.fullmatch(pattern, oid)
        if not match:
            return None
        numbers = [int(group) for group in match.groups()]
        base = self.view.get("index_base") or 1
        if len(numbers) == 1:
            return 1, numbers[0] - base + 1
        position = (self.daisy or {}).get("index") or 1
        unit, index = numbers if position == 1 else numbers[::-1]
        return unit - self._base() + 1, index - base + 1

    # -- plugs --

    def resolve(self, plug):
        """An Outlet for a plug: number, `unit:outlet`, or outlet name (see
        check_plug).  `1:N` is outlet N on any PDU (fence_apc_snmp's
        switch:plug)."""
        plug = check_plug(plug)
        if plug in self._plugs:
            return self._plugs[plug]
        match = _NUMBERED.fullmatch(plug)
        if match and (match.group(1) in (None, "1") or self.daisy):
            outlet = Outlet(int(match.group(1) or 1), int(match.group(2)), plug)
        else:
            outlet = self._by_name(plug)
        self._plugs[plug] = outlet
        return outlet

    def _by_name(self, plug):
        listing = self._require_outlets()
        exact = [ident for ident, (name, _) in listing.items() if name == plug]
        loose = [ident for ident, (name, _) in listing.items() if name.lower() == plug.lower()]
        matches = exact or loose
        if len(matches) != 1:
            what = "no outlet" if not matches else f"{len(matches)} outlets ({', '.join(matches)})"
            raise PduError(f"plug {plug!r}: {what} of this {self.name} PDU is named so; use an outlet number")
        outlet = self._outlet_of[matches[0]]
        return Outlet(outlet.unit, outlet.number, plug)

    # -- reading --

    def status(self, plugs):
        if "mapping" not in self.__dict__:
            self._detect(plugs)
        outlets = [self.resolve(plug) for plug in plugs]
        answers = self._read([self._oid(self.view["status_oid"], outlet) for outlet in outlets])
        states = {}
        for outlet, (oid, raw) in zip(outlets, answers):
            if raw is None:
                self._require_outlets()  # a wrong mapping, rather than a wrong plug?
                raise PduError(f"plug {outlet.label}: this {self.name} PDU has no such outlet ({oid} does not exist)")
            state = self._state(raw)
            if state in ERROR_STATES:
                raise PduError(f"plug {outlet.label}: the PDU reports the outlet in error (status {raw})")
            states[outlet.label] = state
        return states

    def _state(self, raw):
        return (self.view.get("status_map") or {}).get(str(raw), "unknown")

    def listing(self):
        if "mapping" not in self.__dict__:
            self._detect((), listing=True)
        return dict(self._require_outlets())

    def _require_outlets(self):
        """The listing; a mapping that reads no outlet at all is the wrong
        one for this device (a forced mib, or a host that is no PDU), and
        must not pass for an empty PDU."""
        listing = self._walk()
        if listing:
            return listing
        (_, sysoid), = self.session.get([SYS_OBJECT_ID])
        own = normalise_oid(self.mapping["sysoid"]) if self.mapping.get("sysoid") else None
        seen = sysoid if isinstance(sysoid, str) and sysoid.strip(".") else "not readable"
        differs = f", not the mapping's {own}" if own and seen != own else ""
        raise PduError(f"the {self.name} mapping reads no outlet from {self.session.where} "
                       f"(its sysObjectID is {seen}{differs}): check mib (unset it to detect the mapping) "
                       "and that the device is a switched PDU")

    def _walk(self):
        """{id: (name, state)} for every outlet, walking the status and
        name columns side by side."""
        if self._listing is not None:
            return self._listing
        status_template = normalise_oid(self.view["status_oid"])
        name_template = self.view.get("name_oid") or self.view.get("desc_oid")
        columns = [_column(status_template)] + ([_column(name_template)] if name_template else [])
        found = self.session.walk(columns, rows=self._rows)
        outlets = {}
        for oid, raw in found[columns[0]]:
            place = self._parse_instance(status_template, oid)
            if place:
                outlets[place] = [self._state(raw), ""]
        if name_template:
            for oid, name in found[columns[1]]:
                place = self._parse_instance(name_template, oid)
                if place in outlets:
                    outlets[place][1] = str(name)
        chained = len({unit for unit, _ in outlets}) > 1
        self._listing = {}
        for (unit, number), (state, name) in sorted(outlets.items()):
            ident = f"{unit}:{number}" if chained else str(number)
            self._listing[ident] = (name, state)
            self._outlet_of[ident] = Outlet(unit, number, ident)
        return self._listing

    def monitor(self):
        """Reachable, credentials accepted, and the mapping reads outlets."""
        self._require_outlets()

    # -- switching --

    def check(self, plug, on):
        """Before any plug is touched: the mapping has a command for this
        and the PDU does not report the outlet non-switchable."""
        outlet = self.resolve(plug)
        self._command_for(outlet, "on" if on else "off")
        self._check_switchable(outlet)

    def switch(self, plug, on):
        self._send([plug], "on" if on else "off")

    def switch_all(self, plugs, on):
        """One SET for every plug (one PDU, one command each)."""
        self._send(plugs, "on" if on else "off")

    def can_cycle(self):
        return bool((self.view.get("commands") or {}).get("cycle"))

    def cycle(self, plug):
        self._send([plug], "cycle")

    def cycle_all(self, plugs):
        """One SET for every plug: the cycles start together."""
        self._send(plugs, "cycle")

    def _send(self, plugs, action):
        """SET the mapping's command for `action` (on, off, cycle) on every
        plug in one request; a PDU that refuses a SET of several outlets
        gets one SET per outlet (the commands are idempotent)."""
        from infrapower.snmp.session import Refused

        self._fresh = {}
        varbinds = list(dict.fromkeys(self._command_for(self.resolve(plug), action) for plug in plugs))
        for plug in plugs:
            log.debug("switching %s %s", plug, action)
        try:
            self.session.set(varbinds)
        except Refused as error:
            if len(varbinds) == 1:
                raise
            log.debug("SNMP %s   a SET of %d outlets refused (%s): one SET per outlet", self.session.where, len(varbinds), error)
            for varbind in varbinds:
                self.session.set([varbind])

    def _command_for(self, outlet, action):
        """(OID, value) that makes `outlet` do `action`: the mapping's
        command, or a write of the status OID (APC's sPDU table)."""
        command = (self.view.get("commands") or {}).get(action)
        if command:
            oid = self._oid(command["oid"], outlet, command.get("index_offset") or 0, command.get("daisy_position"))
            value = command["value"]
            return oid, (str(value) if command.get("set_type") == "string" else int(value))
        by_status = self.view.get("switched_by_status")
        if by_status and action in ("on", "off"):
            return self._oid(by_status["oid"], outlet, 0, by_status.get("daisy_position")), int(by_status[action])
        raise PduError(f"the {self.name} mapping has no command to switch outlets {action} (NUT cannot switch them either)")

    def _check_switchable(self, outlet):
        """Refuse an outlet the PDU reports non-switchable; asked only of
        mappings whose lookup can say "no"."""
        values = self.view.get("switchable_map") or {}
        template = self.view.get("switchable_oid")
        if not template or "no" not in values.values():
            return
        (_, raw), = self.session.get([self._oid(template, outlet)])
        if raw is not None and values.get(str(raw)) == "no":
            raise PduError(f"plug {outlet.label}: the PDU reports this outlet as not switchable")


# The detection's first GET stays in one unfragmented datagram (an IPv6
# minimum MTU of 1280 less the headers, and an SNMPv3 header's ~150 bytes):
# embedded agents may drop IP fragments, and a GET never answered is a
# timeout, not a refusal to fall back from.
FIRST_GET_BUDGET = 1050


def _within_budget(document, guesses):
    """The first of `guesses` (most useful first) that fit in the first GET
    (sysObjectID, every model OID, them) within FIRST_GET_BUDGET bytes;
    detect() asks whatever the PDU's own mapping still needs of the rest
    in a second GET."""
    from infrapower.snmp import ber

    base = [(oid, ber.NULL_VALUE) for oid in [SYS_OBJECT_ID] + _model_probes(document["mappings"])]
    size = len(ber.pdu(ber.GET, 0x7FFFFFFF, base)) + 4  # +4: the outer lengths may grow a byte or two each
    fitting = []
    for guess in dict.fromkeys(guesses):
        size += len(ber.tlv(ber.SEQUENCE, ber.oid(guess) + ber.NULL_VALUE))
        if size > FIRST_GET_BUDGET:
            log.debug("detection: %d of %d guesses over the first request's %d bytes, left to the PDU's own mapping",
                      len(guesses) - len(fitting), len(guesses), FIRST_GET_BUDGET)
            break
        fitting.append(guess)
    return fitting


def _instance(template, view, outlet, offset=0, daisy_position=None, unit_base=None):
    """The OID of `template` for `outlet` under the mapping's `view`; a
    daisy chain's template has the unit's index too, counted from
    `unit_base` (0 or 1)."""
    index = outlet.number + offset - 1 + (view.get("index_base") or 1)
    if template.count("%i") == 1:
        return template.replace("%i", str(index), 1)
    unit = outlet.unit - 1 + (unit_base or 0)
    position = daisy_position or (view.get("daisy") or {}).get("index") or 1
    first, second = (unit, index) if position == 1 else (index, unit)
    return template.replace("%i", str(first), 1).replace("%i", str(second), 1)


# Units of a daisy chain whose count is walked (Eaton's), probed in one GET.
_MAX_PROBED_UNITS = 8


def _outlets_view(document, mapping):
    """What guesses need of `mapping`'s outlets view: from the tables'
    index where it has it (infrapower.tables.Tables.outlets), so guessing
    for every mapping reads no table file."""
    found = document["tables"]
    if hasattr(found, "outlets"):
        return found.outlets(mapping["table"])
    return found[mapping["table"]].get("outlets") or {}


def _count_probes(document, mapping):
    """(outlet count OIDs, unit count OIDs, how to count units) of
    `mapping`: the outlet count of unit 0 and of unit 1 on a daisy chain
    (whichever is the first unit there); its number of chained units as
    one value ("get") or as the units that answer ("walk")."""
    view = _outlets_view(document, mapping)
    daisy = view.get("daisy") or {}
    count = view.get("count_oid") or ""
    counts = [normalise_oid(count.replace("%i", unit, 1)) for unit in (("0", "1") if "%i" in count else ("",))] if count else []
    units, method = daisy.get("device_count_oid") or "", daisy.get("device_count_method")
    if units and "%i" not in units and method == "get":
        return counts, [normalise_oid(units)], "get"
    if units.count("%i") == 1 and method == "walk":
        return counts, [normalise_oid(units.replace("%i", str(unit))) for unit in range(_MAX_PROBED_UNITS + 1)], "walk"
    return counts, [], None


def _all_probes(document, mappings):
    """What a listing reads with the detection, the most useful first:
    every mapping's outlet counts, then on daisy chains the first unit's
    index (0 or 1) and the number of units (one value, then the units
    probed one by one, the longest list, last)."""
    counts, units, walked = [], [], []
    for mapping in mappings:
        outlet_counts, unit_counts, method = _count_probes(document, mapping)
        counts += outlet_counts
        probe = (_outlets_view(document, mapping).get("daisy") or {}).get("device_index_probe_oid")
        if probe and probe.count("%i") == 1:
            units += [normalise_oid(probe.replace("%i", base)) for base in ("0", "1")]
        (walked if method == "walk" else units).extend(unit_counts)
    return list(dict.fromkeys(counts + units + walked))


def _rows_from(known, probes):
    """The rows a walk of the outlet table will find, from what the
    count probes read: outlets of the first unit times the units; None
    when the PDU did not say."""
    counts, units, method = probes

    def number(oid):
        value = known.get(oid)
        return value if isinstance(value, int) and 0 < value <= 4096 else None

    outlets = next((number(oid) for oid in counts if number(oid)), None)
    if outlets is None:
        return None
    if method == "get":
        return outlets * min(number(units[0]) or 1, 64)
    if method == "walk":
        return outlets * max(1, sum(known.get(oid) is not None for oid in units))
    return outlets


def _column(template):
    """The subtree to walk for a template: everything before its first %i."""
    head = normalise_oid(template).split("%i", 1)[0].rstrip(".")
    return head


@contextmanager
def open_pdu(settings, mib=None):
    """fence_snmp_pdu's device: a session as `settings` (SnmpSettings)
    say, its mapping detected (or forced with `mib`), closed afterwards."""
    from infrapower import tables
    from infrapower.snmp.session import Session

    document = tables.load()
    session = Session(settings)
    try:
        yield Pdu(session, document, identify(session, document, mib) if mib else None)
    finally:
        log.debug("SNMP requests: %d", session.requests)
        session.close()
