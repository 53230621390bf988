"""Block ciphers for SNMPv3 privacy (DES-CBC, AES-CFB128) and RMCP+
confidentiality (AES-CBC-128), from the system's OpenSSL through ctypes.

Why not `cryptography` alone: Debian 12's python3-cryptography 38, which
the Debian package's agents run with, loads its whole OpenSSL backend
(x509 included) on the first Cipher, ~30-60 ms measured: a third of a
whole fence_ipmi_psu status.  libcrypto is already in the process (Python's
hashlib links it), and ctypes reaches it in a few milliseconds.  Where no
libcrypto can be loaded, `cryptography` does the same job (the same
interface: Cipher(...).encryptor().update(...) + .finalize()).

Single DES is TripleDES EDE with one key three times (K1=K2=K3): OpenSSL 3
keeps plain DES in its legacy provider only.
"""

import functools

from infrapower.errors import InfrapowerError

MODES = ("aes-cbc", "aes-cfb", "des-cbc")
_LIBCRYPTO_NAMES = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so")


class CipherUnavailable(InfrapowerError):
    """Neither the system's libcrypto nor the `cryptography` package."""


@functools.lru_cache(maxsize=None)
def _libcrypto():
    """The system's libcrypto with the EVP prototypes we call, or None."""
    import ctypes

    for name in _LIBCRYPTO_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        pointer, integer, data = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        lib.EVP_CIPHER_CTX_new.restype = pointer
        lib.EVP_CIPHER_CTX_new.argtypes = []
        lib.EVP_CIPHER_CTX_free.argtypes = [pointer]
        lib.EVP_CIPHER_CTX_set_padding.argtypes = [pointer, integer]
        lib.EVP_CipherInit_ex.argtypes = [pointer, pointer, pointer, data, data, integer]
        lib.EVP_CipherUpdate.argtypes = [pointer, data, ctypes.POINTER(integer), data, integer]
        lib.EVP_CipherFinal_ex.argtypes = [pointer, data, ctypes.POINTER(integer)]
        return lib
    return None


def _evp_cipher(lib, mode, key):
    """The EVP_CIPHER of a mode and key length (AES-128/192/256)."""
    if mode == "des-cbc":
        function = lib.EVP_des_ede3_cbc
    else:
        suffix = "cbc" if mode == "aes-cbc" else "cfb128"
        function = getattr(lib, f"EVP_aes_{len(key) * 8}_{suffix}")
    function.restype = lib.EVP_CIPHER_CTX_new.restype
    function.argtypes = []
    return function()


class Cipher:
    """One key and IV of a mode (MODES); `backend` "libcrypto" or
    "cryptography" forces one (the tests compare them), None picks
    libcrypto when it loads."""

    def __init__(self, mode, key, iv, backend=None):
        if mode not in MODES:
            raise ValueError(f"unknown cipher mode {mode}")
        if mode == "des-cbc":
            key = bytes(key[:8]) * 3
        self.mode, self.key, self.iv = mode, bytes(key), bytes(iv)
        if backend is None:
            backend = "libcrypto" if _libcrypto() is not None else "cryptography"
        self.backend = backend

    def encryptor(self):
        return self._context(encrypt=True)

    def decryptor(self):
        return self._context(encrypt=False)

    def _context(self, encrypt):
        if self.backend == "libcrypto":
            lib = _libcrypto()
            if lib is None:
                raise CipherUnavailable("no libcrypto could be loaded")
            return _EvpContext(lib, _evp_cipher(lib, self.mode, self.key), self.key, self.iv, encrypt)
        cipher = _cryptography_cipher(self.mode, self.key, self.iv)
        return cipher.encryptor() if encrypt else cipher.decryptor()


class _EvpContext:
    """update()/finalize() over one EVP_CIPHER_CTX, without padding (the
    protocols pad themselves)."""

    def __init__(self, lib, evp_cipher, key, iv, encrypt):
        self._lib = lib
        self._ctx = lib.EVP_CIPHER_CTX_new()
        if not self._ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        if lib.EVP_CipherInit_ex(self._ctx, evp_cipher, None, key, iv, int(encrypt)) != 1:
            self._free()
            raise ValueError("libcrypto refused the cipher's key or IV")
        lib.EVP_CIPHER_CTX_set_padding(self._ctx, 0)

    def update(self, data):
        import ctypes

        data = bytes(data)
        out = ctypes.create_string_buffer(len(data) + 32)
        written = ctypes.c_int(0)
        if self._lib.EVP_CipherUpdate(self._ctx, out, ctypes.byref(written), data, len(data)) != 1:
            raise ValueError("libcrypto could not process the data")
        return out.raw[:written.value]

    def finalize(self):
        import ctypes

        out = ctypes.create_string_buffer(64)
        written = ctypes.c_int(0)
        try:
            if self._lib.EVP_CipherFinal_ex(self._ctx, out, ctypes.byref(written)) != 1:
                raise ValueError("the data is not a multiple of the cipher's block length")
            return out.raw[:written.value]
        finally:
            self._free()

    def _free(self):
        if self._ctx:
            self._lib.EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = None

    def __del__(self):
        self._free()


def _cryptography_cipher(mode, key, iv):
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher as CryptographyCipher
        from cryptography.hazmat.primitives.ciphers import algorithms, modes

        try:  # cryptography >= 43 keeps these among the "decrepit" ciphers
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
            from cryptography.hazmat.decrepit.ciphers.modes import CFB
        except ImportError:
            TripleDES, CFB = algorithms.TripleDES, modes.CFB
    except ImportError:
        raise CipherUnavailable("no libcrypto could be loaded, and the Python package cryptography is missing") from None
    if mode == "des-cbc":
        return CryptographyCipher(TripleDES(key), modes.CBC(iv))
    return CryptographyCipher(algorithms.AES(key), modes.CBC(iv) if mode == "aes-cbc" else CFB(iv))
