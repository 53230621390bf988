"""ipmi-psu: a NUT driver for one power supply of a server, out of band
through the server's BMC (IPMI 2.0 / RMCP+), with the server's chassis
power as its commands.  Installed as /lib/nut/ipmi-psu; upsdrvctl starts
it from a ups.conf section:

    [clc-psu1]
        driver = ipmi-psu
        port = bmc-host[:623]          # [v6addr]:port for IPv6
        username = admin
        password = "pass word"         # or password_file = /etc/nut/clc-bmc.pw (first line)
        psu = 1                        # entity order 1..N, or fru:ID, or the FRU name
        pollinterval = 2
        # optional: cipher = 3|17, privilege = operator|administrator,
        # timeout = seconds per BMC exchange, power_timeout = seconds for a
        # command's read-back; parent = ..., server = ... (for the
        # PowerChain) are accepted and ignored.

Variables: device.type (psu), device.mfr, device.model, device.part,
device.serial, device.mfr.date (FRU), ups.id (FRU id), ups.realpower.nominal,
input.voltage.minimum/maximum, input.frequency.low/high (FRU power supply
record), input.voltage, input.current (sensors), chassis.power (`on`/`off`:
the server's chassis power as the BMC reports it; not `server.*`, which
upsd answers itself for any device), ups.status, ups.alarm, driver.*.

ups.status (NUT's flags; never OL for a supply that does not feed the load):
  OL         the supply is present, healthy and fed, and the server is on
  OFF        the server's chassis is off: this supply feeds no load
  ALARM      the supply is failed, absent, without input or unreadable;
             ups.alarm says which ("PSU failed", "PSU absent", "PSU input
             lost", "PSU state unknown").  With the server on: `ALARM`
             alone (the server runs on its other supplies); off: `OFF ALARM`.

Commands: load.off, load.on, shutdown.reboot and load.cycle switch the
server's chassis through the BMC (the reboot and the cycle as off, read
back, on, read back) and answer upsd's TRACKING only once the BMC reads
back the target state: SUCCESS, else FAILED.  A BMC that stops answering
makes the data stale (DATASTALE) at the poll that fails (within two poll
intervals); the driver logs in again at every poll until it answers.  At
start-up, any failure to log in and find the supply is one line and exit
status 1.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from infrapower import ports
from infrapower.errors import ConfigError, InfrapowerError
from infrapower.nutdriver import dstate
from infrapower.nutdriver.program import Device, DriverExit, run

log = logging.getLogger(__name__)

DRIVER_NAME = "ipmi-psu"
DRIVER_VERSION = "0.1"
DEFAULT_POLLINTERVAL = 2.0  # NUT's default poll_interval
DEFAULT_POWER_TIMEOUT = 20.0
READBACK_INTERVAL = 0.1  # s between chassis reads while a command settles
# Each step of a command: (chassis control action, state it must read back).
COMMANDS = {
    "load.off": (("off", "off"),),
    "load.on": (("on", "on"),),
    "shutdown.reboot": (("off", "off"), ("on", "on")),
    "load.cycle": (("off", "off"), ("on", "on")),
}
ALARMS = {"failed": "PSU failed", "absent": "PSU absent", "input lost": "PSU input lost"}


@dataclass(frozen=True)
class PsuConfig:
    """A ups.conf section as the driver uses it."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    psu: str
    pollinterval: float = DEFAULT_POLLINTERVAL
    cipher: int = None
    privilege: str = "administrator"
    timeout: float = None  # per BMC exchange; None: from pollinterval
    power_timeout: float = DEFAULT_POWER_TIMEOUT

    @property
    def exchange_timeout(self):
        """A failed poll must end within a poll interval, so the data turns
        stale within two; a BMC on a LAN answers in milliseconds."""
        return self.timeout if self.timeout else min(5.0, max(0.5, self.pollinterval * 0.75))


# How long stopping waits for an exchange in flight (upsdrvctl kills at 5 s).
_STOP_GRACE = 3.0


def split_port(port):
    """`host`, `host:623`, `[v6addr]:623` or a bare IPv6 address: (host, port)."""
    if port.startswith("["):
        host, _, rest = port[1:].partition("]")
        number = rest[1:] if rest.startswith(":") else ""
    elif port.count(":") == 1:
        host, _, number = port.partition(":")
    else:
        host, number = port, ""
    if not host:
        raise ConfigError(f"port = {port}: no BMC host (port = host[:623])")
    if number and not (number.isascii() and number.isdigit() and 0 < int(number) < 65536):
        raise ConfigError(f"port = {port}: {number!r} is not a UDP port number")
    return host, int(number) if number else ports.IPMI_PORT


def _number(config, key, default, kind=float):
    value = config.get(key)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{key} = {value}: not a number") from None
    if number <= 0:
        raise ConfigError(f"{key} = {value}: must be more than 0")
    return number


def parse_config(config):
    """A PsuConfig from the section's {key: value}; ConfigError names the key."""
    host, port = split_port(config.get("port") or "")
    password = config.get("password")
    if config.get("password_file"):
        if password is not None:
            raise ConfigError("give password or password_file, not both")
        path = Path(config["password_file"])
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise ConfigError(f"password_file = {path}: cannot read: {error.strerror}") from None
        password = lines[0] if lines else ""
    if not config.get("username"):
        raise ConfigError("username = ... is missing (the BMC user)")
    if password is None:
        raise ConfigError("password = ... or password_file = ... is missing")
    if not config.get("psu"):
        raise ConfigError("psu = ... is missing: 1..N in the BMC's entity order, fru:ID or the FRU name")
    cipher = config.get("cipher")
    return PsuConfig(
        host=host, port=port, username=config["username"], password=password, psu=config["psu"],
        pollinterval=_number(config, "pollinterval", DEFAULT_POLLINTERVAL),
        cipher=_number(config, "cipher", None, int) if cipher is not None else None,
        privilege=(config.get("privilege") or "administrator").lower(),
        timeout=_number(config, "timeout", None),
        power_timeout=_number(config, "power_timeout", DEFAULT_POWER_TIMEOUT),
    )


def select_psu(supplies, wanted):
    """The supply `psu =` names: N (1-based, entity order), fru:ID, or the
    FRU name exactly; ConfigError lists what the BMC has."""
    if wanted.isascii() and wanted.isdigit():
        index = int(wanted)
        if 1 <= index <= len(supplies):
            return supplies[index - 1]
    elif wanted.lower().startswith("fru:"):
        matches = [psu for psu in supplies if str(psu.fru_id) == wanted[4:].strip()]
        if matches:
            return matches[0]
    else:
        matches = [psu for psu in supplies if psu.name == wanted]
        if matches:
            return matches[0]
    known = ", ".join(f"{n} ({psu.name}, fru:{psu.fru_id})" for n, psu in enumerate(supplies, start=1)) or "none"
    raise ConfigError(f"psu = {wanted}: the BMC has no such power supply (it has: {known})")


def status_flags(psu_state, chassis):
    """(ups.status, ups.alarm or None) for a supply's state and the chassis."""
    alarm = None if psu_state == "ok" else ALARMS.get(psu_state, "PSU state unknown")
    flags = []
    if chassis == "off":
        flags.append("OFF")
    elif alarm is None:
        flags.append("OL")
    if alarm:
        flags.append("ALARM")
    return " ".join(flags), alarm


def static_variables(psu, config, parameters):
    """What the FRU and the configuration say, read once per login."""
    values = {
        "device.type": "psu",
        "device.mfr": psu.maker,
        "device.model": psu.model,
        "device.part": psu.part,
        "device.serial": psu.serial,
        "device.mfr.date": psu.mfr_date,
        "ups.id": str(psu.fru_id if psu.fru_id is not None else psu.index),
        "ups.realpower.nominal": str(psu.rating_watts) if psu.rating_watts else "",
        "driver.name": DRIVER_NAME,
        "driver.version": DRIVER_VERSION,
        "driver.version.internal": DRIVER_VERSION,
        "driver.parameter.pollinterval": f"{config.pollinterval:g}",
    }
    if psu.input_voltage_range:
        values["input.voltage.minimum"], values["input.voltage.maximum"] = (f"{v:g}" for v in psu.input_voltage_range)
    if psu.input_frequency_range:
        values["input.frequency.low"], values["input.frequency.high"] = (f"{v:g}" for v in psu.input_frequency_range)
    values.update({f"driver.parameter.{key}": value for key, value in parameters.items()})
    return {name: value for name, value in values.items() if value}


def dynamic_variables(psu, chassis):
    status, alarm = status_flags(psu.state, chassis)
    values = {"ups.status": status, "chassis.power": chassis}
    if alarm:
        values["ups.alarm"] = alarm
    if psu.input_voltage is not None:
        values["input.voltage"] = f"{psu.input_voltage:g}"
    if psu.input_current is not None:
        values["input.current"] = f"{psu.input_current:g}"
    return values


class IpmiPsu(Device):
    """One PSU of one BMC.  A thread of its own owns the IPMI session: it
    polls every pollinterval and runs the commands in between, so upsd's
    PINGs are answered even while the BMC is slow or gone."""

    name = DRIVER_NAME
    version = DRIVER_VERSION
    settings = frozenset({"username", "password", "password_file", "psu", "cipher", "privilege", "timeout",
                          "power_timeout", "parent", "server"})
    sensitive = frozenset({"password"})

    def __init__(self):
        self.config = None
        self.parameters = {}
        self.session = None
        self.psu = None
        self.sensors = ()
        self.static = {}
        self.lock = threading.Lock()
        self.state = dstate.Published(stale=True)
        self.jobs = queue.Queue()
        self.thread = None
        self.notify = lambda: None
        self.failing = False  # a failure is logged once, until the BMC answers again

    # -- Device ----------------------------------------------------------------

    def init(self, config):
        try:
            self.config = parse_config(config)
        except ConfigError as error:
            raise DriverExit(f"Error: {error}") from None
        self.parameters = {key: value for key, value in config.items()
                           if key not in self.sensitive and key != "driver" and value is not None}
        try:
            self._connect()
        except InfrapowerError as error:
            raise DriverExit(f"Error: cannot use the BMC {self.config.host}:{self.config.port}: {error}") from None

    def first_poll(self):
        try:
            self._poll()
        except InfrapowerError as error:
            raise DriverExit(f"Error: BMC {self.config.host}:{self.config.port}: {error}") from None

    def start(self, notify):
        self.notify = notify
        self.thread = threading.Thread(target=self._work, name="bmc", daemon=True)
        self.thread.start()

    def stop(self):
        self.jobs.put(None)
        if self.thread is not None:
            # Within upsdrvctl's 5 s before SIGKILL, with room for the close.
            self.thread.join(min(self.config.exchange_timeout * 2 + 1, _STOP_GRACE))
            if self.thread.is_alive():
                return  # still in an exchange: the BMC forgets the session on its own
        self._drop_session()

    def published(self):
        with self.lock:
            return dstate.Published(dict(self.state.vars), set(self.state.cmds), {}, self.state.stale)

    def request(self, command, param, reply):
        if command not in COMMANDS:
            reply(dstate.STAT_UNKNOWN)
            return
        self.jobs.put((command, reply))

    def shutdown(self):
        raise DriverExit(f"Error: {DRIVER_NAME} has no shutdown (-k): it would power the server off; "
                         "use upscmd ... load.off")

    # -- the BMC -----------------------------------------------------------------

    def _connect(self):
        from infrapower.ipmi.chassis import open_session
        from infrapower.ipmi.psu import power_supply_inventory
        from infrapower.ipmi.session import IpmiSettings

        config = self.config
        settings = IpmiSettings(config.host, config.port, config.username, config.password, config.privilege,
                                config.cipher, login_timeout=config.exchange_timeout,
                                command_timeout=config.exchange_timeout)
        session = open_session(settings)
        try:
            supplies, sensors = power_supply_inventory(session)
            psu = select_psu(supplies, config.psu)
        except BaseException:
            session.close()
            raise
        self.session, self.psu, self.sensors = session, psu, sensors.get(psu.index, ())
        self.static = static_variables(psu, config, self.parameters)
        log.info("BMC %s:%d: %s (%s %s, serial %s)", config.host, config.port, psu.name, psu.maker, psu.model,
                 psu.serial)

    def _drop_session(self):
        session, self.session = self.session, None
        if session is not None:
            session.close()

    def _poll(self):
        """Read the supply and the chassis; publish.  Raises on failure."""
        from infrapower.ipmi.chassis import chassis_power
        from infrapower.ipmi.psu import read_psu_sensors

        if self.session is None:
            self._connect()
        read_psu_sensors(self.session, self.psu, self.sensors)
        chassis = chassis_power(self.session)
        values = dict(self.static)
        values.update(dynamic_variables(self.psu, chassis))
        with self.lock:
            self.state = dstate.Published(values, set(COMMANDS), {}, False)
        return chassis

    def _poll_or_stale(self):
        try:
            self._poll()
        except Exception as error:  # noqa: BLE001 - whatever it is, the data goes stale and this thread lives on
            if not isinstance(error, (InfrapowerError, OSError)):
                log.debug("unexpected failure polling the BMC", exc_info=True)
            if not self.failing:
                log.warning("BMC %s:%d not answering: %s; data stale until it does", self.config.host,
                            self.config.port, error)
            self.failing = True
            with self.lock:
                self.state = dstate.Published(dict(self.state.vars), set(self.state.cmds), {}, True)
            self.notify()  # stale now, before the session is closed
            self._drop_session()
        else:
            if self.failing:
                log.info("BMC %s:%d answers again", self.config.host, self.config.port)
            self.failing = False
        self.notify()

    def _command(self, command):
        """Run the steps of `command`, each read back; a handler code."""
        from infrapower.fence import poll
        from infrapower.ipmi.chassis import chassis_control, chassis_power

        try:
            if self.session is None:
                self._connect()
            for action, target in COMMANDS[command]:
                chassis_control(self.session, action)
                poll(lambda: chassis_power(self.session), lambda state, target=target: state == target,
                     self.config.power_timeout, f"{command}: chassis power", interval=READBACK_INTERVAL)
        except Exception as error:  # noqa: BLE001 - an unexpected failure is a FAILED command, never a dead worker
            if not isinstance(error, (InfrapowerError, OSError)):
                log.debug("unexpected failure running %s", command, exc_info=True)
            log.warning("%s failed: %s", command, error)
            return dstate.STAT_FAILED
        log.info("%s: done, chassis read back", command)
        return dstate.STAT_HANDLED

    def _work(self):
        interval = self.config.pollinterval
        next_poll = time.monotonic() + interval
        while True:
            try:
                job = self.jobs.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                self._poll_or_stale()
                next_poll = time.monotonic() + interval
                continue
            if job is None:
                return
            command, reply = job
            code = self._command(command)
            # The read-back state goes to upsd before the TRACKING answer.
            self._poll_or_stale()
            next_poll = time.monotonic() + interval
            reply(code)
            self.notify()


def main(argv=None):
    return run(IpmiPsu(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
