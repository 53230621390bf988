"""Fixtures of the fence_ipmi_psu tests (helpers in ipmi_psu_helpers)."""

from ipmi_psu_helpers import bmcs  # noqa: F401  (a fixture: registered by import)
