"""NUT's network protocol (upsd, TCP 3493): `client` speaks it, `outlets`
is what fence_nut fences through it."""
