"""`infrapower publish`: announce upsd on the local network with mDNS/DNS-SD
(`_nut._tcp`, which Home Assistant browses, and `_upsd._tcp`, which NUT's
nut-scanner -A browses), its devices in the TXT record, kept current while
upsd runs.  A tool: the agents' runtime never imports it.

  listen     where upsd listens (upsd.conf LISTEN, or --upsd HOST:PORT)
  upsd       what upsd says of itself (LIST UPS, device types, versions, STARTTLS)
  txt        the TXT record, within DNS-SD's size limits
  avahi      the publisher through the host's avahi-daemon (its D-Bus API)
  avahi_client  avahi's client library (libavahi-client3) through ctypes
  responder  the built-in publisher (python-zeroconf)
  service    the long-running loop: poll, update, withdraw on SIGTERM
"""
