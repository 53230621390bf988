"""The lab's BMCs: one real `ipmi_sim` (OpenIPMI) per server of the rack,
spoken to over RMCP+ on 127.0.0.1 by real clients (ipmitool, pyghmi,
fence_ipmilan).

What each BMC knows comes from the rack, never from itself:

- chassis power: ipmi_sim asks an external program (`chassis_control` in
  lan.conf) for `get power` on every status request and runs `set power
  0|1` for on/off/cycle.  That program is this module's `chassis` entry
  point; it answers from `powered_servers()` (chassis on AND a healthy PSU
  fed), so a server whose feeds are cut reports off, as a real one would.
- PSU status sensors (IPMI sensor type 0x08, offsets 0 present, 1 failure,
  3 input lost): ipmi_sim cannot ask anyone for a sensor value, so a small
  watcher process (`bmc-sync`) polls the rack's state file and pushes every
  change to the BMC's emulator console (`sensor_set_bit`).  Callers never
  have to remember to sync; `sync_sensors()` exists for those that want the
  BMC to show a change before they go on (set_psu_fault does).
- PSU input voltage and current (sensor types 0x02/0x03, entity power
  supply, direction input): 230 V and 1.2 A while the PSU's feed is live,
  0 V and 0 A when it is not; the same watcher pushes them
  (`sensor_set_value`).
- FRU data: a server board FRU (id 0) and one FRU per PSU with maker,
  model, serial, part number and a standard Power Supply Information
  multirecord (capacity in W); rating also as a product extra field.

BMC loss is SIGSTOP of the ipmi_sim process: requests vanish unanswered,
as with a hung or unplugged controller.  SIGCONT brings it back.

Layout under `lab.path("bmc", server)`: lan.conf, bmc.emu, sdrs (sdrcomp
source), *.fru, the chassis wrapper, shown.json (the PSU bits and input
readings the BMC currently shows, kept under `bmc/console.lock`) and
ipmi_sim's state dir.
"""

import argparse
import contextlib
import datetime
import faulthandler
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

from infrapower.lab.core import Lab, LabError, free_port, lab_python, wait_until
from infrapower.lab.rack import MAINS_VOLTS, PSU_FAULTS, STATE_FILE, Rack, feeds, next_due, powered_servers, psu_health

# -- what clients need to know ------------------------------------------------

ADMIN_USER = "admin"
ADMIN_PASSWORD = "adminpw"
OPERATOR_USER = "operator"
OPERATOR_PASSWORD = "operpw"
# user number -> (name, password, ipmi_sim privilege, IPMI privilege level)
USERS = {
    2: (ADMIN_USER, ADMIN_PASSWORD, "admin", 4),
    3: (OPERATOR_USER, OPERATOR_PASSWORD, "operator", 3),
}
# ipmi_sim offers RMCP+ cipher suites 1-3 only; ipmitool without -C probes
# other suites for 10-20 s first.
CIPHER_SUITE = 3

BMC_ADDRESS = 0x20
PSU_SENSOR_BASE = 0x10  # psu N (1-based, topology order) is sensor 0x10+N-1
PSU_RATING_WATTS = 800
# Power Supply sensor-specific offsets (IPMI 2.0 table 42-3, type 0x08).
PRESENT, FAILURE, INPUT_LOST = 0, 1, 3
PSU_OFFSETS = {"present": PRESENT, "failure": FAILURE, "input_lost": INPUT_LOST}
# Input voltage (type 0x02) and current (type 0x03) per PSU: threshold
# sensors, full SDRs (entity power supply, direction input).  A reading is
# one raw byte, value = M * raw * 10^R: 2 V steps up to 510 V, 0.1 A steps
# up to 25.5 A.
PSU_INPUT_SENSORS = {
    # name: (sensor number base, sensor type, base unit (4 V, 5 A), M, R exp, label)
    "input_voltage": (0x20, 0x02, 4, 2, 0, "Vin"),
    "input_current": (0x30, 0x03, 5, 1, -1, "Iin"),
}
PSU_INPUT_VOLTS = MAINS_VOLTS
PSU_INPUT_AMPS = 1.2

SYNC_PROCESS = "bmc-sync"
SYNC_INTERVAL = 0.05
CONSOLE_TIMEOUT = 1.0


def process_name(server):
    return f"bmc-{server}"


def _bmc_dir(lab, server):
    return lab.path("bmc", server)


def credentials():
    """Who may log in, for tests and the demo."""
    return {
        name: {"password": password, "privilege": priv, "level": level}
        for name, password, priv, level in USERS.values()
    }


def ipmitool_argv(lab, server, user=ADMIN_USER, password=None, timeout=1, retries=1):
    """An ipmitool command line for this server's BMC, up to the subcommand."""
    if password is None:
        password = {name: pw for name, pw, _, _ in USERS.values()}[user]
    argv = ["ipmitool", "-I", "lanplus", "-C", str(CIPHER_SUITE), "-H", "127.0.0.1"]
    argv += ["-p", str(lab.port(f"bmc:{server}")), "-U", user, "-P", password]
    argv += ["-N", str(timeout), "-R", str(retries)]
    if user == OPERATOR_USER:
        argv += ["-L", "OPERATOR"]
    return argv


# -- FRU data (IPMI Platform Management FRU Information Storage Definition) ---


def _fru_field(text):
    """8-bit ASCII type/length field: our strings are never 6-bit packed,
    whatever their case (ipmi_sim packs all-caps strings it encodes itself)."""
    data = text.encode("ascii")
    if len(data) > 63:
        raise ValueError(f"FRU field too long: {text!r}")
    return bytes([0xC0 | len(data)]) + data


def _fru_area(head, fields):
    """An info area: head bytes (version, length placeholder, ...), fields,
    end marker, padded to 8 bytes with a zero checksum."""
    body = bytearray(head) + b"".join(_fru_field(f) for f in fields) + b"\xC1"
    body += b"\x00" * ((-(len(body) + 1)) % 8)
    body[1] = (len(body) + 1) // 8
    return bytes(body) + bytes([(-sum(body)) & 0xFF])


def _fru_power_supply_record(watts):
    """Multirecord type 0x00 (Power Supply Information), 24 bytes, last in list."""
    peak = (1 << 12) | int(watts * 1.1)  # 1 s holdup at 110 % of capacity
    data = struct.pack(
        "<HHBBHHHHBBBBHBHB",
        watts,  # overall capacity (W)
        int(watts * 1.25),  # peak VA
        30,  # inrush current (A)
        10,  # inrush interval (ms)
        9000, 26400,  # input voltage range 1, 10 mV units: 90-264 V
        0, 0,  # no range 2
        47, 63,  # input frequency (Hz)
        20,  # AC dropout tolerance (ms)
        0x1C,  # hot swap, autoswitch, power factor correction
        peak,
        0, 0, 0,  # no combined wattage, no tach threshold
    )
    header = bytes([0x00, 0x82, len(data), (-sum(data)) & 0xFF])
    return header + bytes([(-sum(header)) & 0xFF]) + data


def build_fru(board=None, product=None, multirecord=b""):
    """A FRU image: common header, optional board and product areas
    (lists of field strings), optional multirecord area."""
    areas = []
    offsets = [0, 0, 0, 0, 0]  # internal, chassis, board, product, multirecord
    position = 8
    if board is not None:
        minutes = int((datetime.datetime(2023, 3, 1) - datetime.datetime(1996, 1, 1)).total_seconds() // 60)
        areas.append(_fru_area(bytes([1, 0, 0]) + minutes.to_bytes(3, "little"), board))
    if product is not None:
        areas.append(_fru_area(bytes([1, 0, 0]), product))
    if multirecord:
        areas.append(multirecord)
    slots = [i for i, present in ((2, board), (3, product), (4, multirecord or None)) if present is not None]
    for slot, area in zip(slots, areas):
        offsets[slot] = position // 8
        position += len(area) + ((-len(area)) % 8)
    header = bytes([1] + offsets + [0])
    image = header + bytes([(-sum(header)) & 0xFF])
    for area in areas:
        image += area + b"\x00" * ((-len(area)) % 8)
    return image


def _serial(prefix, key):
    return f"{prefix}{zlib.crc32(key.encode()) % 10**8:08d}"


def psu_fru(server, psu):
    return build_fru(
        product=[
            "Delta Electronics",
            "DPS-800AB Power Supply",
            "Pn 341-0800-02",
            "Rev A02",
            _serial("DSN", f"{server}:{psu}"),
            f"{server} {psu}",
            "",
            f"Rating {PSU_RATING_WATTS}W",
        ],
        multirecord=_fru_power_supply_record(PSU_RATING_WATTS),
    )


def board_fru(server, role):
    return build_fru(
        board=["Infrapower Lab", f"Lab Board ({role})", _serial("BSN", server), "Pn 100-0001-01", ""],
        product=["Infrapower Lab", f"Lab Server {server}", "Pn 200-0001-01", "Rev 1", _serial("SSN", server), server, ""],
    )


# -- configuration ------------------------------------------------------------


def _psus(topology, server):
    """(number, name) per PSU, numbered 1.. in topology order."""
    return list(enumerate(topology["servers"][server]["psus"], start=1))


def _input_sensor(name, number):
    return PSU_INPUT_SENSORS[name][0] + number - 1


def _raw_reading(name, value):
    """The byte a sensor shows for `value` (volts, amps)."""
    _base, _type, _unit, m, r_exp, _label = PSU_INPUT_SENSORS[name]
    return max(0, min(255, round(value / (m * 10**r_exp))))


def _input_sensor_sdr(name, number):
    """A full sensor record (type 1): threshold sensor with no thresholds,
    linear, unsigned, reading = M * raw * 10^R_exp."""
    _base, sensor_type, unit, m, r_exp, label = PSU_INPUT_SENSORS[name]
    return [
        "sdr type 1",
        f"  sensor_owner_id {BMC_ADDRESS:#x}",
        "  sensor_owner_lun 0",
        "  channel_number 0",
        f"  sensor_number {_input_sensor(name, number):#x}",
        "  entity_id power_supply",
        f"  entity_instance {number}",
        "  init_scanning true",
        "  init_sensor_type true",
        "  default_sensor_scan_on true",
        f"  sensor_type {sensor_type:#x}",
        "  event_reading_type_code 1",
        "  analog_data_format unsigned",
        "  linearization linear",
        f"  base_unit {unit}",
        f"  m {m}",
        "  b 0",
        f"  r_exp {r_exp}",
        "  b_exp 0",
        "  sensor_direction input",
        "  sensor_minimum 0",
        "  sensor_maximum 255",
        f'  id_string "PSU{number} {label}"',
        "endsdr",
    ]


def _sdr_source(server, psus):
    """sdrcomp input: the MC locator; per PSU a compact status sensor, a
    FRU locator and full input voltage/current sensors.  ID strings are mixed case: all-caps ones get 6-bit packed."""
    lines = [
        "sdr type 18",
        f"  device_slave_address {BMC_ADDRESS:#x}",
        "  device_channel_number 0",
        "  chassis true",
        "  ipmb_event_gen false",
        "  ipmb_event_recv false",
        "  fru_inventory true",
        "  sel true",
        "  sdr true",
        "  sensor true",
        "  entity_id system_board",
        "  entity_instance 1",
        f'  id_string "Lab Bmc {server}"',
        "endsdr",
    ]
    for number, _psu in psus:
        bits = [f"  {kind}_event{offset} true" for offset in PSU_OFFSETS.values() for kind in ("assert", "deassert")]
        bits += [f"  event{offset}_state_ret true" for offset in PSU_OFFSETS.values()]
        lines += [
            "sdr type 2",
            f"  sensor_owner_id {BMC_ADDRESS:#x}",
            "  sensor_owner_lun 0",
            "  channel_number 0",
            f"  sensor_number {PSU_SENSOR_BASE + number - 1:#x}",
            "  entity_id power_supply",
            f"  entity_instance {number}",
            "  init_scanning true",
            "  init_events true",
            "  init_sensor_type true",
            "  default_event_gen_on true",
            "  default_sensor_scan_on true",
            "  sensor_type Power_Supply",
            "  event_reading_type_code 0x6f",
            *bits,
            f'  id_string "PSU{number} Status"',
            "endsdr",
            "sdr type 17",
            f"  device_access_address {BMC_ADDRESS:#x}",
            f"  fru_device_address {number}",
            "  logical_fru true",
            "  device_type 0x10",
            "  device_type_modifier 0",
            "  fru_entity_id power_supply",
            f"  fru_entity_instance {number}",
            f'  id_string "Power Supply {number}"',
            "endsdr",
            *(line for name in PSU_INPUT_SENSORS for line in _input_sensor_sdr(name, number)),
        ]
    return "\n".join(lines) + "\n"


def _emu_script(bmc_dir, psus, shown):
    """ipmi_sim's start-up commands: the BMC, its SEL, FRUs and PSU sensors,
    the sensors already showing the rack's current state."""
    mask = "".join("1" if bit in PSU_OFFSETS.values() else "0" for bit in reversed(range(15)))
    lines = [
        f"mc_setbmc {BMC_ADDRESS:#x}",
        # device id 0, rev 3, fw 9.08, IPMI 2.0-ish support bits incl. chassis (0x80)
        f"mc_add {BMC_ADDRESS:#x} 0 no-device-sdrs 0x03 9 8 0x9f 0x1291 0xf02 persist_sdr",
        f"sel_enable {BMC_ADDRESS:#x} 1000 0x0a",
        f'mc_add_fru_data {BMC_ADDRESS:#x} 0 {(bmc_dir / "board.fru").stat().st_size} file 0 "{bmc_dir / "board.fru"}"',
    ]
    for number, psu in psus:
        sensor = PSU_SENSOR_BASE + number - 1
        fru = bmc_dir / f"{psu}.fru"
        lines += [
            f"sensor_add {BMC_ADDRESS:#x} 0 {sensor:#x} 0x08 0x6f",
            # "scanning" is what makes the sensor readable over LAN.
            f"sensor_set_event_support {BMC_ADDRESS:#x} 0 {sensor:#x} enable scanning per-state"
            f" {mask} {mask} {mask} {mask}",
            *(
                f"sensor_set_bit {BMC_ADDRESS:#x} 0 {sensor:#x} {offset} {int(shown[psu][name])} 0"
                for name, offset in PSU_OFFSETS.items()
            ),
            f'mc_add_fru_data {BMC_ADDRESS:#x} {number} {fru.stat().st_size} file 0 "{fru}"',
        ]
        for name, (_base, sensor_type, *_rest) in PSU_INPUT_SENSORS.items():
            sensor = _input_sensor(name, number)
            lines += [
                f"sensor_add {BMC_ADDRESS:#x} 0 {sensor:#x} {sensor_type:#04x} 0x01",
                f"sensor_set_event_support {BMC_ADDRESS:#x} 0 {sensor:#x} disable scanning none"
                f" {'0' * 15} {'0' * 15} {'0' * 15} {'0' * 15}",
                f"sensor_set_value {BMC_ADDRESS:#x} 0 {sensor:#x} {_raw_reading(name, shown[psu][name])} 0",
            ]
    lines.append(f"mc_enable {BMC_ADDRESS:#x}")
    return "\n".join(lines) + "\n"


def _lan_conf(server, port, console_port, chassis_script):
    users = "\n".join(
        f'  user {number} true "{name}" "{password}" {priv} 10 md5'
        for number, (name, password, priv, _level) in USERS.items()
    )
    guid = f"{zlib.crc32(server.encode()):08x}" * 4
    return f"""# BMC of {server}: written by infrapower.lab.bmc, rewritten at every start
name "{process_name(server)}"
set_working_mc {BMC_ADDRESS:#x}
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid {guid}
  endlan
  chassis_control "{chassis_script}"
{users}
console 127.0.0.1 {console_port}
"""


def _chassis_wrapper(lab, server):
    """ipmi_sim runs chassis_control with its own environment and appends
    `get power` / `set power 1`: pin everything the entry point needs.
    -S skips site-packages: the entry point needs only the stdlib and this
    package, and `get power` runs on every status request."""
    root = Path(__file__).resolve().parents[2]
    return f"""#!/bin/sh
PYTHONPATH='{root}'
INFRAPOWER_LAB_DIR='{lab.dir}'
export PYTHONPATH INFRAPOWER_LAB_DIR
exec '{lab_python()}' -S -m infrapower.lab.bmc chassis --lab '{lab.dir}' --server '{server}' "$@"
"""


# -- what the BMC should show -------------------------------------------------


def desired_sensors(topology, state, server):
    """Per PSU of `server`: the sensor bits its BMC should show now."""
    fed = feeds(topology, state)
    shown = {}
    for _number, psu in _psus(topology, server):
        fault = state["faults"].get(f"{server}:{psu}", {}).get("kind")
        present = fault != "absent"
        shown[psu] = {
            "present": present,
            "failure": present and fault == "failed",
            # An absent PSU reports nothing at all; a failed one still
            # senses whether its input is live.
            "input_lost": present and not fed[f"{server}:{psu}"],
            # What the PSU measures at its input: nothing when unfed or
            # pulled (a failed PSU still measures its live input, but
            # draws no current).
            "input_voltage": PSU_INPUT_VOLTS if present and fed[f"{server}:{psu}"] else 0.0,
            "input_current": PSU_INPUT_AMPS if present and fed[f"{server}:{psu}"] and fault != "failed" else 0.0,
        }
    return shown


def _bmc_down(state, server):
    return state["faults"].get(f"bmc:{server}", {}).get("kind") == "down"


# -- the emulator console -----------------------------------------------------


class Console:
    """ipmi_sim's emulator console (telnet-ish): one command per line,
    answered with an echo, optional `**error` lines and a `> ` prompt.
    ipmi_sim also copies its log (IPMI message dumps, "Session closed")
    to every console at any time, so answers are found by position (the
    prompt after our echo), never by "the buffer ends with a prompt"."""

    PROMPT = b"> "

    def __init__(self, port, timeout=CONSOLE_TIMEOUT):
        self.port = port
        self.timeout = timeout
        self.buffer = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self._read_until(lambda data: data.find(self.PROMPT))
            self.buffer = b""
        except BaseException:
            self.sock.close()
            raise

    def _read_until(self, find):
        """Read until find(buffer) >= 0, within `timeout` overall (a
        trickle of log lines must not keep us waiting forever)."""
        deadline = time.monotonic() + self.timeout
        while (position := find(self.buffer)) < 0:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise socket.timeout
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(4096)
            except socket.timeout:
                raise LabError(
                    f"BMC console on port {self.port}: no answer in {self.timeout} s, got {self.buffer[-300:]!r}"
                ) from None
            if not chunk:
                raise LabError(f"BMC console on port {self.port} closed the connection, got {self.buffer[-300:]!r}")
            self.buffer += chunk
        return position

    def run(self, command):
        echo = command.encode()
        self.buffer = b""
        self.sock.sendall(echo + b"\n")

        def prompt_after_echo(data):
            start = data.find(echo)
            return -1 if start < 0 else data.find(self.PROMPT, start + len(echo))

        prompt = self._read_until(prompt_after_echo)
        answer = self.buffer[self.buffer.find(echo) + len(echo):prompt].decode("latin-1")
        self.buffer = b""
        errors = [line.strip() for line in answer.splitlines() if line.strip().startswith("**")]
        if errors:
            raise LabError(f"BMC console on port {self.port}: {command!r} failed: {errors[0]}")
        return answer

    def close(self):
        self.sock.close()


@contextlib.contextmanager
def _console_lock(lab):
    """Serialises pushes (watcher and direct callers) so the last pusher
    always pushes the newest rack state and shown.json stays true."""
    with open(lab.path("bmc", "console.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_shown(lab, server):
    try:
        return json.loads((_bmc_dir(lab, server) / "shown.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_shown(lab, server, shown):
    path = _bmc_dir(lab, server) / "shown.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(shown, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _push(lab, server, topology, desired, shown):
    """Send the bits that differ; events go to the SEL as a real BMC's would."""
    changes = []
    for number, psu in _psus(topology, server):
        for name, offset in PSU_OFFSETS.items():
            if shown.get(psu, {}).get(name) != desired[psu][name]:
                sensor = PSU_SENSOR_BASE + number - 1
                changes.append(f"sensor_set_bit {BMC_ADDRESS:#x} 0 {sensor:#x} {offset} {int(desired[psu][name])} 1")
        for name in PSU_INPUT_SENSORS:
            if shown.get(psu, {}).get(name) != desired[psu][name]:
                sensor = _input_sensor(name, number)
                raw = _raw_reading(name, desired[psu][name])
                changes.append(f"sensor_set_value {BMC_ADDRESS:#x} 0 {sensor:#x} {raw} 0")
    if not changes:
        return []
    try:
        console = Console(lab.port(f"bmc-console:{server}"))
    except OSError as exc:
        raise LabError(f"BMC console of {server} unreachable: {exc}; see {lab.path('logs', process_name(server) + '.log')}")
    try:
        for command in changes:
            console.run(command)
    except OSError as exc:
        raise LabError(f"BMC console of {server} stopped answering: {exc}") from None
    finally:
        console.close()
    return changes


def sync_sensors(lab, servers=None):
    """Make the BMCs' PSU sensors show the rack's state now; BMCs that are
    down are skipped (the watcher catches them up when they return).
    Returns (rack state, {server: commands sent})."""
    topology = lab.rack.topology()
    pushed = {}
    with _console_lock(lab):
        state = lab.rack.read()
        for server in servers or topology["servers"]:
            if _bmc_down(state, server):
                continue
            desired = desired_sensors(topology, state, server)
            shown = _read_shown(lab, server)
            if desired != shown:
                pushed[server] = _push(lab, server, topology, desired, shown)
                _write_shown(lab, server, desired)
    return state, pushed


def watch(lab_dir, interval=SYNC_INTERVAL):
    """The `bmc-sync` process: push every rack change to the BMCs."""
    lab = Lab(lab_dir)
    # `kill -USR1` prints where the watcher is, should it ever seem stuck.
    faulthandler.register(signal.SIGUSR1, file=sys.stdout)
    state_file = lab.path(STATE_FILE)
    seen = None
    due = 0.0
    while True:
        # The content, not the mtime: two writes within one kernel timer
        # tick can share an mtime; the file is a few KB, replaced atomically.
        try:
            content = state_file.read_bytes()
        except FileNotFoundError:
            return 0  # the lab was removed under us
        if content != seen or time.time() >= due:
            seen = content
            try:
                state, pushed = sync_sensors(lab)
                due = next_due(state)
                for server, commands in pushed.items():
                    print(f"{time.strftime('%H:%M:%S')} {server}: {'; '.join(commands)}", flush=True)
            except (LabError, OSError, ValueError, KeyError) as exc:
                print(f"{time.strftime('%H:%M:%S')} sync failed, retrying in 1 s: {exc}", flush=True)
                due = time.time() + 1.0
        time.sleep(interval)


# -- lifecycle ----------------------------------------------------------------


def _write_config(lab, server, topology, state):
    bmc_dir = _bmc_dir(lab, server)
    if bmc_dir.exists():
        shutil.rmtree(bmc_dir)  # a fresh BMC: no users, SEL or SDRs left from before
    persist_dir = bmc_dir / "state" / "ipmi_sim" / process_name(server)
    persist_dir.mkdir(parents=True)
    psus = _psus(topology, server)

    (bmc_dir / "board.fru").write_bytes(board_fru(server, topology["servers"][server].get("role", "server")))
    for _number, psu in psus:
        (bmc_dir / f"{psu}.fru").write_bytes(psu_fru(server, psu))

    # ipmi_sim loads the main SDR repository from its persist dir (mc_add ... persist_sdr).
    (bmc_dir / "sdrs").write_text(_sdr_source(server, psus))
    compiled = subprocess.run(
        ["sdrcomp", "-o", str(persist_dir / f"sdr.{BMC_ADDRESS:x}.main"), str(bmc_dir / "sdrs")],
        capture_output=True,
        text=True,
    )
    if compiled.returncode != 0:
        raise LabError(f"sdrcomp failed on {bmc_dir / 'sdrs'}: {compiled.stderr.strip()}")

    shown = desired_sensors(topology, state, server)
    if _bmc_down(state, server):
        lab.rack.set_fault(f"bmc:{server}", None)  # a restarted BMC is up
    _write_shown(lab, server, shown)
    (bmc_dir / "bmc.emu").write_text(_emu_script(bmc_dir, psus, shown))

    chassis = bmc_dir / "chassis"
    chassis.write_text(_chassis_wrapper(lab, server))
    chassis.chmod(0o755)

    port, console_port = free_port("udp"), free_port("tcp")
    (bmc_dir / "lan.conf").write_text(_lan_conf(server, port, console_port, chassis))
    lab.set_port(f"bmc:{server}", port)
    lab.set_port(f"bmc-console:{server}", console_port)


# ipmi_sim dies of SIGPIPE when a console client hangs up before reading
# its greeting (seen: a bare connect-and-close killed it).  Python's
# subprocess restores SIGPIPE to default in children, so ignore it in a
# shell that then execs ipmi_sim (same PID, the ignore survives exec).
_IGNORE_SIGPIPE = ["sh", "-c", 'trap "" PIPE; exec "$0" "$@"']


def start(lab, servers=None):
    """Write every BMC's configuration and start its ipmi_sim, plus the
    sensor watcher.  Returns at once; call wait_ready()."""
    if shutil.which("ipmi_sim") is None or shutil.which("sdrcomp") is None:
        raise LabError("ipmi_sim/sdrcomp not found: install the Debian package openipmi")
    topology = lab.rack.topology()
    lab.path("bmc").mkdir(parents=True, exist_ok=True)
    with _console_lock(lab):
        state = lab.rack.read()
        for server in servers or topology["servers"]:
            lab.stop(process_name(server))
            _write_config(lab, server, topology, state)
            bmc_dir = _bmc_dir(lab, server)
            lab.spawn(
                process_name(server),
                [*_IGNORE_SIGPIPE, "ipmi_sim", "-c", bmc_dir / "lan.conf", "-f", bmc_dir / "bmc.emu", "-s", bmc_dir / "state", "-n"],
                cwd=bmc_dir,
            )
    lab.stop(SYNC_PROCESS)
    lab.spawn(SYNC_PROCESS, [lab_python(), "-m", "infrapower.lab.bmc", "sync", "--lab", lab.dir])


def stop(lab):
    lab.stop(SYNC_PROCESS)
    for server in lab.rack.topology()["servers"]:
        lab.stop(process_name(server))


def _rmcp_ping(ports, deadline):
    """ASF presence ping (RMCP class 6) to every port until each answers
    with a pong: proves the LAN side is up without a session."""
    waiting = set(ports)
    ping = bytes.fromhex("0600ff06" "000011be" "80" "01" "00" "00")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while waiting and time.monotonic() < deadline:
            for port in waiting:
                sock.sendto(ping, ("127.0.0.1", port))
            end = time.monotonic() + 0.05
            while waiting and time.monotonic() < end:
                try:
                    data, (_host, port) = sock.recvfrom(512)
                except socket.timeout:
                    break
                except ConnectionRefusedError:  # ICMP from a port not bound yet
                    continue
                if len(data) >= 9 and data[8] == 0x40:
                    waiting.discard(port)
    return waiting


def wait_ready(lab, deadline, servers=None):
    """Poll until every BMC answers an RMCP ping and its console accepts."""
    servers = list(servers or lab.rack.topology()["servers"])
    ports = {lab.port(f"bmc:{server}"): server for server in servers}
    while True:
        for server in servers:
            if not lab.alive(process_name(server)):
                log = lab.path("logs", f"{process_name(server)}.log")
                raise LabError(f"BMC of {server} (ipmi_sim) exited at start; see {log} and {_bmc_dir(lab, server)}")
        silent = _rmcp_ping(ports, min(deadline, time.monotonic() + 0.2))
        if not silent:
            break
        if time.monotonic() >= deadline:
            names = ", ".join(ports[p] for p in sorted(silent))
            raise LabError(f"BMC of {names} did not answer RMCP ping; see {lab.path('logs')}")
    for server in servers:
        port = lab.port(f"bmc-console:{server}")
        # A full prompt, not a bare connect: see _IGNORE_SIGPIPE.
        wait_until(lambda: Console(port, timeout=0.5).close() or True, deadline, f"BMC console of {server}")
    if not lab.alive(SYNC_PROCESS):
        raise LabError(f"BMC sensor watcher exited; see {lab.path('logs', SYNC_PROCESS + '.log')}")


# -- run-time control ---------------------------------------------------------


def set_psu_fault(lab, server, psu, kind):
    """Fail (`failed`), pull (`absent`) or repair (None) a PSU; returns
    once the BMC's sensors show it (unless the BMC is down)."""
    if kind is not None and kind not in PSU_FAULTS:
        raise LabError(f"unknown PSU fault {kind!r}: use one of {PSU_FAULTS} or None")
    if psu not in lab.rack.topology()["servers"][server]["psus"]:
        raise LabError(f"{server} has no {psu}")
    lab.rack.set_fault(f"{server}:{psu}", kind)
    sync_sensors(lab, [server])


def set_bmc_down(lab, server, down):
    """BMC loss: SIGSTOP makes ipmi_sim a black hole (no answer at all);
    SIGCONT brings it back, then its sensors catch up with the rack."""
    name = process_name(server)
    if down:
        # Recorded first so no push starts against a stopped console.
        lab.rack.set_fault(f"bmc:{server}", "down")
        with _console_lock(lab):  # let a push in flight finish
            lab.signal(name, signal.SIGSTOP)
    else:
        lab.signal(name, signal.SIGCONT)
        lab.rack.set_fault(f"bmc:{server}", None)
        sync_sensors(lab, [server])


def _query_power(argvs, timeout=3.0):
    """Run `chassis power status` against several BMCs at once."""
    procs = {
        server: subprocess.Popen(argv + ["chassis", "power", "status"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        for server, argv in argvs.items()
    }
    answers = {}
    for server, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        answers[server] = out.strip().rsplit(" ", 1)[-1] if "Chassis Power is" in out else None
    return answers


def status(lab):
    """Per server: ports, chassis power as its BMC reports it (None when
    the BMC does not answer), PSU health per the rack, BMC up/down."""
    topology = lab.rack.topology()
    state = lab.rack.read()
    servers = list(topology["servers"])
    up = [s for s in servers if lab.alive(process_name(s)) and not _bmc_down(state, s)]
    power = _query_power({s: ipmitool_argv(lab, s) for s in up})
    health = psu_health(topology, state)
    return {
        server: {
            "port": lab.ports().get(f"bmc:{server}"),
            "console_port": lab.ports().get(f"bmc-console:{server}"),
            "bmc": "down" if _bmc_down(state, server) else ("up" if server in up else "stopped"),
            "power": power.get(server),
            "psus": {psu: health[f"{server}:{psu}"] for _n, psu in _psus(topology, server)},
            "users": credentials(),
            "cipher_suite": CIPHER_SUITE,
        }
        for server in servers
    }


# -- entry points ---------------------------------------------------------------


def chassis(lab_dir, server, operation, params):
    """ipmi_sim's chassis_control protocol: `get power [boot]` prints
    `power:0|1`; `set power 0|1`, `set reset 1`, `set boot X`, `set
    identify I F` print nothing on success.  Errors go to stdout with a
    non-zero exit, where ipmi_sim logs them."""
    rack = Rack(lab_dir)
    if operation == "get":
        for param in params:
            if param == "power":
                powered = powered_servers(rack.topology(), rack.read())[server]
                print(f"power:{int(powered)}")
            elif param == "boot":
                print("boot:default")
            else:
                print(f"Invalid parameter: {param}")
                return 1
        return 0
    if operation == "set":
        args = list(params)
        while args:
            param = args.pop(0)
            if not args:
                print(f"No value present for parameter {param}")
                return 1
            value = args.pop(0)
            if param == "power":
                rack.set_chassis(server, value == "1")
            elif param == "reset":
                # A hard reset: the server goes down and comes straight
                # back, which the power log shows as off then on.
                if value == "1" and rack.read()["chassis"][server]:
                    rack.set_chassis(server, False)
                    rack.set_chassis(server, True)
            elif param == "boot":
                pass
            elif param == "identify":
                if args:
                    args.pop(0)  # the force flag
            else:
                print(f"Invalid parameter: {param}")
                return 1
        return 0
    print(f"Unsupported operation: {operation}")
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m infrapower.lab.bmc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chassis_cmd = sub.add_parser("chassis", help="ipmi_sim's chassis_control program")
    chassis_cmd.add_argument("--lab", default=os.environ.get("INFRAPOWER_LAB_DIR"), required=False)
    chassis_cmd.add_argument("--server", required=True)
    chassis_cmd.add_argument("operation")
    chassis_cmd.add_argument("params", nargs="*")
    sync_cmd = sub.add_parser("sync", help="push rack changes to the BMCs' PSU sensors")
    sync_cmd.add_argument("--lab", default=os.environ.get("INFRAPOWER_LAB_DIR"))
    args = parser.parse_args(argv)
    if not args.lab:
        parser.error("--lab (or INFRAPOWER_LAB_DIR) is required")
    if args.command == "chassis":
        return chassis(args.lab, args.server, args.operation, args.params)
    return watch(args.lab)


if __name__ == "__main__":
    sys.exit(main())
