"""Fuzzing every installed agent's options on stdin, as pacemaker-fenced
passes them: whatever the values (unicode digits, control characters,
huge, empty, negative, not numbers), an agent answers with exit 0, 1 or 2
and at most one-line errors, never a traceback, within a bound.  Nothing
listens where the options point (127.0.0.1 port 1, or a name that cannot
resolve), so no run can switch anything."""

import os
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AGENTS = sorted(path.stem for path in REPO.glob("agents/fence_*/fence_*.py"))
SBIN = Path("/usr/sbin")
# A longer run by hand: FUZZ_CASES=2000 FUZZ_SEED=... pytest tests/test_fuzz_options.py
CASES_PER_AGENT = int(os.environ.get("FUZZ_CASES", 40))
SEED = os.environ.get("FUZZ_SEED", "20261129")

# What a value can be: what an admin mistypes and what an attacker with
# access to the CIB might try.
VALUES = [
    "", "0", "1", "-1", "3", "65536", "99999999999999999999", "1e9", "nan", "inf", "-0.5", "0x10",
    "３", "٣", " 3", "1.3", "1,,2", ",", ":", "a:b:c", "pdu1:", ":3", "\x07", "a\rb", "\t",
    "a" * 5000, "é" * 300, "../../etc/passwd", "$(id)", "`id`", "'", '"', "\\", "%s%n", "ON", "off",
    "a..b", ".", "127.0.0.1", "::1", "[::1]", "localhost.invalid",
]
OPTIONS = [
    "action", "plug", "port", "ip", "ipaddr", "ipport", "username", "login", "password", "passwd",
    "password_script", "community", "snmp_version", "snmp_sec_level", "snmp_auth_prot", "snmp_priv_prot",
    "snmp_priv_passwd", "mib", "ups", "ssl", "ssl_ca", "ssl_required", "cipher", "privlvl", "lanplus",
    "hexadecimal_kg", "min_psus", "method", "power_timeout", "power_wait", "shell_timeout", "login_timeout",
    "delay", "plug_separator", "separator", "verbose", "pasword", "inet6_only", "inet4_only", "nodename",
]
ACTIONS = ["status", "off", "on", "reboot", "monitor", "list", "list-status", "validate-all", "bogus", ""]


def random_input(rng):
    options = {"ip": rng.choice(["127.0.0.1", "localhost.invalid"]), "ipport": "1", "action": rng.choice(ACTIONS)}
    for _ in range(rng.randint(1, 8)):
        options[rng.choice(OPTIONS)] = rng.choice(VALUES)
    # Never a delay that would make the run long, nor a script that runs.
    options.pop("delay", None)
    options.pop("password_script", None)
    for name in ("power_timeout", "shell_timeout", "login_timeout"):
        options.setdefault(name, "2")
    return "".join(f"{key}={value}\n" for key, value in options.items())


@pytest.mark.parametrize("agent", AGENTS)
def test_no_input_on_stdin_ever_gives_a_traceback(agent):
    path = SBIN / agent
    if not path.exists():
        pytest.fail(f"{path} is not installed: run `make install`")
    rng = random.Random(f"{SEED}-{agent}")
    inputs = [random_input(rng) for _ in range(CASES_PER_AGENT)]

    def run(text):
        return text, subprocess.run([str(path)], input=text, capture_output=True, text=True, timeout=30)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, inputs))
    for text, result in results:
        where = f"stdin:\n{text}\nrc={result.returncode}\nstderr: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr + result.stdout, where
        assert result.returncode in (0, 1, 2), where
        # fencing.py writes each error twice (its stderr handler and the
        # root logger's) and adds "Please use '-h' for usage" to its own
        # usage errors: one message is what counts.
        messages = {line.split("ERROR:", 1)[1].removeprefix("root:").strip() for line in result.stderr.splitlines() if "ERROR:" in line}
        messages.discard("Please use '-h' for usage")
        if "action=validate-all\n" not in text:  # that one lists every problem
            assert len(messages) <= 1, where
