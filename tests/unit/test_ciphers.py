"""infrapower.ciphers against published test vectors, on both backends:
the system's libcrypto (ctypes) and the `cryptography` package (the
fallback), which must agree byte for byte."""

import pytest

from infrapower.ciphers import Cipher, _libcrypto

# NIST SP 800-38A: F.2.1 CBC-AES128, F.3.13 CFB128-AES128, F.3.17 CFB128-AES256 (first two blocks each).
PLAIN = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
KEY128 = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
KEY256 = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
VECTORS = [
    ("aes-cbc", KEY128, IV, PLAIN, "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"),
    ("aes-cfb", KEY128, IV, PLAIN, "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b"),
    ("aes-cfb", KEY256, IV, PLAIN, "dc7e84bfda79164b7ecd8486985d386039ffed143b28b1c832113c6331e5407b"),
    # The classic DES example (key 133457799BBCDFF1), one block, zero IV.
    ("des-cbc", bytes.fromhex("133457799bbcdff1"), bytes(8), bytes.fromhex("0123456789abcdef"), "85e813540f0ab405"),
    # CFB is a stream mode: any length (SNMPv3 AES privacy never pads).
    ("aes-cfb", KEY128, IV, PLAIN[:21], "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0"),
]


def backends():
    found = []
    if _libcrypto() is not None:
        found.append("libcrypto")
    try:
        import cryptography  # noqa: F401

        found.append("cryptography")
    except ImportError:
        pass
    return found or [pytest.param("none", marks=pytest.mark.skip(reason="neither libcrypto nor cryptography"))]


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("mode, key, iv, plain, expected", VECTORS)
def test_known_answers_both_ways(backend, mode, key, iv, plain, expected):
    cipher = Cipher(mode, key, iv, backend=backend)
    encryptor = cipher.encryptor()
    assert (encryptor.update(plain) + encryptor.finalize()).hex() == expected
    decryptor = Cipher(mode, key, iv, backend=backend).decryptor()
    assert decryptor.update(bytes.fromhex(expected)) + decryptor.finalize() == plain


@pytest.mark.skipif(_libcrypto() is None, reason="no libcrypto")
def test_a_cbc_message_that_is_not_whole_blocks_is_refused():
    encryptor = Cipher("aes-cbc", KEY128, IV, backend="libcrypto").encryptor()
    encryptor.update(PLAIN[:20])
    with pytest.raises(ValueError):
        encryptor.finalize()


def test_the_default_backend_is_libcrypto_when_it_loads():
    assert Cipher("aes-cbc", KEY128, IV).backend == ("libcrypto" if _libcrypto() is not None else "cryptography")
