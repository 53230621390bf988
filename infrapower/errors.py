"""The pack's one error family.

Every failure the runtime, the PowerChain, the table generator or the lab
reports derives from InfrapowerError, and its message is one line saying
what to change: one guard (infrapower.fence.main_guard, the CLIs' own)
prints any of them as that line, and nothing else reaches a user.
"""


class InfrapowerError(Exception):
    """A failure the user can act on; the message is one line."""


class FenceError(InfrapowerError):
    """A fence action cannot be done or cannot be verified."""


class NutError(InfrapowerError):
    """A failure talking to upsd; `code` is upsd's ERR code, or None for
    transport failures (connect, timeout, closed connection, TLS)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class SnmpError(FenceError):
    """An SNMP agent did not answer, refused the request or the credentials."""


class ConfigError(InfrapowerError):
    """A configuration (file or option) that cannot work as written."""
