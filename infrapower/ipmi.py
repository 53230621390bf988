"""What the pack asks of a BMC's chassis: a session opened from the
agent's options, power read, switched and verified by polling.

The RMCP+ session is infrapower.ipmi_session (lean, bounded deadlines);
the power supplies are infrapower.ipmi_psu, imported only by the actions
that read them, never by status.
"""

from infrapower.fence import FenceError, Outlets
from infrapower.ipmi_session import (
    NETFN_CHASSIS,
    CompletionCodeError,
    IpmiError,
    Session,
    check_password,
    effective_kg,
)


# Chassis Control (§28.3) request values.
CHASSIS_CONTROL = {"off": 0x00, "on": 0x01, "cycle": 0x02, "reset": 0x03, "diag": 0x04, "soft": 0x05}
# Completion codes meaning "this BMC cannot do that", not "try again".
_NOT_SUPPORTED = (0xC1, 0xCC, 0xD5, 0xD6)


def open_session(host, port, username, password, *, privilege="administrator", cipher_suite=None, kg=None,
                 login_timeout=5.0, command_timeout=5.0):
    """A logged-in Session; failures become FenceError (one line)."""
    try:
        session = Session(host, port, username, password, privilege=privilege, cipher_suite=cipher_suite, kg=kg,
                          login_timeout=login_timeout, command_timeout=command_timeout)
        session.open()
    except IpmiError as error:
        raise FenceError(str(error)) from None
    return session


def parse_kg(text):
    """hexadecimal_kg as bytes (None when unset); at most 20 bytes."""
    if not text:
        return None
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise FenceError("hexadecimal_kg must be hexadecimal digits (up to 40)") from None
    if len(key) > 20:
        raise FenceError("hexadecimal_kg is longer than 20 bytes (40 hex digits)")
    # All zeros is how BMCs show "no Kg" (§13.31): the user key is used.
    return effective_kg(key)


def parse_password(text):
    """The password, refused in one line when over IPMI 2.0's 20 bytes
    (checked before any delay or network I/O)."""
    try:
        check_password(text)
    except IpmiError as error:
        raise FenceError(str(error)) from None
    return text


# -- chassis power ------------------------------------------------------------


def chassis_power(session):
    """'on' or 'off' from Get Chassis Status (§28.2, byte 1 bit 0)."""
    try:
        status = session.command(NETFN_CHASSIS, 0x01)
    except IpmiError as error:
        raise FenceError(str(error)) from None
    return "on" if status[0] & 0x01 else "off"


def chassis_control(session, action):
    try:
        session.command(NETFN_CHASSIS, 0x02, bytes([CHASSIS_CONTROL[action]]))
    except CompletionCodeError as error:
        if error.code in _NOT_SUPPORTED:
            raise FenceError(f"BMC {session.target} does not support chassis {action}: {error}") from None
        if error.code == 0xD4:
            raise FenceError(f"BMC {session.target} refused chassis {action}: insufficient privilege "
                             f"({session.privilege}); the user needs operator or administrator") from None
        raise FenceError(str(error)) from None
    except IpmiError as error:
        raise FenceError(str(error)) from None


class ChassisPower(Outlets):
    """The chassis as run_action's single "plug": the IPMI power of a
    server is one switch, whatever feeds it."""

    PLUG = "chassis"

    def __init__(self, session, min_psus=0):
        self.session = session
        self.min_psus = min_psus

    def status(self, plugs):
        return {plug: chassis_power(self.session) for plug in plugs}

    def switch(self, plug, on):
        chassis_control(self.session, "on" if on else "off")

    def can_cycle(self):
        return True

    def cycle(self, plug):
        chassis_control(self.session, "cycle")

    def listing(self):
        raise NotImplementedError("the agent lists power supplies, not plugs")

    def monitor(self):
        """The BMC answers with these credentials and privilege; with
        min_psus, enough power supplies are healthy."""
        chassis_power(self.session)
        if self.min_psus:
            from infrapower.ipmi_psu import check_min_psus, read_power_supplies

            check_min_psus(read_power_supplies(self.session), self.min_psus)


def parse_cipher(text):
    """The cipher option: None (unset: try 3, then 17) or a supported
    suite number; 0 is refused (no authentication at all)."""
    from infrapower.ipmi_session import check_cipher_suite

    if text in (None, ""):
        return None
    try:
        return check_cipher_suite(int(text))
    except ValueError:
        raise FenceError(f"cipher must be a cipher suite number, not {text!r}") from None
    except IpmiError as error:
        raise FenceError(str(error)) from None
