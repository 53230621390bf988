"""OIDs as the pack writes them: strings with a leading dot (".1.3.6..."),
whatever the agent, the tables or an admin wrote."""


SYS_OBJECT_ID = ".1.3.6.1.2.1.1.2.0"  # SNMPv2-MIB sysObjectID.0: what a device says it is


def normalise_oid(oid):
    return "." + str(oid).strip().lstrip(".")


def oid_tuple(oid):
    """An OID as numbers, for ordering (".1.10" comes after ".1.9")."""
    return tuple(int(part) for part in str(oid).strip(".").split("."))


def within(oid, prefix):
    """Is `oid` strictly inside the subtree `prefix`?"""
    return oid.startswith(prefix.rstrip(".") + ".")
