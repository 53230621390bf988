"""`infrapower scan`: discover SNMP PDUs and UPSes, upsd servers and BMCs
on a range of addresses, read-only, and write what was found as a table,
ups.conf sections, a servers file skeleton, pcs commands or JSON.

    targets.py   ranges, CIDR masks and port lists (pure)
    snmp.py      SNMP probes: sysObjectID -> NUT mapping -> outlets
    nut.py       upsd probes: LIST UPS, device types, outlets, STARTTLS
    ipmi.py      ASF presence ping, and an RMCP+ login with credentials
    run.py       the probes over a bounded thread pool
    output.py    the writers
    cli.py       the command line
"""

from infrapower.errors import ConfigError


class ScanError(ConfigError):
    """A bad range, port or option: one line, exit 2."""
