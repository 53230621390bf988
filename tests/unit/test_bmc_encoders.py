"""The lab BMCs' FRU and SDR encoders (infrapower.lab.bmc_data), on their
own: no ipmi_sim, no lab.  What fence_ipmi_psu reads from the lab's BMCs
is only as right as these bytes, so they are checked against the FRU
specification's rules and read back with the agent's own parsers
(infrapower.ipmi.psu; pyghmi's FRU decoder where it is installed)."""

import datetime
import re
import struct

import pytest

from infrapower.ipmi import psu as ipmi_psu
from infrapower.lab import bmc_data
from infrapower.lab.rack import default_topology

SERVERS = sorted(default_topology()["servers"])
# FRU spec §13: type/length byte, bits 7-6 = 11b (8-bit ASCII + Latin 1), bits 5-0 = length.
TYPE_ASCII = 0b11
END_OF_FIELDS = 0xC1
MULTIRECORD_END_OF_LIST = 0x80
MULTIRECORD_FORMAT = 0x02


def _sums_to_zero(data):
    return sum(data) & 0xFF == 0


def _area(image, header_slot):
    """The info area the common header points at (offset in 8-byte units)."""
    offset = image[header_slot] * 8
    return image[offset:offset + image[offset + 1] * 8]


def _fields(area, first_field):
    """The strings of an info area, up to the end-of-fields marker; each
    field must be 8-bit ASCII typed."""
    fields, position = [], first_field
    while area[position] != END_OF_FIELDS:
        kind, length = area[position] >> 6, area[position] & 0x3F
        assert kind == TYPE_ASCII, f"field at {position} is not typed 8-bit ASCII: {area[position]:#04x}"
        fields.append(area[position + 1:position + 1 + length].decode("ascii"))
        position += 1 + length
    return fields


# -- fields ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Delta Electronics", "DPS", "SERIAL123", "", "x" * 63])
def test_a_field_is_always_8bit_ascii_even_all_caps(text):
    """All-caps strings could be 6-bit packed; ours never are, so what a
    client decodes is byte for byte what was written."""
    field = bmc_data.fru_field(text)
    assert field[0] == (TYPE_ASCII << 6) | len(text)
    assert field[1:] == text.encode("ascii")


def test_a_field_over_63_bytes_is_refused():
    with pytest.raises(ValueError, match="too long"):
        bmc_data.fru_field("x" * 64)


def test_a_non_ascii_field_is_refused():
    with pytest.raises(UnicodeEncodeError):
        bmc_data.fru_field("Électronique")


def test_an_info_area_is_padded_to_8_bytes_and_sums_to_zero():
    # Not one-character fields: C1h (ASCII, length 1) is the end-of-fields
    # marker, which the FRU spec reserves; the lab writes none.
    area = bmc_data.fru_area(bytes([1, 0, 0]), ["ab", "cde", ""])
    assert len(area) % 8 == 0 and area[1] * 8 == len(area)
    assert _sums_to_zero(area)
    assert _fields(area, 3) == ["ab", "cde", ""]


# -- whole images ---------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_common_header_checksum_and_area_offsets(server):
    for image in (bmc_data.psu_fru(server, "psu1"), bmc_data.board_fru(server, "node controller")):
        header = image[:8]
        assert header[0] == 1, "common header format version"
        assert _sums_to_zero(header)
        for slot in (3, 4):  # board, product (slot 1 internal use, 2 chassis, 5 multirecord)
            if header[slot]:
                area = _area(image, slot)
                assert area[0] == 1 and _sums_to_zero(area), f"area at header slot {slot}"
        assert len(image) % 8 == 0


def test_psu_product_area_fields():
    image = bmc_data.psu_fru("nc1", "psu2")
    product = _fields(_area(image, 4), 3)  # product area (header slot 4): version, length, language, fields
    assert product[:4] == ["Delta Electronics", "DPS-800AB Power Supply", "Pn 341-0800-02", "Rev A02"]
    assert re.fullmatch(r"DSN\d{8}", product[4])
    assert product[5] == "nc1 psu2"
    assert product[7] == f"Rating {bmc_data.PSU_RATING_WATTS}W"


def test_serials_are_stable_and_differ_between_psus():
    assert bmc_data.psu_fru("clc", "psu1") == bmc_data.psu_fru("clc", "psu1")
    assert bmc_data.psu_fru("clc", "psu1") != bmc_data.psu_fru("clc", "psu2")


def test_board_area_carries_its_manufacture_date():
    image = bmc_data.board_fru("clc", "cloud controller")
    board = _area(image, 3)  # header slot 3: the board area
    minutes = int.from_bytes(board[3:6], "little")  # minutes since 1996-01-01 00:00
    assert datetime.datetime(1996, 1, 1) + datetime.timedelta(minutes=minutes) == datetime.datetime(2023, 3, 1)
    assert _fields(board, 6)[:2] == ["Infrapower Lab", "Lab Board (cloud controller)"]


# -- the power supply multirecord -----------------------------------------------


@pytest.mark.parametrize("watts", [800, 1, 4095])
def test_power_supply_record_layout_and_checksums(watts):
    record = bmc_data.power_supply_record(watts)
    header, data = record[:5], record[5:]
    assert header[0] == 0x00, "record type: Power Supply Information"
    assert header[1] == MULTIRECORD_END_OF_LIST | MULTIRECORD_FORMAT
    assert header[2] == len(data) == 24
    assert (sum(data) + header[3]) & 0xFF == 0, "record checksum"
    assert _sums_to_zero(header), "header checksum"
    assert struct.unpack_from("<H", data)[0] == watts
    peak = struct.unpack_from("<H", data, 18)[0]  # peak capacity word: holdup seconds, then watts
    assert peak >> 12 == 1 and peak & 0x0FFF == int(watts * 1.1) & 0x0FFF  # 1 s holdup at 110 %


def test_psu_image_points_at_its_multirecord():
    image = bmc_data.psu_fru("clc", "psu1")
    offset = image[5] * 8
    assert image[offset:offset + len(bmc_data.power_supply_record(bmc_data.PSU_RATING_WATTS))] == (
        bmc_data.power_supply_record(bmc_data.PSU_RATING_WATTS)
    )


@pytest.mark.parametrize("server", SERVERS)
def test_the_agent_reads_the_rating_back(server):
    """fence_ipmi_psu's own multirecord parser finds the capacity; a FRU
    without a multirecord (the board) has none."""
    assert ipmi_psu.power_supply_capacity(bmc_data.psu_fru(server, "psu1")) == bmc_data.PSU_RATING_WATTS
    assert ipmi_psu.power_supply_capacity(bmc_data.board_fru(server, "server")) is None


def test_build_fru_with_a_multirecord_only():
    record = bmc_data.power_supply_record(500)
    image = bmc_data.build_fru(multirecord=record)
    assert image[2:5] == bytes(3) and image[5] == 1  # no board, no product; multirecord right after the header
    assert ipmi_psu.power_supply_capacity(image) == 500


def test_pyghmi_decodes_the_psu_fru_as_the_agent_reads_it():
    """The agent decodes FRU areas with pyghmi (ipmi.psu._fill_from_fru)."""
    fru = pytest.importorskip("pyghmi.ipmi.fru")
    info = fru.FRU(rawdata=bmc_data.psu_fru("nc2", "psu1")).info
    assert info["Manufacturer"] == "Delta Electronics"
    assert info["Product name"] == "DPS-800AB Power Supply"
    assert info["Model"] == "Pn 341-0800-02"
    assert info["Serial Number"].startswith("DSN")
    assert info["product_extra"] == [f"Rating {bmc_data.PSU_RATING_WATTS}W"]
    board = fru.FRU(rawdata=bmc_data.board_fru("nc2", "node controller")).info
    assert board["Board manufacturer"] == "Infrapower Lab"
    assert board["Board manufacture date"].startswith("2023-03-01")


# -- SDR source and readings ------------------------------------------------------


def _records(source):
    """sdrcomp source as a list of {key: value} per record, with its type."""
    records = []
    for block in re.findall(r"sdr type (\d+)\n(.*?)endsdr", source, re.S):
        kind, body = block
        fields = dict(line.strip().split(" ", 1) for line in body.strip().splitlines())
        records.append({"type": int(kind), **fields})
    return records


def _psus(server="clc"):
    return bmc_data.numbered_psus(default_topology(), server)


def test_sdr_source_has_the_mc_locator_and_four_records_per_psu():
    records = _records(bmc_data.sdr_source("clc", _psus()))
    assert [r["type"] for r in records] == [18] + [2, 17, 1, 1] * len(_psus())


def test_sdr_id_strings_are_mixed_case_and_fit():
    """sdrcomp 6-bit packs an all-caps ID string (a client may then decode
    it differently); 16 bytes is the ID string's room in an SDR."""
    for server in SERVERS:
        for record in _records(bmc_data.sdr_source(server, _psus(server))):
            text = record["id_string"].strip('"')
            assert len(text) <= 16, text
            assert text != text.upper(), f"{text!r} would be 6-bit packed"


def test_sdr_sensor_numbers_are_distinct_per_psu():
    records = _records(bmc_data.sdr_source("clc", _psus()))
    numbers = [int(r["sensor_number"], 16) for r in records if "sensor_number" in r]
    assert len(numbers) == len(set(numbers)) == 3 * len(_psus())
    for number, _psu in _psus():
        assert bmc_data.PSU_SENSOR_BASE + number - 1 in numbers
        assert all(bmc_data.input_sensor_number(name, number) in numbers for name in bmc_data.PSU_INPUT_SENSORS)


def test_input_sensors_are_what_the_agent_takes_for_psu_inputs():
    """ipmi.psu takes a full sensor of entity power supply, unit volts or
    amps, not an output, as a PSU's input reading."""
    full = [r for r in _records(bmc_data.sdr_source("clc", _psus())) if r["type"] == 1]
    assert {int(r["base_unit"]) for r in full} == {ipmi_psu._UNIT_VOLTS, ipmi_psu._UNIT_AMPS}
    assert all(r["entity_id"] == "power_supply" and r["sensor_direction"] == "input" for r in full)


@pytest.mark.parametrize(
    "name, value, raw",
    [
        ("input_voltage", 230.0, 115),  # 2 V steps
        ("input_voltage", 0.0, 0),
        ("input_voltage", 9999.0, 255),  # clamped to one byte
        ("input_current", 1.2, 12),  # 0.1 A steps
        ("input_current", -1.0, 0),
    ],
)
def test_raw_readings(name, value, raw):
    assert bmc_data.raw_reading(name, value) == raw


def test_raw_reading_round_trips_through_the_linear_conversion():
    """value = M * raw * 10^R, as the SDR says and a client computes."""
    for name, value in (("input_voltage", bmc_data.PSU_INPUT_VOLTS), ("input_current", bmc_data.PSU_INPUT_AMPS)):
        _base, _type, _unit, m, r_exp, _label = bmc_data.PSU_INPUT_SENSORS[name]
        assert m * bmc_data.raw_reading(name, value) * 10**r_exp == pytest.approx(value)
