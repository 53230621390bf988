"""Known answers for the RMCP+ key exchange (IPMI 2.0 §13.31-13.32), for a
SHA-1 suite (3) and the SHA-256 suite (17).

The expected values were computed with `openssl dgst -mac HMAC` over
buffers laid out as ipmitool's lanplus_crypt.c lays them out: the user key
is its 20-byte zero-padded authcode buffer, K1/K2 are HMAC(SIK, 20 bytes
of 0x01/0x02) whatever the digest, RAKP 4's value is cut to 12 (SHA-1)
or 16 (SHA-256) bytes.  Nothing here comes from the code under test."""

import hashlib
import hmac
import struct

import pytest

from infrapower.ipmi import rmcp
from infrapower.ipmi.rmcp import CIPHER_SUITES

PASSWORD = b"adminpw"
USERNAME = b"admin"
ROLE = 0x14  # administrator, name-only lookup
CONSOLE_SID, BMC_SID = 0x11223344, 0x55667788
CONSOLE_RANDOM = bytes(range(16))
BMC_RANDOM = bytes(range(16, 32))
GUID = bytes(range(32, 48))
KG = bytes(range(1, 21))

KNOWN = {
    3: {
        "rakp2": "341fbcd87e864d18b81d103c67c0494fa987e54a",
        "rakp3": "d37992e2a932e2363524da21b9e4eae7ea062ecc",
        "sik": "a19b888658bff2824d36fb06d34e26e25e4fd994",
        "k1": "6e502964b3ecf7da369721289e2d24431cbc34ea",
        "k2": "6258430070c5218faf7a06039bc0d31c17143548",
        "rakp4": "b5d69f55c5b5191c0b172a62dbf60b16b0fade84"[:24],
        "sik_kg": "0d91535531735975a266907349ea6db0c682bd9e",
        "k1_kg": "013ea9e1d922d04547ca718dcd0f15b1cd599420",
    },
    17: {
        "rakp2": "be7d301f1273c663984cb78f24d34cc5bd62c5100729b26845cb11905b569902",
        "rakp3": "d7f74e32f0ddd4cbfe9b8c57a125591e738ec70f4156f4603b19b088f3d15b08",
        "sik": "2025ea5975edc981f9f464b62ee7d300e7801e8a5f3954b9e9291c03eaadb23b",
        "k1": "93b9d02c6d13810283c46fecb2c9ac280e4392976c8a770980e34bb696c97c00",
        "k2": "c3ccd497f6ca45b14c0083348cf614e7824766a7c477e8f12d22e5a0ba4d9066",
        "rakp4": "4d6bda7ea2235cfaffaa34d99e782c25400f5533f47b4d3c05bada2dc8222d1a"[:32],
        "sik_kg": "2cc1a33f5bdd363d57cde9d293982459ad5ed1556988d2cb144577a2a0114839",
        "k1_kg": "5185aabc10897dc1781b4adebc8c8520db465e5f5751c57814b454205a6998ee",
    },
}


@pytest.mark.parametrize("number", [3, 17])
def test_rakp_codes_and_session_keys_are_ipmitools(number):
    suite, known = CIPHER_SUITES[number], KNOWN[number]
    rakp2 = rmcp.rakp2_code(suite, PASSWORD, CONSOLE_SID, BMC_SID, CONSOLE_RANDOM, BMC_RANDOM, GUID, ROLE,
                                    USERNAME)
    assert rakp2.hex() == known["rakp2"]
    rakp3 = rmcp.rakp3_code(suite, PASSWORD, BMC_RANDOM, CONSOLE_SID, ROLE, USERNAME)
    assert rakp3.hex() == known["rakp3"]
    sik, k1, k2 = rmcp.session_keys(suite, PASSWORD, None, CONSOLE_RANDOM, BMC_RANDOM, ROLE, USERNAME)
    assert (sik.hex(), k1.hex(), k2.hex()) == (known["sik"], known["k1"], known["k2"])
    rakp4 = rmcp.rakp4_code(suite, sik, CONSOLE_RANDOM, BMC_SID, GUID)
    assert rakp4.hex() == known["rakp4"]
    assert len(rakp4) == (16 if number == 17 else 12)


@pytest.mark.parametrize("number", [3, 17])
def test_kg_keys_the_sik_and_an_all_zero_kg_is_no_kg(number):
    suite, known = CIPHER_SUITES[number], KNOWN[number]
    sik, k1, _ = rmcp.session_keys(suite, PASSWORD, KG, CONSOLE_RANDOM, BMC_RANDOM, ROLE, USERNAME)
    assert (sik.hex(), k1.hex()) == (known["sik_kg"], known["k1_kg"])
    for no_kg in (bytes(20), bytes(1), b""):
        sik, _, _ = rmcp.session_keys(suite, PASSWORD, no_kg, CONSOLE_RANDOM, BMC_RANDOM, ROLE, USERNAME)
        assert sik.hex() == known["sik"], no_kg
    assert rmcp.effective_kg(bytes(20)) is None


def test_the_defect_k1_k2_from_digest_long_constants_differ_for_sha256_only():
    """Before the fix the constants were as long as the digest: the same
    for SHA-1 (20 bytes), wrong for SHA-256 (32) — suite 17 could not talk
    to any real BMC."""
    for number, same in ((3, True), (17, False)):
        suite = CIPHER_SUITES[number]
        sik = bytes.fromhex(KNOWN[number]["sik"])
        long_constant = hmac.new(sik, b"\x01" * hashlib.new(suite.hash).digest_size, suite.hash).hexdigest()
        assert (long_constant == KNOWN[number]["k1"]) is same


@pytest.mark.parametrize("number, code_length", [(2, 12), (3, 12), (17, 16)])
def test_session_packet_authcode_is_cut_to_the_suites_length(number, code_length):
    suite = CIPHER_SUITES[number]
    _, k1, k2 = rmcp.session_keys(suite, PASSWORD, None, CONSOLE_RANDOM, BMC_RANDOM, ROLE, USERNAME)
    message = bytes([0x81, 0x1C, 0x63, 0x20, 0x04, 0x01, 0x00, 0x01, 0x00, 0x00, 0xDE])
    packet = rmcp.wrap_session_packet(suite, CONSOLE_SID, 7, message, k1, k2, iv=bytes(16))
    signed, code = packet[4:-code_length], packet[-code_length:]
    assert code == hmac.new(k1, signed, suite.hash).digest()[:code_length]
    assert signed[-1] == 0x07 and (len(signed)) % 4 == 0  # next header; AuthCode on a 4-byte boundary
    if suite.encrypted:  # AES-CBC-128 with the first 16 bytes of K2, ipmitool's pad 1, 2, ... then its length
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        length = struct.unpack_from("<H", packet, 14)[0]
        decryptor = Cipher(algorithms.AES(k2[:16]), modes.CBC(packet[16:32])).decryptor()
        plain = decryptor.update(packet[32:16 + length]) + decryptor.finalize()
        assert plain == message + bytes([1, 2, 3, 4]) + bytes([4])
    unwrapped = rmcp.unwrap_session_packet(suite, packet, k1, k2)
    assert (unwrapped.session_id, unwrapped.sequence, unwrapped.payload) == (CONSOLE_SID, 7, message)
