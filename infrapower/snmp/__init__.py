"""SNMP for fencing: `session` is the manager (v1/v2c/v3, GET, walk, SET
over one UDP socket), `usm` SNMPv3's User-based Security Model, `pdu`
what fence_snmp_pdu fences through them, driven by the generated tables."""
