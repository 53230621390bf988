"""A seeded fuzzer over the RMCP+ client's inbound parsing: valid packets
mutated (bit flips, overwritten, inserted and cut bytes, forged length
fields, splices) and fed to the parsers directly, then over the wire to a
live session through the test BMC.  Zero exceptions other than the
one-line IpmiError; every mutated packet of an integrity suite is
dropped unless what it carries is exactly what the BMC sent."""

import random
import struct

import pytest

from infrapower.ipmi import rmcp
from infrapower.ipmi.chassis import chassis_power
from infrapower.fence import FenceError
from infrapower.ipmi.rmcp import CIPHER_SUITES
from infrapower.ipmi.session import NETFN_APP, IpmiSettings, Session
from infrapower.lab import bmc as lab_bmc
from infrapower.lab.rmcp_bmc import RmcpBmc

SEED = 20240611
CONSOLE_SID = 0x0BADCAFE
RANDOMS = bytes(range(16)), bytes(range(16, 32))
ROLE, USERNAME, PASSWORD = 0x14, b"admin", b"adminpw"
# A Get Chassis Status answer to rq_seq 5: power on.
ANSWER = bytes([0x81, 0x04, 0x7B, 0x20, 0x14, 0x01, 0x00, 0x01, 0x00, 0x00, 0xCA])


def mutate(rng, packet):
    """One random corruption of `packet` (never returns it unchanged)."""
    data = bytearray(packet)
    kind = rng.randrange(7)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:
        del data[rng.randrange(len(data)):]
    elif kind == 3:
        data += rng.randbytes(rng.randint(1, 40))
    elif kind == 4:
        position = rng.randrange(len(data))
        data[position:position] = rng.randbytes(rng.randint(1, 8))
    elif kind == 5 and len(data) >= 16:
        data[14:16] = struct.pack("<H", rng.choice([0, 1, 7, 8, 15, 16, 17, 255, 0xFFFF, rng.randrange(0x10000)]))
    else:
        start = rng.randrange(len(data))
        data[start:start + rng.randint(1, 16)] = rng.randbytes(rng.randint(0, 16))
    return bytes(data) if bytes(data) != packet else bytes(data) + b"\x00"


def keys(suite):
    return rmcp.session_keys(suite, PASSWORD, None, *RANDOMS, ROLE, USERNAME)


@pytest.mark.parametrize("number", [1, 2, 3, 17])
def test_session_packet_parser_drops_every_mutation(number):
    rng = random.Random(SEED + number)
    suite = CIPHER_SUITES[number]
    _, k1, k2 = keys(suite)
    packet = rmcp.wrap_session_packet(suite, CONSOLE_SID, 42, ANSWER, k1, k2)
    original = rmcp.unwrap_session_packet(suite, packet, k1, k2)
    assert original.payload == ANSWER
    accepted = 0
    for _ in range(3000):
        mutated = mutate(rng, packet)
        result = rmcp.unwrap_session_packet(suite, mutated, k1, k2)
        if result is None:
            continue
        rmcp.parse_response(result.payload, 5, 0x00, 0x01)
        if suite.integrity:
            # Only the RMCP header's unsigned bytes (reserved, sequence,
            # the ACK bit) may change and leave the packet acceptable.
            assert result == original and mutated[4:] == packet[4:], mutated.hex()
        accepted += 1
    assert accepted < (3000 if not suite.integrity else 300)


def test_pre_session_parser_never_raises():
    rng = random.Random(SEED)
    head = struct.pack("<I", CONSOLE_SID)
    payloads = {
        0x11: bytes([1, 0, 4, 0]) + head + struct.pack("<I", 7) + bytes([0, 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 8, 4, 0, 0, 0,
                                                                         2, 0, 0, 8, 1, 0, 0, 0]),
        0x13: bytes([2, 0, 0, 0]) + head + bytes(32) + bytes(32),
        0x15: bytes([3, 0, 0, 0]) + head + bytes(16),
    }
    for payload_type, payload in payloads.items():
        packet = bytes([6, 0, 0xFF, 7, 6, payload_type]) + bytes(8) + struct.pack("<H", len(payload)) + payload
        assert rmcp.parse_pre_session_packet(packet, payload_type) == payload
        for _ in range(2000):
            result = rmcp.parse_pre_session_packet(mutate(rng, packet), payload_type)
            assert result is None or len(result) >= 8


class Mangler:
    """The test BMC's outbound hook: `copies` mutated versions of each
    answer go out before it (pre-session answers too, when asked)."""

    def __init__(self, seed, copies, pre_session):
        self.rng = random.Random(seed)
        self.copies, self.pre_session = copies, pre_session
        self.sent = 0

    def __call__(self, answers):
        out = []
        for answer in answers:
            in_session = len(answer) > 5 and answer[5] & 0x3F == 0
            if in_session or self.pre_session:
                out += [mutate(self.rng, answer) for _ in range(self.copies)]
                self.sent += self.copies
            out.append(answer)
        return out


@pytest.mark.parametrize("number", [3, 17])
def test_a_live_session_takes_only_the_real_answers(number):
    """Four mutated copies ahead of every real answer: each command still
    gets the BMC's real answer, never a mutated one, never an exception."""
    with RmcpBmc({lab_bmc.ADMIN_USER: (lab_bmc.ADMIN_PASSWORD, 4)}) as peer:
        mangler = Mangler(SEED + number, copies=4, pre_session=False)
        peer.mangle = mangler
        with Session(IpmiSettings("127.0.0.1", peer.port, lab_bmc.ADMIN_USER, lab_bmc.ADMIN_PASSWORD, cipher_suite=number,
                     login_timeout=2, command_timeout=2)) as session:
            for index in range(300):
                peer.powered = index % 2 == 0
                assert chassis_power(session) == ("on" if peer.powered else "off")
                assert session.command(NETFN_APP, 0x01)[0] == 0x20  # Get Device ID: device id
        assert mangler.sent >= 2400


@pytest.mark.parametrize("number", [1, 3, 17])
def test_logins_through_mutated_pre_session_answers_fail_in_one_line_or_work(number):
    """Open Session, RAKP 2 and RAKP 4 answers are unauthenticated or
    self-checking: a mutated one ahead of the real one may end a login
    (one line), or be dropped; a login that succeeds answers correctly."""
    outcomes = {"worked": 0, "refused": 0}
    with RmcpBmc({lab_bmc.ADMIN_USER: (lab_bmc.ADMIN_PASSWORD, 4)}) as peer:
        peer.mangle = Mangler(SEED - number, copies=1, pre_session=True)
        for _ in range(60):
            session = Session(IpmiSettings("127.0.0.1", peer.port, lab_bmc.ADMIN_USER, lab_bmc.ADMIN_PASSWORD,
                              cipher_suite=number, login_timeout=1, command_timeout=1))
            try:
                with session:
                    state = chassis_power(session)
            except FenceError as error:  # IpmiError, or the chassis read's FenceError
                assert "\n" not in str(error)
                outcomes["refused"] += 1
                continue
            if number != 1:  # suite 1 authenticates nothing after the login
                assert state == "on"
            outcomes["worked"] += 1
    assert outcomes["worked"] + outcomes["refused"] == 60
