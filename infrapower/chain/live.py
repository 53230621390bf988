"""Each link's state, read live: outlets and UPSes from upsd (a PDU served
by snmp-ups is read through upsd, which polls it over SNMP), PSUs from the
servers' BMCs (ipmitool's `sdr type "Power Supply"`, all BMCs at once).

Reading also checks what only the live peers can tell: the upsd answers,
serves the device, and the device has the outlet; each failure is a
Problem at the file:line that named it.
"""

import os
import subprocess
from dataclasses import dataclass, field

from infrapower.chain.model import MAIN, Problem

OK, RISK, DOWN, UNKNOWN = "ok", "risk", "down", "unknown"
IPMI_CIPHER_SUITE = "3"  # ipmitool without -C probes suites for 10-20 s


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
    outlet_numbers: dict = field(default_factory=dict)  # outlet link id -> number on its device


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


def outlet_number(variables, token):
    """The number of the outlet a parent names (`3`, or its desc/name), or
    None if the device has no such outlet."""
    numbers = sorted(
        {int(name.split(".")[1]) for name in variables if name.startswith("outlet.") and name.split(".")[1].isdigit()}
        - {0}  # outlet.0: NUT's "all outlets" pseudo-outlet
    )
    if token.isdigit():
        return int(token) if int(token) in numbers else None
    wanted = token.casefold()
    matches = [
        n for n in numbers
        if wanted in (variables.get(f"outlet.{n}.desc", "").casefold(), variables.get(f"outlet.{n}.name", "").casefold())
    ]
    return matches[0] if len(matches) == 1 else None


def read(chain, timeout=3.0):
    """The LiveView of every link of `chain`."""
    view = LiveView()
    view.states[MAIN] = LinkState(OK, "")
    by_upsd = {}
    for link in chain.links.values():
        if link.kind == "device":
            by_upsd.setdefault(link.upsd, []).append(link)
    for upsd, devices in by_upsd.items():
        _read_upsd(chain, upsd, devices, view, timeout)
    _read_outlets(chain, view)
    _read_bmcs(chain, view, timeout)
    return view


def _read_upsd(chain, upsd, devices, view, timeout):
    from infrapower.nut import NutClient, NutError

    try:
        client = NutClient(upsd.host, upsd.port, timeout).connect()
    except NutError as error:
        origin = min((d.origin for d in devices if d.origin), key=lambda o: (o.path, o.line), default=None)
        view.problems.append(Problem(origin, f"upsd at {upsd} does not answer: {error}"))
        for device in devices:
            view.states[device.id] = LinkState(UNKNOWN, "no answer", f"upsd at {upsd} does not answer")
        return
    with client:
        for device in devices:
            try:
                variables = client.list_var(device.device)
            except NutError as error:
                if error.code == "UNKNOWN-UPS":
                    view.problems.append(Problem(device.origin, f"upsd at {upsd} serves no device {device.device!r}"))
                view.states[device.id] = LinkState(UNKNOWN, error.code or "error", str(error))
                continue
            view.variables[device.id] = variables
            # PDUs publish an empty ups.status: "answering" is all they say.
            view.states[device.id] = ups_state(variables.get("ups.status", ""))


def _read_outlets(chain, view):
    for link in chain.links.values():
        if link.kind != "outlet":
            continue
        variables = view.variables.get(link.parent)
        if variables is None:
            view.states[link.id] = LinkState(UNKNOWN, "?", f"{link.device} unreadable")
            continue
        number = outlet_number(variables, link.outlet)
        if number is None:
            count = variables.get("outlet.count", "?")
            view.problems.append(
                Problem(link.origin, f"{link.device} has no outlet {link.outlet!r} (upsd at {link.upsd} lists {count})")
            )
            view.states[link.id] = LinkState(UNKNOWN, "no such outlet")
            continue
        view.outlet_numbers[link.id] = number
        status = variables.get(f"outlet.{number}.status", "").lower()
        if status == "on":
            view.states[link.id] = LinkState(OK, "on")
        elif status == "off":
            view.states[link.id] = LinkState(DOWN, "off")
        else:
            view.states[link.id] = LinkState(UNKNOWN, status or "?")


def psu_sensor_states(sdr_text):
    """ipmitool `sdr type "Power Supply"` -> [(sensor name, LinkState)]."""
    result = []
    for line in sdr_text.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 5:
            continue
        events = cells[4].lower()
        if "presence detected" not in events:
            state = LinkState(DOWN, "absent")
        elif "failure" in events:
            state = LinkState(DOWN, "failed")
        elif "lost" in events or "input" in events and "out" in events:
            state = LinkState(DOWN, "no input")
        else:
            state = LinkState(OK, "ok")
        result.append((cells[0], state))
    return result


def _read_bmcs(chain, view, timeout):
    """Every BMC at once (a dead BMC costs its full timeout)."""
    running = {}
    for server in chain.servers.values():
        if server.bmc is None:
            continue
        host, port = server.bmc
        argv = ["ipmitool", "-I", "lanplus", "-C", IPMI_CIPHER_SUITE, "-H", host, "-p", str(port),
                "-U", server.bmc_username, "-E", "-N", "1", "-R", "1", "sdr", "type", "Power Supply"]
        # -E: the password from the environment, never on a command line.
        env = dict(os.environ, IPMI_PASSWORD=server.bmc_password)
        try:
            running[server.name] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        except OSError as error:
            view.problems.append(Problem(server.origin, f"[{server.name}] cannot run ipmitool: {error.strerror}"))
    for name, proc in running.items():
        server = chain.servers[name]
        try:
            out, err = proc.communicate(timeout=timeout + 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        sensors = psu_sensor_states(out) if proc.returncode == 0 else []
        if not sensors:
            why = (err.strip().splitlines() or ["no Power Supply sensors"])[-1]
            view.problems.append(Problem(server.origin, f"[{name}] BMC at {server.bmc[0]}:{server.bmc[1]} gave no PSU health: {why}"))
            continue
        by_name = {sensor.split()[0].lower(): state for sensor, state in sensors}
        for index, psu in enumerate(server.psus):
            label = chain.links[psu].label.lower()
            # Sensors named after the PSU ("PSU1 Status"), else in order.
            state = by_name.get(label) or (sensors[index][1] if index < len(sensors) else None)
            if state is not None:
                view.states[psu] = state
