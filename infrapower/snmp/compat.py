"""The one place where pysnmp's versions differ for this package.

The agents run on whichever pysnmp the system has: Debian 12's
python3-pysnmp4 (4.4.12, with python3-pyasn1 0.4.8) when installed from the
Debian package, PyPI's 7.x in a virtualenv.  The SNMP client uses only
pysnmp's protocol layer (`pysnmp.proto.api`: message and PDU classes, BER
through pyasn1), which is the same protocol code in both; what changed in
5.x is names:

- the protocol modules by version: `api.PROTOCOL_MODULES[api.SNMP_VERSION_1]`
  (7.x) was `api.protoModules[api.protoVersion1]` (4.4);
- the accessors of PDUs and messages: `apiPDU.set_request_id` (7.x) was
  `apiPDU.setRequestID`, `apiMessage.get_pdu` was `getPDU`, and so on.

`protocol(version)` answers with 7.x's names on both, so the rest of the
code is written against 7.x only.  Nothing else differs for us: the PDU,
message and value classes (`GetRequestPDU`, `Message`, `Null`, `v2c.
NoSuchObject`, `rfc1905.PDUs`, ...) keep their names, and both import in
~25-35 ms.
"""

from types import MappingProxyType

# Words that 4.4's camelCase writes otherwise than capitalised.
_CAMEL_WORDS = MappingProxyType({"id": "ID", "pdu": "PDU", "varbinds": "VarBinds", "varbind": "VarBind"})


def protocol(version):
    """pysnmp's protocol module for SNMP `version` ("1"; "2c" and "3"
    share SNMPv2c's PDUs), with 7.x's names whatever pysnmp this is."""
    from pysnmp.proto import api

    if hasattr(api, "PROTOCOL_MODULES"):  # pysnmp >= 5
        return api.PROTOCOL_MODULES[api.SNMP_VERSION_1 if version == "1" else api.SNMP_VERSION_2C]
    return _Pysnmp4Protocol(api.protoModules[api.protoVersion1 if version == "1" else api.protoVersion2c])


def message_version(data):
    """msgVersion of an encoded SNMP message (0: v1, 1: v2c, 3: v3)."""
    from pysnmp.proto import api

    return int(api.decodeMessageVersion(data))


def camel_case(name):
    """pysnmp 4.4's name for a 7.x accessor: set_request_id -> setRequestID."""
    first, *rest = name.split("_")
    return first + "".join(_CAMEL_WORDS.get(word, word.capitalize()) for word in rest)


class _Pysnmp4Protocol:
    """A pysnmp 4.4 protocol module seen with 7.x's names: its classes as
    they are, its accessor objects (apiPDU, apiBulkPDU, apiMessage)
    answering snake_case."""

    __slots__ = ("_module", "apiPDU", "apiBulkPDU", "apiMessage")

    def __init__(self, module):
        self._module = module
        self.apiPDU = _SnakeCaseAccessors(module.apiPDU)
        self.apiBulkPDU = _SnakeCaseAccessors(getattr(module, "apiBulkPDU", module.apiPDU))
        self.apiMessage = _SnakeCaseAccessors(module.apiMessage)

    def __getattr__(self, name):
        return getattr(self._module, name)


class _SnakeCaseAccessors:
    """`get_varbinds` -> 4.4's `getVarBinds` on the wrapped accessor."""

    __slots__ = ("_accessors",)

    def __init__(self, accessors):
        self._accessors = accessors

    def __getattr__(self, name):
        return getattr(self._accessors, camel_case(name))
