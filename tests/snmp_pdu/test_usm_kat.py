"""Known answers for the USM's cryptography: RFC 3414 A.3 (password to
localized key, MD5 and SHA), RFC 7860's HMAC lengths, AES-CFB128 (RFC
3826) against NIST SP 800-38A, the RFC 3826 / RFC 3414 IV layouts, and the
clock read once per message.  (net-snmp's own localized SHA-2 and
AES-192/256 keys are compared in test_snmpd_v3.py.)"""

import hashlib
import itertools
import time

import pytest
from pyasn1.codec.ber import encoder
from snmp_forge import ENGINE_ID, OUTLET, client, pdu

from infrapower.snmp import usm as snmp_usm
from infrapower.snmp import ber
from infrapower.snmp.usm import AUTH_PROTOCOLS, cipher, hash_of, localized_key

RFC3414_ENGINE_ID = bytes.fromhex("000000000000000000000002")


@pytest.mark.parametrize("hash_factory, expected", [
    (hashlib.md5, "526f5eed9fcce26f8964c2930787d82b"),  # RFC 3414 A.3.1
    (hashlib.sha1, "6695febc9288e36282235fc7151f128497b38f3f"),  # RFC 3414 A.3.2
])
def test_rfc3414_a3_password_to_localized_key(hash_factory, expected):
    assert localized_key(hash_factory, "maplesyrup", RFC3414_ENGINE_ID).hex() == expected


def test_rfc7860_and_rfc3414_hmac_lengths():
    assert {name: (hash_of(hash_name)().name, length) for name, (hash_name, length) in AUTH_PROTOCOLS.items()} == {
        "MD5": ("md5", 12), "SHA": ("sha1", 12), "SHA-224": ("sha224", 16),
        "SHA-256": ("sha256", 24), "SHA-384": ("sha384", 32), "SHA-512": ("sha512", 48)}


def test_aes_cfb128_nist_sp800_38a_f3_13():
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    encryptor = cipher("AES", key, iv).encryptor()
    assert (encryptor.update(plain) + encryptor.finalize()).hex() == (
        "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b")


def test_blumenthal_extension_of_a_short_key():
    """draft-blumenthal-aes-usm-04 §3.1.2.1: Kul || H(Kul) || H(Kul || H(Kul)) ..."""
    kul = localized_key(hashlib.md5, "maplesyrup", RFC3414_ENGINE_ID)
    extended = snmp_usm.extend_key(hashlib.md5, kul, 32)
    assert extended == kul + hashlib.md5(kul).digest()
    assert snmp_usm.extend_key(hashlib.sha512, kul, 24) == (kul + hashlib.sha512(kul).digest())[:24]


@pytest.mark.parametrize("priv", ["AES", "AES-192", "AES-256", "DES"])
def test_privacy_iv_layout(priv):
    """RFC 3826 §3.1.2.1: IV = boots || time || salt; RFC 3414 §8.1.1.1:
    salt = boots || counter, IV = pre-IV xor salt."""
    usm = client(priv=priv)._usm
    plain = b"sixteen octets!!" * 2
    sealed, salt = usm.encrypt(plain, 0x01020304, 0x05060708)
    if priv == "DES":
        assert salt[:4] == bytes.fromhex("01020304")
        iv = bytes(a ^ b for a, b in zip(usm._priv_key[8:16], salt))
    else:
        iv = bytes.fromhex("0102030405060708") + salt
    decryptor = cipher(priv, usm._priv_key, iv).decryptor()
    assert (decryptor.update(sealed) + decryptor.finalize())[: len(plain)] == plain
    assert usm.decrypt(sealed, salt, 0x01020304, 0x05060708)[: len(plain)] == plain


def test_the_header_and_the_aes_iv_use_one_reading_of_the_clock(monkeypatch):
    """Regression: the engine time was read once for the header and again
    for the IV; a second ticking in between made the agent unable to
    decrypt.  Here every clock reading is a second later than the last."""
    session = client(priv="AES")
    # From the real clock on: the USM's time base was read from it, and a
    # clock that started before it would give the engine a negative time.
    ticks = itertools.count(time.monotonic() + 0.5, 1.0)
    monkeypatch.setattr(snmp_usm.time, "monotonic", lambda: next(ticks))
    wire = session._v3_message(5, encoder.encode(pdu("get", 4, [(OUTLET, None)])), session._usm)
    message = ber.decode_v3_message(wire)
    _, boots, engine_time, _, _, salt = ber.decode_usm_parameters(message.security)
    plain = session._usm.decrypt(message.encrypted, salt, boots, engine_time)
    assert ber.decode_scoped_pdu(plain, trailing=True)[0] == ENGINE_ID
    session.close()
