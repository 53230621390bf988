"""The protocols' well-known ports, defined once for the agents (ipport
defaults), their clients and the PowerChain."""

NUT_PORT = 3493  # upsd (IANA "nut")
SNMP_PORT = 161
IPMI_PORT = 623  # RMCP / RMCP+ (IANA "asf-rmcp")
