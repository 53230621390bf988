"""What the pack asks of a BMC's chassis: power read, switched and
verified by polling (infrapower.fence.run_action), the power supplies
listed, a diagnostic interrupt.

The RMCP+ session is infrapower.ipmi.session (lean, bounded deadlines);
the power supplies are infrapower.ipmi.psu, imported only by the actions
that read them, never by status.
"""

import logging
from contextlib import contextmanager

from infrapower.errors import FenceError
from infrapower.fence import EXIT_OK, Outlets
from infrapower.ipmi.session import NETFN_CHASSIS, CompletionCodeError, IpmiError, Session

log = logging.getLogger(__name__)

# Chassis Control (§28.3) request values.
CHASSIS_CONTROL = {"off": 0x00, "on": 0x01, "cycle": 0x02, "reset": 0x03, "diag": 0x04, "soft": 0x05}
# Completion codes meaning "this BMC cannot do that", not "try again".
_NOT_SUPPORTED = (0xC1, 0xCC, 0xD5, 0xD6)


def open_session(settings):
    """A logged-in Session (IpmiSettings); its IpmiError is a FenceError."""
    session = Session(settings)
    session.open()
    return session


def chassis_power(session):
    """'on' or 'off' from Get Chassis Status (§28.2, byte 1 bit 0)."""
    status = session.command(NETFN_CHASSIS, 0x01)
    if not status:
        raise IpmiError(f"BMC {session.target} answered Get Chassis Status without its data")
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
        raise


class ChassisPower(Outlets):
    """The chassis as run_action's single "plug": the IPMI power of a
    server is one switch, whatever feeds it.  list and list-status show
    the power supplies instead of plugs."""

    PLUG = "chassis"
    implicit_plugs = (PLUG,)

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

    def listing_rows(self, with_state):
        from infrapower.ipmi.psu import read_power_supplies

        for psu in read_power_supplies(self.session):
            fields = [str(psu.fru_id if psu.fru_id is not None else psu.index), psu.name, psu.maker, psu.model,
                      psu.serial, psu.part, f"{psu.rating_watts} W" if psu.rating_watts else ""]
            yield fields + [psu.state] if with_state else fields

    def status_details(self):
        """PSU-aware status is opted into with min_psus: it costs a few
        more BMC exchanges than the chassis state alone."""
        if not self.min_psus:
            return []
        from infrapower.ipmi.psu import read_power_supplies

        # Health only: the FRU data (a dozen requests per PSU) is not shown.
        return [f"{psu.name}: {psu.state}" for psu in read_power_supplies(self.session, fru=False)]

    def extra_action(self, action):
        if action != "diag":
            return None
        chassis_control(self.session, "diag")
        print("Success: Diagnostic interrupt sent")
        return EXIT_OK

    def monitor(self):
        """The BMC answers with these credentials and privilege; with
        min_psus, enough power supplies are healthy."""
        chassis_power(self.session)
        if self.min_psus:
            from infrapower.ipmi.psu import check_min_psus, read_power_supplies

            check_min_psus(read_power_supplies(self.session, fru=False), self.min_psus)


@contextmanager
def open_chassis(settings, min_psus=0):
    """fence_ipmi_psu's device: a session as `settings` say, closed after;
    `-v` shows the round trips it took (login and close included)."""
    with open_session(settings) as session:
        yield ChassisPower(session, min_psus)
    log.debug("IPMI requests: %d", session.requests)
