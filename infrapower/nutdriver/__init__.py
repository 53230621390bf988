"""NUT drivers written in Python: the driver-socket protocol upsd speaks to
every driver (dstate), a NUT driver program's plumbing (program), and the
ipmi-psu driver (a server's power supply through its BMC)."""
