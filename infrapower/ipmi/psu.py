"""A server's power supplies as its BMC knows them: SDR records (status
sensors, FRU locators, input voltage/current sensors with the
power-supply entity), FRU data and sensor readings; as an inventory, a
min_psus check and NUT-style variables (like nut-ipmipsu, out of band).

pyghmi decodes what the BMC returns: FRU areas (pyghmi.ipmi.fru) and SDR
records with their readings (pyghmi.ipmi.sdr); the exchanges go through
infrapower.ipmi.session.
"""

import dataclasses
import logging
import random
import struct
import time
from typing import Optional

from infrapower.fence import FenceError
from infrapower.ipmi.session import NETFN_SENSOR, NETFN_STORAGE, CompletionCodeError, IpmiError

log = logging.getLogger(__name__)

# SDR record types and codes (§43, §42.2, table 43-15) the inventory uses.
_FULL_SENSOR, _COMPACT_SENSOR, _FRU_LOCATOR = 0x01, 0x02, 0x11
_ENTITY_POWER_SUPPLY = 0x0A
_SENSOR_TYPE_POWER_SUPPLY = 0x08
_UNIT_VOLTS, _UNIT_AMPS = 4, 5
_DIRECTION_OUTPUT = 2
# Power Supply sensor offsets (table 42-3, sensor type 08h).
_PRESENT, _FAILURE, _INPUT_LOST, _INPUT_OUT_OF_RANGE = 0, 1, 3, 4
# FRU and SDR reads: most BMCs take this much per Read FRU Data; some (ipmi_sim
# among them) answer 0xC8/0xCA to anything over ~32 bytes.
_FRU_CHUNK, _FRU_SMALL_CHUNK = 128, 32
_READ_TOO_LONG = (0xC8, 0xCA)
_SDR_PART = 16  # bytes per partial Get SDR, as ipmitool reads them
_SDR_PART_FIRST = 32  # tried first (ipmi_sim takes 32): half the requests; 16 once refused
_RESERVATION_CANCELED = 0xC5
_RESERVATION_TRIES = 10
_MULTIRECORD_POWER_SUPPLY = 0x00

HEALTHY = "ok"


@dataclasses.dataclass
class PowerSupply:
    """One PSU as the BMC knows it.  `state`: ok, failed, input lost,
    absent (from its status sensor), present (FRU only, no sensor) or
    unknown (sensor unreadable)."""

    index: int  # entity instance
    name: str
    fru_id: Optional[int] = None
    maker: str = ""
    model: str = ""
    serial: str = ""
    part: str = ""
    rating_watts: Optional[int] = None
    state: str = "unknown"
    input_voltage: Optional[float] = None
    input_current: Optional[float] = None
    mfr_date: str = ""  # ISO 8601 (YYYY-MM-DD), from the FRU's board area
    # From the FRU's Power Supply Information record: input voltage range 1
    # (V) and input frequency range (Hz).
    input_voltage_range: Optional[tuple] = None
    input_frequency_range: Optional[tuple] = None
    fru_read: bool = False  # its FRU answered: "present" when no sensor says more

    @property
    def healthy(self):
        return self.state == HEALTHY

    def nut_variables(self):
        """NUT-style variables, as nut-ipmipsu names them; absent values
        are left out as NUT does."""
        variables = {
            "device.type": "psu",
            "device.mfr": self.maker,
            "device.model": self.model,
            "device.serial": self.serial,
            "device.part": self.part,
            "device.mfr.date": self.mfr_date,
            "input.voltage": _number(self.input_voltage),
            "input.current": _number(self.input_current),
            "ups.realpower.nominal": str(self.rating_watts) if self.rating_watts else "",
            "ups.status": "OL" if self.healthy else "OFF",
        }
        if self.input_voltage_range:
            variables["input.voltage.minimum"], variables["input.voltage.maximum"] = map(_number, self.input_voltage_range)
        if self.input_frequency_range:
            variables["input.frequency.low"], variables["input.frequency.high"] = map(_number, self.input_frequency_range)
        return {name: value for name, value in variables.items() if value}


def _number(value):
    return "" if value is None else f"{value:g}"


def check_min_psus(supplies, min_psus):
    """FenceError naming the unhealthy PSUs when fewer than min_psus are
    healthy: monitor fails, so `pcs status` shows the degraded node."""
    healthy = [psu for psu in supplies if psu.healthy]
    if len(healthy) >= min_psus:
        return
    others = ", ".join(f"{psu.name} {psu.state}" for psu in supplies if not psu.healthy)
    raise FenceError(f"only {len(healthy)} of {len(supplies)} power supplies healthy"
                     f"{' (' + others + ')' if others else ''}; min_psus is {min_psus}")


def read_power_supplies(session, fru=True):
    """Every PSU the BMC's SDR repository names (status sensors and FRU
    locators with the power-supply entity), with FRU data (unless `fru`
    is False: health needs only the sensors, and a FRU image costs a
    dozen requests per PSU) and readings."""
    try:
        return _read_power_supplies(session, fru)
    except IpmiError as error:
        raise FenceError(str(error)) from None


def _read_power_supplies(session, fru=True):
    supplies, sensors = power_supply_inventory(session, fru)
    for psu in supplies:
        read_psu_sensors(session, psu, sensors.get(psu.index, ()))
    return supplies


def power_supply_inventory(session, fru=True):
    """What does not change while the BMC runs: every PSU the SDR repository
    names, with its FRU data, and how to read each one's sensors:
    ([PowerSupply] in entity order, {index: [(kind, SDR entry)]}).  A NUT
    driver reads this once and then only the sensors (read_psu_sensors)."""
    from pyghmi.ipmi.private import constants
    from pyghmi.ipmi.sdr import SDREntry

    supplies = {}
    sensors = {}  # instance: [(kind, sdr entry)]

    def supply(instance, name):
        return supplies.setdefault(instance, PowerSupply(index=instance, name=name))

    for record in read_sdr_repository(session):
        if record[3] not in (_FULL_SENSOR, _COMPACT_SENSOR, _FRU_LOCATOR):
            continue
        entry = SDREntry(record, constants)
        # pyghmi keeps the entity's name, not its id and instance: those
        # are read from the record (sensor key bytes 8-9, locator 12-13).
        entity, instance = (record[12], record[13]) if record[3] == _FRU_LOCATOR else (record[8], record[9])
        if record[3] == _FRU_LOCATOR:
            if entity == _ENTITY_POWER_SUPPLY:
                psu = supply(instance, entry.fru_name)
                psu.name, psu.fru_id = entry.fru_name, entry.fru_number
        elif entry.sensor_type_number == _SENSOR_TYPE_POWER_SUPPLY:
            supply(instance, entry.sensor_name)
            sensors.setdefault(instance, []).append(("status", entry))
        elif entity == _ENTITY_POWER_SUPPLY and record[3] == _FULL_SENSOR:
            unit = record[5 + 16]  # base unit, full sensor record byte 21
            if unit in (_UNIT_VOLTS, _UNIT_AMPS) and getattr(entry, "direction", 0) != _DIRECTION_OUTPUT:
                supply(instance, entry.sensor_name)
                sensors.setdefault(instance, []).append((unit, entry))

    for psu in supplies.values():
        if fru and psu.fru_id is not None:
            _fill_from_fru(session, psu)
    return [supplies[index] for index in sorted(supplies)], sensors


def read_psu_sensors(session, psu, sensors):
    """`psu`'s state and input readings as its sensors show them now
    (`sensors`: its list from power_supply_inventory)."""
    psu.state, psu.input_voltage, psu.input_current = "unknown", None, None
    for kind, entry in sensors:
        reading = _sensor_reading(session, entry.sensor_number)
        if reading is None:
            continue
        if kind == "status":
            psu.state = _psu_state(reading)
            continue
        decoded = entry.decode_sensor_reading(None, reading)
        value = getattr(decoded, "value", None)
        if value is not None:
            # The linear conversion leaves float noise (1.2000000000000002);
            # no PSU sensor resolves finer than a milli-unit.
            value = round(value, 3)
        if kind == _UNIT_VOLTS:
            psu.input_voltage = value
        else:
            psu.input_current = value
    if psu.state == "unknown" and psu.fru_read:
        psu.state = "present"  # its FRU answered, no sensor says more


def _sensor_reading(session, number):
    """Get Sensor Reading (§35.14); None when the BMC has no reading."""
    try:
        reading = session.command(NETFN_SENSOR, 0x2D, bytes([number]))
    except CompletionCodeError as error:
        log.debug("sensor %#04x: %s", number, error)
        return None
    if len(reading) < 3 or reading[1] & 0x20:  # "reading/state unavailable"
        return None
    return reading


def _psu_state(reading):
    bits = reading[2] | ((reading[3] & 0x7F) << 8 if len(reading) > 3 else 0)

    def asserted(offset):
        return bool(bits & (1 << offset))

    if not asserted(_PRESENT):
        return "absent"
    if asserted(_FAILURE):
        return "failed"
    if asserted(_INPUT_LOST) or asserted(_INPUT_OUT_OF_RANGE):
        return "input lost"
    return HEALTHY


def read_sdr_repository(session):
    """Every record of the main SDR repository (§33.12), header included.
    A whole record per Get SDR; partial reads (which need a reservation)
    only for BMCs that refuse that."""
    records = []
    record_id = 0
    seen = set()  # a broken repository may link back to an earlier record
    reservation = None  # set once the BMC refused a whole-record read
    part = [_SDR_PART_FIRST]  # bytes per partial read, down to _SDR_PART once refused
    while record_id != 0xFFFF:
        if record_id in seen:
            raise IpmiError(f"BMC {session.target}: SDR repository loops on record {record_id:#06x}")
        seen.add(record_id)
        if reservation is None:
            try:
                answer = session.command(NETFN_STORAGE, 0x23, struct.pack("<HHBB", 0, record_id, 0, 0xFF))
            except CompletionCodeError as error:
                if error.code not in _READ_TOO_LONG:
                    raise
                reservation = struct.unpack("<H", session.command(NETFN_STORAGE, 0x22)[:2])[0]
        if reservation is None:
            next_id, record = struct.unpack_from("<H", answer)[0], answer[2:]
        else:
            for attempt in range(_RESERVATION_TRIES):
                try:
                    next_id, record = _read_sdr_in_parts(session, reservation, record_id, part)
                    break
                except CompletionCodeError as error:
                    # Another client (a second PSU driver on the same BMC)
                    # reserved the repository since: reserve again, as ipmitool does.
                    if error.code != _RESERVATION_CANCELED or attempt + 1 == _RESERVATION_TRIES:
                        raise
                    # A random pause, growing: two readers that keep cancelling
                    # each other's reservations fall out of step.
                    time.sleep(random.uniform(0.01, 0.04) * (attempt + 1))
                    reservation = struct.unpack("<H", session.command(NETFN_STORAGE, 0x22)[:2])[0]
        records.append(record)
        record_id = next_id
    return records


def _read_sdr_in_parts(session, reservation, record_id, part):
    """One record: its header, then the rest `part[0]` bytes at a time
    (lowered to _SDR_PART for good when the BMC refuses that many)."""
    header = session.command(NETFN_STORAGE, 0x23, struct.pack("<HHBB", reservation, record_id, 0, 5))
    next_id, record = struct.unpack_from("<H", header)[0], bytearray(header[2:])
    length = record[4] + 5
    while len(record) < length:
        size = min(part[0], length - len(record))
        try:
            answer = session.command(NETFN_STORAGE, 0x23, struct.pack("<HHBB", reservation, record_id, len(record), size))
        except CompletionCodeError as error:
            if error.code not in _READ_TOO_LONG or part[0] <= _SDR_PART:
                raise
            part[0] = _SDR_PART
            continue
        if len(answer) <= 2:  # no progress: the loop would never end
            raise IpmiError(f"BMC {session.target}: empty SDR read for record {record_id:#06x}")
        record += answer[2:]
    return next_id, bytes(record)


def read_fru(session, fru_id):
    """The FRU image (§34.1-34.2) in chunks: large ones first, down to 32
    bytes when the BMC answers 0xC8/0xCA (where pyghmi gives up)."""
    info = session.command(NETFN_STORAGE, 0x10, bytes([fru_id]))
    size = struct.unpack_from("<H", info)[0]
    unit = 2 if info[2] & 0x01 else 1  # word-addressed FRU devices
    chunk = _FRU_CHUNK
    image = bytearray()
    while len(image) < size:
        count = min(chunk, size - len(image)) // unit or 1
        offset = len(image) // unit
        try:
            answer = session.command(NETFN_STORAGE, 0x11, struct.pack("<BHB", fru_id, offset, count))
        except CompletionCodeError as error:
            if error.code in _READ_TOO_LONG and chunk > 8:
                chunk = _FRU_SMALL_CHUNK if chunk > _FRU_SMALL_CHUNK else chunk // 2
                log.debug("FRU %d: BMC refuses long reads, reading %d bytes at a time", fru_id, chunk)
                continue
            raise
        data = answer[1:1 + answer[0] * unit]
        if not data:
            break
        image += data
    return bytes(image)


def _fill_from_fru(session, psu):
    from pyghmi.ipmi.fru import FRU

    try:
        image = read_fru(session, psu.fru_id)
        info = FRU(rawdata=image).info or {}
    except CompletionCodeError as error:  # an absent PSU's FRU may be unreadable
        log.debug("FRU %d (%s): %s", psu.fru_id, psu.name, error)
        return
    except Exception as error:  # malformed FRU data: keep what the sensors said
        log.debug("FRU %d (%s) not decodable: %s", psu.fru_id, psu.name, error)
        return

    def field(*names):
        for name in names:
            value = info.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    psu.maker = field("Manufacturer", "Board manufacturer")
    psu.model = field("Product name", "Board product name")
    psu.part = field("Model", "Board model")  # the Part/Model Number field
    psu.serial = field("Serial Number", "Board serial number")
    psu.fru_read = True
    date = info.get("Board manufacture date")
    # pyghmi gives a datetime or, in 1.6, an ISO string ("2023-03-01T00:00").
    if hasattr(date, "strftime"):
        psu.mfr_date = date.strftime("%Y-%m-%d")
    elif isinstance(date, str) and len(date) >= 10 and date[4] == "-" and date[7] == "-":
        psu.mfr_date = date[:10]
    record = power_supply_information(image)
    if record:
        psu.rating_watts = record["capacity"] or None
        psu.input_voltage_range = record["voltage_range"]
        psu.input_frequency_range = record["frequency_range"]


def power_supply_capacity(image):
    """Overall capacity in W from the Power Supply Information multirecord
    (FRU spec §18.1; pyghmi does not parse multirecords), or None."""
    record = power_supply_information(image)
    return record["capacity"] if record else None


def power_supply_information(image):
    """The Power Supply Information multirecord (FRU spec §18.1) as
    {capacity: W, voltage_range: (low V, high V) or None,
    frequency_range: (low Hz, high Hz) or None}, or None."""
    if len(image) < 8 or not image[5]:
        return None
    offset = image[5] * 8
    while offset + 5 <= len(image):
        record_type, end_and_version, length = image[offset], image[offset + 1], image[offset + 2]
        if record_type == _MULTIRECORD_POWER_SUPPLY and length >= 2 and offset + 7 <= len(image):
            data = image[offset + 5:offset + 5 + length]
            info = {"capacity": struct.unpack_from("<H", data)[0] & 0x0FFF, "voltage_range": None,
                    "frequency_range": None}
            if len(data) >= 16:
                low, high = struct.unpack_from("<HH", data, 6)  # range 1, 10 mV units
                if high:
                    info["voltage_range"] = (round(low / 100, 2), round(high / 100, 2))
                if data[15]:
                    info["frequency_range"] = (data[14], data[15])
            return info
        if end_and_version & 0x80:
            return None
        offset += 5 + length
    return None
