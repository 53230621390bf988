"""Each link's state, read live: outlets and UPSes from upsd (a PDU served
by snmp-ups is read through upsd, which polls it over SNMP), the outlets of
SNMP PDUs no upsd serves (declared in the servers file) over SNMP with
fence_snmp_pdu's own code (infrapower.snmp.pdu: mapping detected, or forced
with `mib =`, outlet status through the mapping's lookup), PSUs from the
servers' BMCs (through fence_ipmi_psu's own IPMI code, all BMCs at once).

Reading also checks what only the live peers can tell: the upsd or PDU
answers, serves the device, and the device has the outlet; each failure is
a Problem at the file:line that named it.
"""

from dataclasses import dataclass, field

from infrapower.chain.model import MAIN, Problem

OK, RISK, DOWN, UNKNOWN = "ok", "risk", "down", "unknown"


@dataclass
class LinkState:
    level: str  # ok, risk (works now, may not for long), down, unknown
    text: str  # what the peer said, shortly: on, off, OL, OB LB, failed
    detail: str = ""  # in words, for reasons: "on battery, low"

    def describe(self):
        return self.detail or self.text


@dataclass
class LiveView:
    states: dict = field(default_factory=dict)  # link id -> LinkState
    problems: list = field(default_factory=list)
    variables: dict = field(default_factory=dict)  # device link id -> upsd's variables
    outlet_numbers: dict = field(default_factory=dict)  # outlet link id -> number (or (unit, number)) on its device
    snmp_plugs: dict = field(default_factory=dict)  # outlet link id of an SNMP PDU -> fence_snmp_pdu's plug
    snmp_mappings: dict = field(default_factory=dict)  # SNMP PDU link id -> its NUT mapping name


def ups_state(status):
    """A UPS's `ups.status` as a LinkState."""
    words = set(status.split())
    if not words:
        return LinkState(OK, "answering")
    if "OFF" in words:
        return LinkState(DOWN, status, "off")
    if "FSD" in words:
        return LinkState(DOWN, status, "forced shutdown")
    if "OB" in words:
        return LinkState(RISK, status, "on battery, low" if "LB" in words else "on battery")
    if "LB" in words:
        return LinkState(RISK, status, "battery low")
    if "OL" in words:
        return LinkState(OK, status, "online")
    return LinkState(UNKNOWN, status)


def _outlets_of(variables):
    """Every outlet upsd shows: its number, or (unit, number) for an
    outlet of a daisy chain that snmp-ups serves as one device
    (device.U.outlet.N.*)."""
    outlets = set()
    for name in variables:
        parts = name.split(".")
        if parts[0] == "outlet" and len(parts) > 2 and parts[1].isdigit():
            outlets.add(int(parts[1]))
        elif parts[0] == "device" and len(parts) > 4 and parts[1].isdigit() and parts[2] == "outlet" and parts[3].isdigit():
            outlets.add((int(parts[1]), int(parts[3])))
    # outlet.0 (device.U.outlet.0): NUT's "all outlets" pseudo-outlet
    return {o for o in outlets if (o[1] if isinstance(o, tuple) else o)}


def outlet_prefix(outlet):
    """upsd's name of an outlet outlet_number found: `outlet.3`, or
    `device.2.outlet.3` on a daisy chain."""
    return f"device.{outlet[0]}.outlet.{outlet[1]}" if isinstance(outlet, tuple) else f"outlet.{outlet}"


def outlet_plug(outlet):
    """The outlet as fence_nut and fence_snmp_pdu write it on its device:
    `3`, or `2:3` (unit:outlet) on a daisy chain."""
    return f"{outlet[0]}:{outlet[1]}" if isinstance(outlet, tuple) else str(outlet)


def outlet_number(variables, token):
    """The outlet a parent names: `3`, `2:3` (outlet 3 of daisy-chained
    unit 2), or its desc/name (`2:name` within unit 2); a number, (unit,
    number) on a daisy chain, or None if the device has no such outlet.
    A plain number on a chain is unit 1's outlet, as fence_nut reads it."""
    outlets = _outlets_of(variables)
    unit, colon, rest = token.partition(":")
    if colon:
        chained = {o for o in outlets if isinstance(o, tuple)}
        if not unit.isdigit() or not (chained or int(unit) == 1):
            return None
        # `1:3` on a PDU that is no chain is its outlet 3, as in fence_nut
        candidates = {o for o in chained if o[0] == int(unit)} if chained else outlets
        token = rest
    else:
        candidates = outlets
    if token.isdigit():
        for outlet in (int(token), (int(unit) if colon else 1, int(token))):
            if outlet in candidates:
                return outlet
        return None
    wanted = token.casefold()
    matches = [
        o for o in sorted(candidates, key=lambda o: (1, *o) if isinstance(o, tuple) else (0, o, 0))
        if wanted in (variables.get(f"{outlet_prefix(o)}.desc", "").casefold(),
                      variables.get(f"{outlet_prefix(o)}.name", "").casefold())
    ]
    return matches[0] if len(matches) == 1 else None


# Peers read at once.  Every read (a upsd's devices, an SNMP PDU, a BMC)
# is mostly waiting for answers, so one pool overlaps them all; bounded,
# because the reads also cost CPU (RMCP+ and SNMP in Python, under one
# GIL): 200 BMCs in 200 threads read slower than in 16 on 2 cores.
LIVE_CONCURRENCY = 16
# A upsd's devices are listed over several connections at once, this many
# devices each: LIST VAR of a big PDU is hundreds of lines.
DEVICES_PER_CONNECTION = 4


def read(chain, timeout=3.0):
    """The LiveView of every link of `chain`: every peer read at once
    (LIVE_CONCURRENCY), the results then applied in a fixed order, so
    states and problems do not depend on which answer came first."""
    from concurrent.futures import ThreadPoolExecutor

    view = LiveView()
    view.states[MAIN] = LinkState(OK, "")
    by_upsd = {}
    for link in chain.links.values():
        # NUT devices: PDUs, UPSes, and ups.conf's PSU devices
        if (link.kind == "device" and link.snmp is None) or (link.kind == "psu" and link.upsd is not None):
            by_upsd.setdefault(link.upsd, []).append(link)
    snmp_pdus = [link for link in chain.links.values() if link.kind == "device" and link.snmp is not None]
    outlets_of = {
        device.id: [link for link in chain.links.values() if link.kind == "outlet" and link.parent == device.id]
        for device in snmp_pdus
    }
    servers = [server for server in chain.servers.values() if server.bmc is not None]
    _import_readers(by_upsd and _NUT_MODULES, snmp_pdus and _SNMP_MODULES, servers and _IPMI_MODULES)
    with ThreadPoolExecutor(max_workers=LIVE_CONCURRENCY) as pool:
        upsd_reads = [
            (upsd, group, pool.submit(_list_devices, upsd, group, timeout))
            for upsd, devices in by_upsd.items()
            for group in _groups(devices, DEVICES_PER_CONNECTION)
        ]
        snmp_reads = {d.id: pool.submit(_read_snmp_pdu, d, outlets_of[d.id], timeout) for d in snmp_pdus}
        bmc_reads = {server.name: pool.submit(_read_power_supplies, server, timeout) for server in servers}
    unanswered = set()
    for upsd, devices, future in upsd_reads:
        _apply_upsd(upsd, by_upsd[upsd], devices, future, view, unanswered)
    _read_outlets(chain, view)
    _read_chassis(chain, view)
    _apply_snmp_pdus(snmp_pdus, outlets_of, snmp_reads, view)
    _apply_bmcs(servers, bmc_reads, view)
    return view


# What the readers import, their libraries' lazy imports included.  Two
# reader threads importing along different paths at once can deadlock in
# Python's import locks, which then hands one of them a partially
# initialised module (seen: typing); imported first, in one thread, they
# are only looked up by the readers.
_NUT_MODULES = ("infrapower.nut.client",)
_SNMP_MODULES = (
    "infrapower.tables", "infrapower.chain.snmpconf", "infrapower.snmp.pdu", "infrapower.snmp.session",
    "infrapower.snmp.ber", "infrapower.snmp.usm", "infrapower.ciphers",
)
_IPMI_MODULES = (
    "infrapower.ipmi.chassis", "infrapower.ipmi.psu", "infrapower.ipmi.session", "infrapower.resolve",
    "pyghmi.ipmi.private.constants", "pyghmi.ipmi.sdr", "cryptography.hazmat.primitives.ciphers",
)


def _import_readers(*groups):
    import importlib

    for names in groups:
        for name in names or ():
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # the reader that needs it says so, as one problem


def _groups(items, size):
    return [items[start:start + size] for start in range(0, len(items), size)]


def _list_devices(upsd, devices, timeout):
    """{device link id: its variables, or the NutError listing it gave};
    a NutError raised when upsd does not answer at all."""
    from infrapower.nut.client import NutClient, NutError, NutSettings

    results = {}
    with NutClient(NutSettings(upsd.host, upsd.port, timeout)).connect() as client:
        for device in devices:
            try:
                results[device.id] = client.list_var(device.device)
            except NutError as error:
                if error.code is None:  # the connection itself failed: nothing more comes
                    raise
                results[device.id] = error
    return results


def _apply_upsd(upsd, all_devices, devices, future, view, unanswered):
    """One connection's devices into the view.  A upsd that does not
    answer is one problem (at the first line naming one of its devices,
    said once: `unanswered` remembers), every device of it unknown."""
    from infrapower.nut.client import NutError

    try:
        results = future.result()
    except NutError as error:
        if upsd not in unanswered:
            unanswered.add(upsd)
            origin = min((d.origin for d in all_devices if d.origin), key=lambda o: (o.path, o.line), default=None)
            view.problems.append(Problem(origin, f"upsd at {upsd} does not answer: {error}"))
        for device in devices:
            view.states[device.id] = LinkState(UNKNOWN, "no answer", f"upsd at {upsd} does not answer")
        return
    for device in devices:
        variables = results[device.id]
        if isinstance(variables, NutError):
            error = variables
            if error.code == "UNKNOWN-UPS":
                view.problems.append(Problem(device.origin, f"upsd at {upsd} serves no device {device.device!r}"))
            view.states[device.id] = LinkState(UNKNOWN, error.code or "error", str(error))
            continue
        view.variables[device.id] = variables
        status = variables.get("ups.status", "")
        if device.kind == "psu":
            view.states[device.id] = psu_state(status, variables.get("ups.alarm", ""))
            continue
        # PDUs publish an empty ups.status: their inlet voltage tells.
        view.states[device.id] = ups_state(status) if status else pdu_state(_nut_inlet_voltage(variables))


def _nut_inlet_voltage(variables):
    from infrapower.snmp.pdu import INLET_VOLTAGE

    for name in INLET_VOLTAGE:
        try:
            return float(variables[name])
        except (KeyError, ValueError):
            continue
    return None


def pdu_state(volts):
    """A PDU's state from its inlet voltage (None: it has no reading)."""
    if volts is None:
        return LinkState(OK, "answering")
    if volts < 1:
        return LinkState(DOWN, "no input", "no input voltage")
    return LinkState(OK, f"{volts:.0f} V")


def _read_outlets(chain, view):
    for link in chain.links.values():
        if link.kind != "outlet" or chain.links[link.parent].snmp is not None:
            continue
        variables = view.variables.get(link.parent)
        if variables is None:
            view.states[link.id] = LinkState(UNKNOWN, "?", f"{link.device} unreadable")
            continue
        number = outlet_number(variables, link.outlet)
        if number is None:
            units = sorted({o[0] for o in _outlets_of(variables) if isinstance(o, tuple)})
            lists = (f"daisy-chained units {', '.join(map(str, units))}: name an outlet UNIT:OUTLET" if units
                     else variables.get("outlet.count", "?"))
            view.problems.append(
                Problem(link.origin, f"{link.device} has no outlet {link.outlet!r} (upsd at {link.upsd} lists {lists})")
            )
            view.states[link.id] = LinkState(UNKNOWN, "no such outlet")
            continue
        view.outlet_numbers[link.id] = number
        view.states[link.id] = outlet_state(variables.get(f"{outlet_prefix(number)}.status", "").lower())


def outlet_state(state):
    """An outlet state (`on`, `off`, or on its way: pending_on, cycling...)
    as a LinkState."""
    if state == "on":
        return LinkState(OK, "on")
    if state == "off":
        return LinkState(DOWN, "off")
    return LinkState(UNKNOWN, state or "?")


def _read_snmp_pdu(device, outlet_links, timeout):
    """(mapping name, inlet volts or None, {outlet link id: (number, plug,
    state) or PduError}) of one SNMP PDU, read as fence_snmp_pdu reads
    it: one session, the mapping detected (or forced), every outlet's
    status through the mapping in as few requests as the PDU takes (one
    outlet at a time only to tell which outlet a failed read was about)."""
    from infrapower import tables
    from infrapower.chain.snmpconf import session_settings
    from infrapower.snmp import pdu
    from infrapower.snmp.session import Session

    config = device.snmp
    document = tables.load()
    session = Session(session_settings(dict(config.options), config.host, config.port, timeout))
    try:
        outlets = pdu.Pdu(session, document, pdu.identify(session, document, config.mib))
        results, resolved = {}, {}
        for link in outlet_links:
            try:
                resolved[link.id] = outlets.resolve(link.outlet)
            except pdu.PduError as error:
                results[link.id] = error
        try:
            states = outlets.status([link.outlet for link in outlet_links if link.id in resolved])
        except pdu.PduError:
            states = {}
            for link in outlet_links:
                if link.id in resolved:
                    try:
                        states.update(outlets.status([link.outlet]))
                    except pdu.PduError as error:
                        results[link.id] = error
        for link_id, outlet in resolved.items():
            if link_id in results:
                continue
            plug = str(outlet.number) if outlet.unit == 1 else f"{outlet.unit}:{outlet.number}"
            results[link_id] = (outlet.number, plug, states[outlet.label])
        return outlets.name, outlets.inlet_voltage(), results
    finally:
        session.close()


def _apply_snmp_pdus(devices, outlets_of, reads, view):
    """Every SNMP PDU of the servers file (a dead one costs its full
    timeout, read beside the others)."""
    from infrapower.fence import FenceError
    from infrapower.tables import TableError

    for device in devices:
        where = f"SNMP PDU at {device.snmp}"
        try:
            mapping, volts, results = reads[device.id].result()
        except (FenceError, TableError, OSError) as error:
            origin = device.extra.get("snmp_origin", device.origin)
            view.problems.append(Problem(origin, f"[{device.id}] {where} gave no outlet states: {error}"))
            view.states[device.id] = LinkState(UNKNOWN, "no answer", f"{where}: {error}")
            for link in outlets_of[device.id]:
                view.states[link.id] = LinkState(UNKNOWN, "?", f"{device.id} unreadable")
            continue
        view.snmp_mappings[device.id] = mapping
        view.states[device.id] = pdu_state(volts)
        for link in outlets_of[device.id]:
            result = results[link.id]
            if isinstance(result, Exception):
                view.problems.append(
                    Problem(link.origin, f"{link.device} has no readable outlet {link.outlet!r} ({where}, {mapping}: {result})")
                )
                view.states[link.id] = LinkState(UNKNOWN, "no such outlet")
                continue
            number, plug, state = result
            view.outlet_numbers[link.id] = number
            view.snmp_plugs[link.id] = plug
            view.states[link.id] = outlet_state(state)


def psu_state(status, alarm=""):
    """A PSU device's state from what its driver publishes (ipmi-psu, see
    infrapower.nutdriver.ipmi_psu; NUT's nut-ipmipsu): `ALARM` with
    `ups.alarm` saying why (failed, absent, input lost, unknown), `OL`
    healthy and fed, `OFF` alone the server is off but the supply healthy
    (its feed still counts)."""
    words = set(status.split())
    if "ALARM" in words or alarm:
        alarm = alarm.strip()
        text = PSU_ALARMS.get(alarm.lower())
        if text is None:  # an alarm of another driver: still no healthy supply
            return LinkState(DOWN, "failed", f"failed ({alarm})" if alarm else "failed")
        return LinkState(UNKNOWN if text == "unknown" else DOWN, text)
    if "OL" in words:
        return LinkState(OK, "OL")
    if "OFF" in words:
        return LinkState(OK, "OFF", "healthy, its server off")
    return LinkState(UNKNOWN, status or "?")


# ipmi-psu's `ups.alarm` texts, as the chain's PSU states.
PSU_ALARMS = {"psu failed": "failed", "psu absent": "absent", "psu input lost": "no input", "psu state unknown": "unknown"}


# A server's chassis power as ipmi-psu publishes it on each of its PSU
# devices (the BMC's chassis status): on or off.
CHASSIS_VARIABLE = "chassis.power"  # not server.*: upsd answers those itself


def _read_chassis(chain, view):
    """Each server's power, from the first of its PSU devices that
    publishes it (shown on the server's line; feeds are judged apart)."""
    for server in chain.servers.values():
        for psu in server.psus:
            value = view.variables.get(psu, {}).get(CHASSIS_VARIABLE, "").lower()
            if value:
                level = {"on": OK, "off": DOWN}.get(value, UNKNOWN)
                view.states[server.name] = LinkState(level, f"power {value}")
                break


# fence_ipmi_psu's PSU states (infrapower.ipmi.psu) as chain link states.
PSU_LINK_STATES = {
    "ok": LinkState(OK, "ok"),
    "failed": LinkState(DOWN, "failed"),
    "input lost": LinkState(DOWN, "no input"),
    "absent": LinkState(DOWN, "absent"),
}


def _read_power_supplies(server, timeout):
    """A server's PSUs' health, read the way fence_ipmi_psu reads it (the
    sensors; not the FRU data, which the chain does not show)."""
    from infrapower.ipmi.chassis import open_session
    from infrapower.ipmi.psu import read_power_supplies
    from infrapower.ipmi.session import IpmiSettings

    host, port = server.bmc
    settings = IpmiSettings(host, port, server.bmc_username, server.bmc_password, login_timeout=timeout,
                            command_timeout=timeout)
    with open_session(settings) as session:
        return sorted(read_power_supplies(session, fru=False), key=lambda psu: psu.index)


def _apply_bmcs(servers, reads, view):
    """Every BMC's PSU health (a dead BMC costs its full timeout, read
    beside the others)."""
    from infrapower.fence import FenceError

    for server in servers:
        try:
            supplies = reads[server.name].result()
        except FenceError as error:
            where = f"{server.bmc[0]}:{server.bmc[1]}"
            view.problems.append(Problem(server.origin, f"[{server.name}] BMC at {where} gave no PSU health: {error}"))
            continue
        # The chain's PSUs in declaration order are the BMC's in entity order.
        for psu, supply in zip(server.psus, supplies):
            view.states[psu] = PSU_LINK_STATES.get(supply.state, LinkState(UNKNOWN, supply.state))
