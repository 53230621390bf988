"""IPMI 2.0 over LAN: `session` is the RMCP+ protocol (no commands),
`chassis` the power commands fencing needs, `psu` the power supplies
(FRU, SDR, sensors)."""
