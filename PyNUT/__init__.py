"""PyNUT: NUT's Python client API (`PyNUTClient`, `PyNUTError`), served
by the pack's bounded NUT client: see infrapower/pynut.py and docs/nutconf.md."""

from infrapower.pynut import PyNUTClient, PyNUTError, PyNUTTimeout, PyNUTTransportError

__all__ = ["PyNUTClient", "PyNUTError", "PyNUTTimeout", "PyNUTTransportError"]
