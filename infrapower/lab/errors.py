"""The lab's errors, apart from the process control in core.py so that
the rack's state (rack.py), which core.py builds on, can raise them
without an import cycle."""

from infrapower.errors import InfrapowerError


class LabError(InfrapowerError):
    """A lab component failed to start or answer; the message says which."""


class PeerGone(LabError):
    """A simulator exited while we waited for it: no point waiting on."""
