"""SDR records read in parts (issue 18: no request the action does not
need): 32 bytes at a time where the BMC takes it, ipmitool's 16 for good
once it refuses; a BMC that refuses even 16 is an error, not a loop."""

import struct

import pytest

from infrapower.ipmi import psu
from infrapower.ipmi.session import NETFN_STORAGE, CompletionCodeError


class ReadTooLong(CompletionCodeError):
    """Completion code 0xCA, without the message pyghmi would word (make
    check runs without pyghmi)."""

    def __init__(self):
        self.netfn, self.command, self.code = NETFN_STORAGE, 0x23, 0xCA
        Exception.__init__(self, "Get SDR: cannot return the number of requested data bytes (0xca)")


class PartialSdrBmc:
    """Serves records of `length` bytes, refusing whole-record reads and
    reads longer than `limit` with completion code 0xCA."""

    def __init__(self, records, limit):
        self.records, self.limit, self.reads = records, limit, []
        self.target = "fake"

    def command(self, netfn, command, data=b""):
        assert netfn == NETFN_STORAGE
        if command == 0x22:  # Reserve SDR Repository
            return struct.pack("<H", 7)
        reservation, record_id, offset, size = struct.unpack("<HHBB", data)
        if size == 0xFF or size > self.limit:
            raise ReadTooLong()
        self.reads.append(size)
        ids = sorted(self.records)
        following = ids[ids.index(record_id) + 1] if ids.index(record_id) + 1 < len(ids) else 0xFFFF
        return struct.pack("<H", following) + self.records[record_id][offset:offset + size]


def record(number, length):
    body = bytes((number + i) % 256 for i in range(length - 5))
    return struct.pack("<HBBB", number, 0x51, 0x01, len(body)) + body


@pytest.mark.parametrize("limit, reads", [(32, [5, 32, 23, 5, 32, 3]), (16, [5, 16, 16, 16, 7, 5, 16, 16, 3])])
def test_sdr_parts_as_large_as_the_bmc_takes(limit, reads):
    records = {0: record(0, 60), 1: record(1, 40)}
    bmc = PartialSdrBmc(records, limit)
    assert psu.read_sdr_repository(bmc) == [records[0], records[1]]
    assert bmc.reads == reads


def test_a_bmc_refusing_every_part_is_an_error():
    with pytest.raises(CompletionCodeError):
        psu.read_sdr_repository(PartialSdrBmc({0: record(0, 30)}, limit=4))
