"""What a lab BMC is made of, as pure data: its users, the names of its
process and directory, its sensor numbering and raw readings, its FRU
images and the source of its SDR repository (sdrcomp input).

No I/O and no lab process here: the encoders are unit-tested on their own
(tests/unit/test_bmc_encoders.py) and read back by fence_ipmi_psu's own
parsers (infrapower.ipmi.psu).
"""

import datetime
import struct
import zlib

from infrapower.lab.rack import MAINS_VOLTS


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


# -- sensors ------------------------------------------------------------------

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


# -- names --------------------------------------------------------------------


def process_name(server):
    return f"bmc-{server}"


def bmc_directory(lab, server):
    return lab.path("bmc", server)


def credentials():
    """Who may log in, for tests and the demo."""
    return {
        name: {"password": password, "privilege": priv, "level": level}
        for name, password, priv, level in USERS.values()
    }


# -- FRU data (IPMI Platform Management FRU Information Storage Definition) ---


def fru_field(text):
    """8-bit ASCII type/length field: our strings are never 6-bit packed,
    whatever their case (ipmi_sim packs all-caps strings it encodes itself)."""
    data = text.encode("ascii")
    if len(data) > 63:
        raise ValueError(f"FRU field too long: {text!r}")
    return bytes([0xC0 | len(data)]) + data


def fru_area(head, fields):
    """An info area: head bytes (version, length placeholder, ...), fields,
    end marker, padded to 8 bytes with a zero checksum."""
    body = bytearray(head) + b"".join(fru_field(f) for f in fields) + b"\xC1"
    body += b"\x00" * ((-(len(body) + 1)) % 8)
    body[1] = (len(body) + 1) // 8
    return bytes(body) + bytes([(-sum(body)) & 0xFF])


def power_supply_record(watts):
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
        areas.append(fru_area(bytes([1, 0, 0]) + minutes.to_bytes(3, "little"), board))
    if product is not None:
        areas.append(fru_area(bytes([1, 0, 0]), product))
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
    # A board area too: its manufacturing date is the PSU's (device.mfr.date).
    return build_fru(
        board=["Delta Electronics", "DPS-800AB Power Supply", _serial("DSN", f"{server}:{psu}"), "Pn 341-0800-02", ""],
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
        multirecord=power_supply_record(PSU_RATING_WATTS),
    )


def board_fru(server, role):
    return build_fru(
        board=["Infrapower Lab", f"Lab Board ({role})", _serial("BSN", server), "Pn 100-0001-01", ""],
        product=["Infrapower Lab", f"Lab Server {server}", "Pn 200-0001-01", "Rev 1", _serial("SSN", server), server, ""],
    )


# -- SDR repository (sdrcomp source) ------------------------------------------


def numbered_psus(topology, server):
    """(number, name) per PSU, numbered 1.. in topology order."""
    return list(enumerate(topology["servers"][server]["psus"], start=1))


def input_sensor_number(name, number):
    return PSU_INPUT_SENSORS[name][0] + number - 1


def raw_reading(name, value):
    """The byte a sensor shows for `value` (volts, amps)."""
    _base, _type, _unit, m, r_exp, _label = PSU_INPUT_SENSORS[name]
    return max(0, min(255, round(value / (m * 10**r_exp))))


def input_sensor_sdr(name, number):
    """A full sensor record (type 1): threshold sensor with no thresholds,
    linear, unsigned, reading = M * raw * 10^R_exp."""
    _base, sensor_type, unit, m, r_exp, label = PSU_INPUT_SENSORS[name]
    return [
        "sdr type 1",
        f"  sensor_owner_id {BMC_ADDRESS:#x}",
        "  sensor_owner_lun 0",
        "  channel_number 0",
        f"  sensor_number {input_sensor_number(name, number):#x}",
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


def sdr_source(server, psus):
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
            *(line for name in PSU_INPUT_SENSORS for line in input_sensor_sdr(name, number)),
        ]
    return "\n".join(lines) + "\n"
