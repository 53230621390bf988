"""ipmi-psu, the NUT driver, on the lab's BMC (ipmi_sim, nc2, PSU 1), as
installed (/lib/nut/ipmi-psu, the runtime venv).  No peer: NUT's own
nut-ipmipsu is in-band only.  Issue 12's targets:

- one poll of one PSU (its sensors and the chassis power): ≤ 50 ms of BMC
  time.  A case is a whole process, so the poll is the difference between
  "login + inventory + 50 polls" and "login + inventory + 0 polls",
  divided by 50; `python3 bench/cases_ipmi_psu_driver.py` prints it;
- the driver's memory once running under upsdrvctl: ≤ 40 MB RSS (printed
  by the session on stderr, and by the script);
- start-up under upsdrvctl: `upsdrvctl start` until it returns (the
  driver logged in, read the PSU and backgrounded), then `stop`.

    python3 bench/bench.py bench/cases_ipmi_psu_driver.py
"""

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import Case

RUNTIME_PYTHON = "/usr/bin/python3"  # what /lib/nut/ipmi-psu runs on (the Debian package)
UPSDRVCTL = "/sbin/upsdrvctl"
SERVER = "nc2"
POLLS = 50

# One device object, as the driver runs it: log-in and inventory once
# (init), then `polls` polls, each the sensors of one PSU and the chassis.
POLL_SCRIPT = """
import sys
from infrapower.nutdriver.ipmi_psu import IpmiPsu
port, user, password, polls = sys.argv[1], sys.argv[2], sys.stdin.read(), int(sys.argv[3])
device = IpmiPsu()
device.init({"port": port, "username": user, "password": password, "psu": "1", "privilege": "operator"})
for _ in range(polls):
    device._poll()
"""


def _conf(directory, port):
    from infrapower.lab import bmc

    conf, state = Path(directory, "conf"), Path(directory, "state")
    conf.mkdir(exist_ok=True)
    state.mkdir(mode=0o770, exist_ok=True)
    (conf / "ups.conf").write_text(
        f"[psu]\n\tdriver = ipmi-psu\n\tport = 127.0.0.1:{port}\n\tusername = {bmc.OPERATOR_USER}\n"
        f'\tpassword = "{bmc.OPERATOR_PASSWORD}"\n\tprivilege = operator\n\tpsu = 1\n\tpollinterval = 2\n')
    return {"NUT_CONFPATH": str(conf), "NUT_STATEPATH": str(state), "NUT_ALTPIDPATH": str(state)}


def driver_rss_mb(env):
    """VmRSS of a driver started by upsdrvctl, after a few polls."""
    full = dict(os.environ, **env)
    subprocess.run([UPSDRVCTL, "-u", "root", "start", "psu"], env=full, check=True, capture_output=True)
    try:
        time.sleep(5)  # two polls (pollinterval 2): the steady state, not the start
        pid = Path(env["NUT_STATEPATH"], "ipmi-psu-psu.pid").read_text().strip()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None
    finally:
        subprocess.run([UPSDRVCTL, "stop", "psu"], env=full, capture_output=True)


@contextlib.contextmanager
def session():
    from infrapower import lab as lab_module

    with tempfile.TemporaryDirectory(prefix="bench-ipmi-psu-driver-") as directory:
        lab = lab_module.up(Path(directory, "lab"), components=("bmc",))
        try:
            lab.nut_env = _conf(directory, lab.port(f"bmc:{SERVER}"))
            print(f"ipmi-psu RSS under upsdrvctl: {driver_rss_mb(lab.nut_env):.1f} MB (target ≤ 40 MB)",
                  file=sys.stderr)
            yield lab
        finally:
            lab_module.down(Path(directory, "lab"))


def cases(context=None):
    from infrapower.lab import bmc

    lab = context
    port = f"127.0.0.1:{lab.port(f'bmc:{SERVER}')}"

    def polls(count):
        return [RUNTIME_PYTHON, "-c", POLL_SCRIPT, port, bmc.OPERATOR_USER, str(count)]

    start_stop = f"{UPSDRVCTL} -u root start psu >/dev/null 2>&1 && {UPSDRVCTL} stop psu >/dev/null 2>&1"
    return [
        Case(f"ipmi-psu login + inventory + {POLLS} polls (nc2 PSU 1), measured", ours=polls(POLLS),
             stdin=bmc.OPERATOR_PASSWORD, runs=5, warmup=1),
        Case("ipmi-psu login + inventory, no poll, measured", ours=polls(0), stdin=bmc.OPERATOR_PASSWORD,
             runs=5, warmup=1),
        Case("ipmi-psu start under upsdrvctl (+ stop), measured", ours=["sh", "-c", start_stop],
             env=lab.nut_env, runs=5, warmup=1),
    ]


def main():
    """The three figures, for the issue: per-poll BMC time, RSS, start-up."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import run_cases

    with session() as lab:
        results = {r.case.name: r for r in run_cases(cases(lab))}
    names = list(results)
    many, none, start = (results[n].ours.median for n in names)
    print(f"one poll of one PSU: {(many - none) / POLLS * 1000:.1f} ms (target ≤ 50 ms); "
          f"best runs: {(results[names[0]].ours.min - results[names[1]].ours.min) / POLLS * 1000:.1f} ms")
    print(f"start-up under upsdrvctl (start + stop): {start * 1000:.0f} ms")


if __name__ == "__main__":
    main()
