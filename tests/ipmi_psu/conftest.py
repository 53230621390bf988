"""Fixtures of the fence_ipmi_psu tests (helpers in ipmi_psu_helpers)."""

from ipmi_psu_helpers import bmcs, rmcp_bmc  # noqa: F401  (fixtures: registered by import)
