"""The lab's NUT server: Debian's real upsd 2.8.0 with real drivers.

Layout under the lab directory:
  nut/conf/   ups.conf, upsd.conf, upsd.users, nut.conf (NUT_CONFPATH)
  nut/state/  driver sockets and PID files (NUT_STATEPATH, NUT_ALTPIDPATH)
  logs/upsd.log, logs/nut-driver-<device>.log

Devices:
- `ups1`, `ups2`, ... (the topology's UPSes) and the test PDU `tpdu` are
  served by infrapower.lab.nut_driver, a Python driver speaking the
  driver-socket protocol (ups.conf `driver = infrapower-lab`; upsd 2.8.0
  never runs or checks the driver binary, it only connects to
  `<statepath>/<driver>-<device>`);
- every PDU of the topology whose SNMP simulator registered a port
  `snmp:<pdu>` is served by the real `snmp-ups` over SNMP (the lab's PDUs);
- when the lab runs its BMCs (ports `bmc:<server>`), every PSU of every
  server is a device `<server>-psu<N>` (`clc-psu1`, ...) served by the
  pack's installed NUT driver ipmi-psu (/lib/nut/ipmi-psu, `make
  install-driver`), started by NUT's own `upsdrvctl` from ups.conf, logged
  in to the server's ipmi_sim as its operator (chassis control needs no
  more; ipmi_sim 1.0.13 takes no password with blanks, so a spaced one is
  tested against the Python RMCP+ BMC).  The driver backgrounds itself;
  the lab records the PID from the driver's own PID file.

Users (upsd.users; upsd 2.8.0 has no wildcards in `instcmds`: each
command is listed, or `all`):
- FENCER_USER: exactly the commands fencing needs: `outlet.N.load.off`,
  `.on`, `.cycle` for every outlet number any PDU has, and `load.off` /
  `load.on` for whole devices (UPS), nothing else (no SET, no FSD, no
  shutdown.*, no test.*, no delayed variants).  Its password has a space,
  which clients must quote (NUT 2.8.0's own `upscmd -p` cannot send it).
- SET_FENCER_USER: the same commands plus `actions = SET`, what a fencing
  user needs where outlets are switched by writing outlet.N.status
  (snmp-ups' apc_pdu mapping; the test driver's `status_writable` mode).
- MONITOR_USER: no instcmds, no actions: for ACCESS-DENIED paths.
- ADMIN_USER: `instcmds = all`, `actions = set`; has no space in its password
  so upscmd/upsrw work from a shell.

snmp-ups settings (SNMP_SETTINGS): `pollinterval = 1` is the driver loop's
minimum; `pollfreq = 0` makes every loop a full walk (`time(NULL) > lastpoll
+ pollfreq` in snmp-ups.c), so an outlet change shows in upsd ~1.0 s after
the command (measured; 2.0 s with pollfreq 1, 3.0 s with 2, up to 30 s with
the default).  snmp-ups never re-polls right after an INSTCMD, so this is
its floor.  It uses one community for GET and SET: the write one.

TLS: Debian's upsd 2.8.0 is built with NSS (`ldd /lib/nut/upsd`), so
upsd.conf names an NSS database (CERTPATH) and the certificate's nickname
with the database password (CERTIDENT).  The lab makes a CA, a server
certificate for 127.0.0.1 signed by it, and a second, unrelated CA (for
"wrong CA" tests) with Debian's openssl and certutil/pk12util
(libnss3-tools); tls_files(lab) gives their paths.  upsd offers STARTTLS
and does not require it.  `start_upsd(lab, name, tls=False)` starts another
upsd over the same drivers without TLS ("TLS not offered").

Daisy chains served by snmp-ups (a PDU of `units` > 1 without `nut: False`)
get FENCER_USER grants for their `device.U.outlet.N` commands too.
Limits: the test driver serves a UPS or tpdu, nothing else.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from infrapower.lab.core import LabError, free_port, lab_python, wait_until
from infrapower.nut.client import NutClient, NutError, NutSettings
from infrapower.lab.nut_driver import DRIVER_NAME, TEST_PDU, TEST_PDU_OUTLETS
from infrapower.lab.nut_driver import socket_path as test_driver_socket
from infrapower.lab.bmc_data import OPERATOR_PASSWORD, OPERATOR_USER, numbered_psus
from infrapower.lab.pdus import WRITE_COMMUNITY  # snmp-ups reads and writes with one
from infrapower.lab.rack import pdu_outlet_ids

HOST = "127.0.0.1"
UPSD = "/lib/nut/upsd"
SNMP_UPS = "/lib/nut/snmp-ups"
UPSDRVCTL = "/sbin/upsdrvctl"
PSU_DRIVER = "ipmi-psu"
# upsdrvctl runs drivers from NUT's DRVPATH (Debian: /lib/nut), where `make
# install-driver` puts ipmi-psu; INFRAPOWER_NUT_DRIVERPATH names another
# directory (ups.conf `driverpath`), for a driver not installed yet.
DEFAULT_DRIVERPATH = "/lib/nut"


def driver_dir():
    return Path(os.environ.get("INFRAPOWER_NUT_DRIVERPATH") or DEFAULT_DRIVERPATH)
# NUT's default: a PSU changes rarely, and every poll of a lab BMC runs
# its chassis_control program.
PSU_POLLINTERVAL = 2

FENCER_USER, FENCER_PASSWORD = "fencer", "fence me now"
SET_FENCER_USER, SET_FENCER_PASSWORD = "fencer-set", "switch by set"
MONITOR_USER, MONITOR_PASSWORD = "monitor", "just-looking"
ADMIN_USER, ADMIN_PASSWORD = "admin", "lab-admin"

# snmp-ups writes outlet commands with SNMP SETs, and it has one community
# for everything: it must be the simulators' write community.
SNMP_SETTINGS = (
    ("mibs", "auto"),  # sysObjectID picks the mapping, as in the field
    ("pollinterval", "1"),  # seconds between driver loops; 1 is the minimum
    # A full walk (outlet status included) on every loop.  Measured, command
    # to outlet.N.status in upsd: pollfreq 0 -> 1.0 s, 1 -> 2.0 s, 2 -> 3.0 s.
    ("pollfreq", "0"),
    ("snmp_retries", "1"),  # a local peer either answers or is down
    ("snmp_timeout", "1"),  # seconds per try
)



def conf_dir(lab, upsd_name="upsd"):
    """The configuration of the lab's upsd, or of another one (start_upsd)."""
    return lab.path("nut", "conf" if upsd_name == "upsd" else f"conf-{upsd_name}")


def tls_dir(lab):
    return lab.path("nut", "tls")


def tls_files(lab):
    """What a client needs: `ca` signed upsd's certificate, `other_ca` did
    not; `host` is the name the certificate is issued for."""
    return {"ca": str(tls_dir(lab) / "ca.pem"), "other_ca": str(tls_dir(lab) / "other-ca.pem"), "host": HOST}


def state_dir(lab):
    return lab.path("nut", "state")


def nut_env(lab, upsd_name="upsd"):
    return {
        "NUT_CONFPATH": str(conf_dir(lab, upsd_name)),
        "NUT_STATEPATH": str(state_dir(lab)),
        "NUT_ALTPIDPATH": str(state_dir(lab)),
    }


def users():
    return {
        FENCER_USER: FENCER_PASSWORD,
        SET_FENCER_USER: SET_FENCER_PASSWORD,
        MONITOR_USER: MONITOR_PASSWORD,
        ADMIN_USER: ADMIN_PASSWORD,
    }


# -- which devices --------------------------------------------------------------


def test_driver_devices(topology):
    """Devices served by the Python test driver: the UPSes and tpdu."""
    return list(topology["upses"]) + [TEST_PDU]


def snmp_devices(lab, topology):
    """{pdu: udp port} for the PDUs whose SNMP simulator is up (registered
    its port); tpdu, if the topology has it, is the test driver's.  A PDU
    with `nut: False` in the topology is read over SNMP only (no snmp-ups:
    a big rack's daisy chains, see infrapower.lab.bigrack)."""
    ports = lab.ports()
    return {
        name: ports[f"snmp:{name}"]
        for name, pdu in topology["pdus"].items()
        if name != TEST_PDU and f"snmp:{name}" in ports and pdu.get("nut", True)
    }


def psu_devices(lab, topology):
    """{device: (server, psu number, BMC port)} for every PSU of every
    server whose BMC is up (registered its port): `clc-psu1`, ...; none
    where the topology says `nut_psu_devices: False` (a big rack: one
    driver per PSU would be hundreds of processes)."""
    if not topology.get("nut_psu_devices", True):
        return {}
    ports = lab.ports()
    return {
        f"{server}-psu{number}": (server, number, ports[f"bmc:{server}"])
        for server in topology["servers"]
        if f"bmc:{server}" in ports
        for number, _psu in numbered_psus(topology, server)
    }


def device_names(lab):
    topology = lab.rack.topology()
    return test_driver_devices(topology) + list(snmp_devices(lab, topology)) + list(psu_devices(lab, topology))


def fencer_commands(topology):
    """The fencer's instcmds, one per line in upsd.users: every outlet
    number of every PDU (snmp-ups numbers outlets 1..N per device) and the
    test PDU, plus whole-device off/on; `.cycle` too, which the lab's
    tests send (fence_nut itself never does)."""
    from infrapower.nutconf.fencer import fencer_commands as granted

    counts = {TEST_PDU_OUTLETS}
    chained = set()
    for name, pdu in topology["pdus"].items():
        units = max(pdu.get("units", 1), 1)
        counts.add(len(pdu_outlet_ids(name, pdu)) // units)
        if units > 1 and pdu.get("nut", True):
            # snmp-ups names a daisy chain's outlets device.U.outlet.N.
            chained |= {(unit, number) for unit in range(1, units + 1) for number in range(1, pdu["outlets"] + 1)}
    outlets = list(range(1, max(counts) + 1)) + sorted(chained)
    return granted(outlets, cycle=True, whole_load=True)


# -- configuration ----------------------------------------------------------------
# Written through infrapower.nutconf (the pack's one parser and writer of
# NUT's files): quoting and layout are NUT's, as for any admin's edit.

CONF_MODE = 0o640  # upsd warns about world-readable files


def _conf(path, kind, header="# written by infrapower.lab.nut\n"):
    """A fresh file of `kind` (whatever was there before is replaced)."""
    from infrapower.nutconf.syntax import ConfFile

    return ConfFile(header, path, kind)


def write_config(lab, port):
    """Write the private NUT configuration; returns the device list."""
    topology = lab.rack.topology()
    conf, state = conf_dir(lab), state_dir(lab)
    conf.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o770)

    ups = _conf(conf / "ups.conf", "ups.conf")
    if str(driver_dir()) != DEFAULT_DRIVERPATH:
        ups.set(None, "driverpath", str(driver_dir()))
    for device in test_driver_devices(topology):
        _settings(ups, device, driver=DRIVER_NAME, port=str(lab.dir), desc=f"lab test driver: {device}")
    for device, snmp_port in snmp_devices(lab, topology).items():
        mapping = topology["pdus"][device].get("mapping", "?")
        _settings(ups, device, driver="snmp-ups", port=f"{HOST}:{snmp_port}", desc=f"lab SNMP PDU ({mapping})",
                  community=WRITE_COMMUNITY, **dict(SNMP_SETTINGS))
    for device, (server, number, bmc_port) in psu_devices(lab, topology).items():
        # power_timeout 5: a command not read back fails in 5 s (lab chassis switch at once)
        _settings(ups, device, driver=PSU_DRIVER, port=f"{HOST}:{bmc_port}",
                  desc=f"{server} power supply {number} (BMC)", username=OPERATOR_USER,
                  password=OPERATOR_PASSWORD, privilege="operator", psu=str(number),
                  pollinterval=str(PSU_POLLINTERVAL), power_timeout="5")
    ups.write(mode=CONF_MODE)

    upsd_conf(lab, port, tls=True).write(mode=CONF_MODE)
    users = _conf(conf / "upsd.users", "upsd.users")
    commands = fencer_commands(topology)
    for user, password, actions in ((FENCER_USER, FENCER_PASSWORD, []),
                                    (SET_FENCER_USER, SET_FENCER_PASSWORD, ["SET"])):
        users.set(user, "password", password)
        users.set_all(user, "instcmds", commands)
        users.set_all(user, "actions", actions)
    users.set(MONITOR_USER, "password", MONITOR_PASSWORD)
    _settings(users, ADMIN_USER, password=ADMIN_PASSWORD, instcmds="all", actions="set")
    users.write(mode=CONF_MODE)
    nut_conf = _conf(conf / "nut.conf", "nut.conf")
    nut_conf.set(None, "MODE", "netserver")
    nut_conf.write(mode=CONF_MODE)
    return device_names(lab)


def _settings(conf, section, **values):
    for key, value in values.items():
        conf.set(section, key, value)


def upsd_conf(lab, port, tls, upsd_name="upsd"):
    """upsd.conf of the lab's upsd (or another one), not written yet."""
    upsd = _conf(conf_dir(lab, upsd_name) / "upsd.conf", "upsd.conf")
    upsd.set(None, "LISTEN", [HOST, str(port)])
    upsd.set(None, "MAXAGE", "15")
    if tls:
        upsd.set(None, "CERTPATH", str(tls_dir(lab) / "nssdb"))
        upsd.set(None, "CERTIDENT", [TLS_NICKNAME, TLS_DB_PASSWORD])
    return upsd


TLS_NICKNAME = "upsd"
TLS_DB_PASSWORD = "lab-nss-db"


def make_tls(lab):
    """A CA, upsd's certificate for 127.0.0.1 in an NSS database, and an
    unrelated CA; quick (two RSA keys... three), done once per lab dir."""
    directory = tls_dir(lab)
    if (directory / "nssdb" / "cert9.db").exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "nssdb"
    db.mkdir(exist_ok=True)
    password_file = directory / "db-password"
    password_file.write_text(TLS_DB_PASSWORD + "\n")
    os.chmod(password_file, 0o600)

    def run(*argv):
        result = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise LabError(f"{argv[0]} failed making the lab's TLS files: {result.stderr.strip()}")

    for ca in ("ca", "other-ca"):
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
            "-out", f"{ca}.pem", "-days", "3650", "-subj", f"/CN=infrapower lab {ca}")
    (directory / "server.ext").write_text(f"subjectAltName=IP:{HOST},DNS:localhost\n")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", f"/CN={HOST}")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "3650", "-extfile", "server.ext")
    # pk12util and certutil read passwords from files (-k/-f, -w): never argv.
    (directory / "p12-password").write_text(TLS_DB_PASSWORD + "\n")
    run("openssl", "pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-name", TLS_NICKNAME,
        "-passout", f"file:{directory / 'p12-password'}", "-out", "server.p12")
    run("certutil", "-N", "-d", f"sql:{db}", "-f", str(password_file))
    run("pk12util", "-i", "server.p12", "-d", f"sql:{db}", "-k", str(password_file), "-w", str(directory / "p12-password"))
    run("certutil", "-A", "-d", f"sql:{db}", "-f", str(password_file), "-n", "infrapower lab CA", "-t", "CT,,", "-a",
        "-i", "ca.pem")


# -- processes ----------------------------------------------------------------------


def driver_process(device):
    return f"nut-driver-{device}"


def _driver_socket(lab, device, topology):
    if device in test_driver_devices(topology):
        return test_driver_socket(state_dir(lab), device)
    if device in psu_devices(lab, topology):
        return state_dir(lab) / f"{PSU_DRIVER}-{device}"
    return state_dir(lab) / f"snmp-ups-{device}"


def start_psu_drivers(lab, devices, deadline):
    """`upsdrvctl -u root start DEVICE` for each PSU device, all at once
    (each waits for its driver's log-in); the driver's PID (from its PID
    file in the state dir) is recorded as the lab's process
    nut-driver-DEVICE, so `lab down` and lab.stop() end it."""
    if devices and not (driver_dir() / PSU_DRIVER).exists():
        raise LabError(f"{driver_dir() / PSU_DRIVER} is not installed: run `make install-driver` (or make install)")
    env = dict(os.environ, **nut_env(lab))
    started = {}
    for device in devices:
        lab.path("logs").mkdir(parents=True, exist_ok=True)
        with open(_log(lab, driver_process(device)), "ab") as log:
            # -u root: the lab's private dirs are root's; the driver's
            # stderr is the log file, which it keeps once in the background.
            started[device] = subprocess.Popen([UPSDRVCTL, "-u", "root", "start", device], env=env,
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    failed = []
    for device, proc in started.items():
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "timeout"
        pid_file = state_dir(lab) / f"{PSU_DRIVER}-{device}.pid"
        if code == 0 and pid_file.exists():
            lab.path("pids").mkdir(parents=True, exist_ok=True)
            lab.path("pids", f"{driver_process(device)}.pid").write_text(pid_file.read_text().strip())
        else:
            failed.append(f"{device} ({code})")
    if failed:
        raise LabError(f"upsdrvctl could not start {', '.join(failed)}: see {lab.path('logs')}")


def _log(lab, name):
    return lab.path("logs", f"{name}.log")


def start(lab, deadline=None):
    """Write the configuration, start every driver, wait for their sockets
    (so upsd connects at once instead of retrying every 2 s), start upsd.
    `deadline` is a time.monotonic() value (default: 20 s from now).
    Call wait_ready() afterwards for "upsd serves every device"."""
    deadline = deadline if deadline is not None else time.monotonic() + 20
    topology = lab.rack.topology()
    port = free_port("tcp")
    make_tls(lab)
    devices = write_config(lab, port)
    env = nut_env(lab)
    for device in test_driver_devices(topology):
        lab.spawn(
            driver_process(device),
            [lab_python(), "-m", "infrapower.lab.nut_driver", "--lab", lab.dir, "--device", device],
            env,
        )
    for device in snmp_devices(lab, topology):
        # -F: foreground (lab.spawn keeps the PID); -u root: no switch to
        # the `nut` user, which could not use the lab's private dirs.
        lab.spawn(driver_process(device), [SNMP_UPS, "-a", device, "-F", "-u", "root"], env)
    start_psu_drivers(lab, psu_devices(lab, topology), deadline)

    for device in devices:
        name, path = driver_process(device), _driver_socket(lab, device, topology)

        def socket_up(name=name, path=path):
            # A truthy "exited" ends the wait at once (wait_until would
            # swallow an exception and keep polling until the deadline).
            return "exited" if not lab.alive(name) else path.exists()

        try:
            outcome = wait_until(socket_up, deadline, f"NUT driver socket {path}")
        except LabError as exc:
            raise LabError(f"{exc} (log: {_log(lab, name)})") from None
        if outcome == "exited":
            raise LabError(f"NUT driver {name} exited at start: see {_log(lab, name)}")

    lab.spawn("upsd", [UPSD, "-F", "-u", "root"], env)
    lab.set_port("upsd", port)
    return devices


def start_upsd(lab, name, tls=False, devices=None):
    """Another upsd over the lab's running drivers (they are found through
    the shared NUT_STATEPATH), e.g. one without TLS, or one serving only
    `devices` (as a second NUT server would); returns its port once it
    answers.  `stop` ends it with the rest."""
    from infrapower.nutconf.syntax import ConfFile

    if not name.startswith("upsd-"):
        raise LabError(f"an extra upsd's name starts with 'upsd-', not {name!r}")
    port = free_port("tcp")
    conf = conf_dir(lab, name)
    conf.mkdir(parents=True, exist_ok=True)
    for shared in ("upsd.users", "nut.conf"):
        ConfFile.read(conf_dir(lab) / shared).write(conf / shared, mode=CONF_MODE)
    ups_conf = ConfFile.read(conf_dir(lab) / "ups.conf")
    unknown = set(devices or ()) - set(ups_conf.sections)
    if unknown:
        raise LabError(f"{name}: the lab has no NUT device {', '.join(sorted(unknown))}")
    ups_conf.keep_sections(devices)
    ups_conf.write(conf / "ups.conf", mode=CONF_MODE)
    upsd_conf(lab, port, tls, name).write(mode=CONF_MODE)
    lab.spawn(name, [UPSD, "-F", "-u", "root"], nut_env(lab, name))
    lab.set_port(name, port)

    def answers():
        if not lab.alive(name):
            return "exited"
        try:
            with NutSession(port, timeout=1.0) as nut:
                nut.list_ups()
            return True
        except NutError:
            return False

    if wait_until(answers, time.monotonic() + 10, f"{name} on {HOST}:{port}") == "exited":
        raise LabError(f"{name} exited: see {_log(lab, name)}")
    return port


def stop(lab):
    for name in lab.process_names():
        if name.startswith("upsd-"):
            lab.stop(name)
    lab.stop("upsd")
    for name in lab.process_names():
        if name.startswith("nut-driver-"):
            lab.stop(name)
    # ipmi-psu drivers backgrounded themselves: their own PID files say
    # where they are now (what upsdrvctl stop reads), whatever the lab noted.
    for pid_file in state_dir(lab).glob(f"{PSU_DRIVER}-*.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def wait_ready(lab, deadline):
    """Until upsd answers and every device has fresh data (no
    DRIVER-NOT-CONNECTED / DATA-STALE); `deadline` is time.monotonic()."""
    port = lab.port("upsd")
    devices = device_names(lab)
    waiting = {}

    def ready():
        if not lab.alive("upsd"):
            return "exited"  # ends the wait at once
        with NutSession(port) as nut:
            for device in devices:
                try:
                    nut.get_var(device, "device.type")
                except NutError as exc:
                    waiting["device"] = f"{device}: {exc}"
                    return False
        return True

    try:
        outcome = wait_until(ready, deadline, f"upsd on {HOST}:{port}")
    except LabError as exc:
        detail = waiting.get("device")
        device = (detail or "").split(":", 1)[0]
        logs = [str(_log(lab, "upsd"))] + ([str(_log(lab, driver_process(device)))] if device else [])
        raise LabError(f"{exc}; last: {detail or 'no answer'} (logs: {', '.join(logs)})") from None
    if outcome == "exited":
        raise LabError(f"upsd exited: see {_log(lab, 'upsd')}")


def status(lab):
    """What the lab's NUT offers, for the CLI, the demo and the agents."""
    try:
        port = lab.port("upsd")
    except LabError:
        return {"running": False}
    devices = {}
    for device in device_names(lab):
        name = driver_process(device)
        entry = {"driver_process": name, "alive": lab.alive(name)}
        try:
            with NutSession(port, timeout=2.0) as nut:
                entry["device.type"] = nut.get_var(device, "device.type")
                if entry["device.type"] in ("ups", "psu"):
                    entry["ups.status"] = nut.get_var(device, "ups.status")
        except (NutError, OSError) as exc:
            entry["error"] = str(exc)
        devices[device] = entry
    return {
        "running": lab.alive("upsd"),
        "host": HOST,
        "port": port,
        "users": users(),
        "fencer_instcmds": fencer_commands(lab.rack.topology()),
        "devices": devices,
        "conf_dir": str(conf_dir(lab)),
        "state_dir": str(state_dir(lab)),
        "log": str(_log(lab, "upsd")),
    }


def set_nut_fault(lab, device, kind=None, **params):
    """Inject (kind given) or clear (None) a fault of the test driver's
    device: see infrapower.lab.nut_driver for the kinds; `on_battery` and
    `low_battery` (param `charge`) change a UPS's status."""
    lab.rack.set_fault(f"nut:{device}", kind, **params)


# -- a session for readiness checks and tests ---------------------------------


class NutSession(NutClient):
    """infrapower.nut's client, connected at once (clear text), with two
    conveniences for tests: `request` (one raw line, its answer; ERR raises
    NutError with `.code`) and `tracking` (the result as a word)."""

    def __init__(self, port, host=HOST, timeout=3.0):
        super().__init__(NutSettings(host, port, timeout))
        self.connect()

    def request(self, line):
        return self._exchange(line)

    def tracking(self, tracking_id):
        """PENDING, SUCCESS or the error code (UNKNOWN, FAILED, ...)."""
        try:
            return self.get_tracking(tracking_id)
        except NutError as exc:
            return exc.code
