"""fence-agents-infrapower: the shared library of the pack's fence agents."""
