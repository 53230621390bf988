"""`infrapower scan`: discover SNMP PDUs and UPSes, upsd servers and BMCs
on a range of addresses, and upsd servers published with mDNS, read-only,
and write what was found as a table, ups.conf sections, a servers file
skeleton, pcs commands or JSON.

    targets.py   ranges, CIDR masks and port lists (pure)
    sweep.py     the presence round: SNMP GETs, ASF pings, upsd connects at once
    snmp.py      SNMP details: sysObjectID -> NUT mapping -> outlets
    nut.py       upsd probes: LIST UPS, device types, outlets, STARTTLS
    ipmi.py      ASF ping and pong, and an RMCP+ login with credentials
    mdns.py      _nut._tcp / _upsd._tcp browsing (python-zeroconf)
    run.py       the round, then details on a bounded thread pool as hosts answer
    output.py    the writers
    cli.py       the command line
"""

from infrapower.errors import ConfigError


class ScanError(ConfigError):
    """A bad range, port or option: one line, exit 2."""
