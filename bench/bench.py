#!/usr/bin/env python3
"""Wall-clock benchmark of whole processes: our agent against a peer tool
doing the same job on the same device.

A fence agent is judged by how long Pacemaker waits for it, which is the
whole process: interpreter start, imports, options read from stdin, the
protocol exchange, exit.  So each run is one `subprocess` from fork to
reap, timed with a monotonic clock; warm-up runs go first (page cache,
bytecode caches, the device's own caches) and are not counted.

Cases live in `bench/cases_*.py`.  A cases module defines

    def cases(context=None) -> list[Case]

and may define `session()`, a context manager whose value is passed to
`cases` (for example a running lab whose ports the argv needs).  A module
with `IN_DEFAULT_SET = False` runs only when named on the command line.

Secrets belong on stdin (`Case.stdin`), never in argv, the way Pacemaker
hands options to fence agents.
"""

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent


@dataclasses.dataclass
class Case:
    """One comparison.  `stdin`/`env`/`expect_rc` apply to both commands
    unless the `peer_*` variant is given; `env` is laid over os.environ.
    `target` is the highest acceptable ours/peer ratio of medians."""

    name: str
    ours: Sequence[str]
    peer: Optional[Sequence[str]] = None
    runs: int = 10
    warmup: int = 2
    stdin: Optional[str] = None
    env: Optional[dict] = None
    expect_rc: Sequence[int] = (0,)
    peer_stdin: Optional[str] = None
    peer_env: Optional[dict] = None
    peer_expect_rc: Optional[Sequence[int]] = None
    target: Optional[float] = None
    timeout: float = 120.0
    # Requests per action: after the timed runs, one more run (not timed)
    # with `verbose_stdin` added to the stdin; `requests(stderr)` /
    # `peer_requests(stderr)` read the count from its output (None: unknown).
    requests: Optional[Callable[[str], Optional[int]]] = None
    peer_requests: Optional[Callable[[str], Optional[int]]] = None
    verbose_stdin: str = "verbose=1\n"
    # Run after every run of either command, untimed (e.g. `lab down` after
    # a timed `lab up`); its failure fails the case.
    cleanup: Optional[Sequence[str]] = None
    # Peak memory: one more run (untimed) under /usr/bin/time, whose
    # maximum resident set size (the command's largest process) is shown.
    memory: bool = False
    # Ours and the peer alternate run by run instead of running back to
    # back: on a shared machine a burst of load then falls on both sides.
    interleave: bool = False

    def __post_init__(self):
        if self.runs < 1:
            raise ValueError(f"case {self.name}: runs must be at least 1")
        if self.warmup < 0:
            raise ValueError(f"case {self.name}: warmup must not be negative")


@dataclasses.dataclass
class Timing:
    """What one command did over its runs; `failure` says why it stopped."""

    seconds: list
    failure: Optional[str] = None
    requests: Optional[int] = None  # per action, from the counting run (Case.requests)
    peak_kib: Optional[int] = None  # maximum resident set size (Case.memory)

    @property
    def ok(self):
        return self.failure is None and bool(self.seconds)

    @property
    def median(self):
        return statistics.median(self.seconds)

    @property
    def min(self):
        return min(self.seconds)

    @property
    def max(self):
        return max(self.seconds)


@dataclasses.dataclass
class Result:
    case: Case
    ours: Timing
    peer: Optional[Timing]

    @property
    def failed(self):
        return not self.ours.ok or (self.peer is not None and not self.peer.ok)

    @property
    def ratio(self):
        if self.failed or self.peer is None or self.peer.median == 0:
            return None
        return self.ours.median / self.peer.median

    @property
    def met_target(self):
        """True/False against the target, None when there is nothing to judge."""
        if self.case.target is None or self.ratio is None:
            return None
        return self.ratio <= self.case.target

    @property
    def verdict(self):
        if self.failed:
            reasons = [f"{who}: {t.failure}" for who, t in (("ours", self.ours), ("peer", self.peer)) if t and t.failure]
            return "FAILED (" + "; ".join(reasons) + ")"
        if self.met_target is None:
            return "measured"
        return "meets target" if self.met_target else "MISSES target"


def _run_once(argv, stdin, env, timeout):
    """One whole process: (seconds, returncode, stderr)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(a) for a in argv],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        _, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return time.perf_counter() - started, proc.returncode, err.decode(errors="replace")


def time_command(argv, runs, warmup, stdin=None, env=None, expect_rc=(0,), timeout=120.0, cleanup=None):
    """Warm-up runs, then `runs` timed runs; stops at the first run whose exit
    code is unexpected, so a broken command is never timed as if it worked.
    `cleanup` runs after each run, untimed."""
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in env.items()})
    seconds = []
    for index in range(warmup + runs):
        try:
            elapsed, rc, err = _run_once(argv, stdin, full_env, timeout)
        except FileNotFoundError as exc:
            return Timing(seconds, f"cannot run {argv[0]}: {exc.strerror}")
        except subprocess.TimeoutExpired:
            return Timing(seconds, f"run {index + 1} did not finish in {timeout:g} s")
        finally:
            if cleanup is not None:
                subprocess.run([str(a) for a in cleanup], stdin=subprocess.DEVNULL, capture_output=True, env=full_env,
                               timeout=timeout)
        if rc not in expect_rc:
            tail = " ".join(err.strip().splitlines()[-2:])[:200]
            return Timing(seconds, f"exit {rc} (expected {'/'.join(map(str, expect_rc))})" + (f": {tail}" if tail else ""))
        if index >= warmup:
            seconds.append(elapsed)
    return Timing(seconds)


def run_case(case, progress=None):
    """Ours and peer interleaved per run would mix their caches' effects;
    instead each gets its own warm-up and runs back to back."""
    if case.interleave and case.peer is not None:
        ours, peer = _interleaved(case, progress)
    else:
        ours, peer = _back_to_back(case, progress)
    if case.requests is not None:
        _count(ours, case.ours, case.stdin, case.env, case, case.requests, progress)
    if peer is not None and case.peer_requests is not None:
        peer_stdin = case.peer_stdin if case.peer_stdin is not None else case.stdin
        _count(peer, case.peer, peer_stdin, case.peer_env if case.peer_env is not None else case.env, case,
               case.peer_requests, progress)
    if case.memory:
        _peak_memory(ours, case.ours, case.stdin, case.env, case, progress)
        if peer is not None:
            _peak_memory(peer, case.peer, case.peer_stdin if case.peer_stdin is not None else case.stdin,
                         case.peer_env if case.peer_env is not None else case.env, case, progress)
    return Result(case, ours, peer)


def _peer_args(case):
    return (
        case.peer_stdin if case.peer_stdin is not None else case.stdin,
        case.peer_env if case.peer_env is not None else case.env,
        case.peer_expect_rc if case.peer_expect_rc is not None else case.expect_rc,
    )


def _interleaved(case, progress=None):
    """One run of ours, one of the peer, and so on; a side that fails
    stops both (its Timing says why)."""
    if progress:
        progress(f"{case.name}: ours and peer alternating ({case.warmup} warm-up + {case.runs} each)")
    peer_stdin, peer_env, peer_rc = _peer_args(case)
    ours, peer = Timing([]), Timing([])
    for index in range(case.warmup + case.runs):
        for timing, argv, stdin, env, rc in ((ours, case.ours, case.stdin, case.env, case.expect_rc),
                                             (peer, case.peer, peer_stdin, peer_env, peer_rc)):
            one = time_command(argv, 1, 0, stdin, env, rc, case.timeout, case.cleanup)
            if not one.ok:
                timing.failure = f"run {index + 1}: {one.failure}"
                return ours, peer
            if index >= case.warmup:
                timing.seconds += one.seconds
    return ours, peer


def _back_to_back(case, progress=None):
    if progress:
        progress(f"{case.name}: ours ({case.warmup} warm-up + {case.runs})")
    ours = time_command(case.ours, case.runs, case.warmup, case.stdin, case.env, case.expect_rc, case.timeout,
                        case.cleanup)
    peer = None
    if case.peer is not None:
        if progress:
            progress(f"{case.name}: peer ({case.warmup} warm-up + {case.runs})")
        peer = time_command(
            case.peer,
            case.runs,
            case.warmup,
            case.peer_stdin if case.peer_stdin is not None else case.stdin,
            case.peer_env if case.peer_env is not None else case.env,
            case.peer_expect_rc if case.peer_expect_rc is not None else case.expect_rc,
            case.timeout,
            case.cleanup,
        )
    return ours, peer


def _peak_memory(timing, argv, stdin, env, case, progress=None):
    """One more run, untimed, under /usr/bin/time: its peak RSS (KiB)."""
    import tempfile

    if not timing.ok:
        return
    if progress:
        progress(f"{case.name}: peak memory ({argv[0]})")
    full_env = dict(os.environ, **{k: str(v) for k, v in (env or {}).items()})
    with tempfile.NamedTemporaryFile("r", prefix="bench-rss-") as out:
        try:
            _run_once(["/usr/bin/time", "-f", "%M", "-o", out.name, *argv], stdin, full_env, case.timeout)
        except (OSError, subprocess.TimeoutExpired):
            return
        finally:
            if case.cleanup is not None:
                subprocess.run([str(a) for a in case.cleanup], stdin=subprocess.DEVNULL, capture_output=True,
                               env=full_env, timeout=case.timeout)
        text = out.read().strip().splitlines()
    timing.peak_kib = int(text[-1]) if text and text[-1].isdigit() else None


def _count(timing, argv, stdin, env, case, counter, progress=None):
    """One more run, verbose, not timed: its requests per action."""
    if not timing.ok:
        return
    if progress:
        progress(f"{case.name}: counting requests ({argv[0]})")
    full_env = dict(os.environ, **{k: str(v) for k, v in (env or {}).items()})
    try:
        _, _, err = _run_once(argv, (stdin or "") + case.verbose_stdin, full_env, case.timeout)
    except (OSError, subprocess.TimeoutExpired):
        return
    timing.requests = counter(err)


def agent_requests(label):
    """A counter for our agents' `-v` line "<label>: N" (the last one)."""
    import re

    pattern = re.compile(rf"{re.escape(label)}: (\d+)")

    def count(stderr):
        found = pattern.findall(stderr)
        return int(found[-1]) if found else None

    return count


def net_snmp_requests(stderr):
    """Requests on the wire of an agent that runs net-snmp's programs and
    logs each command and its output in `-v` (fence-agents' SNMP agents):
    snmpget and snmpset send one; snmpwalk (v1/v2c, GETNEXT) one per row
    plus the one that leaves the subtree, and for a scalar (its only line
    is the OID walked) a GETNEXT then a GET: two.  Checked against
    `snmpwalk -d` on the lab's PDU (2 packets for sysObjectID.0, 9 for a
    column of 8)."""
    import re

    commands = []  # [program, argument text, output text]
    for block in re.split(r"^.*DEBUG: ", stderr, flags=re.M):
        command = re.match(r"\S*/(snmpget|snmpset|snmpwalk|snmpbulkwalk)\b(.*)", block)
        if command:
            commands.append([command.group(1), command.group(2), ""])
        elif commands and block.startswith("."):
            commands[-1][2] += block  # the command's output, logged next
    total = 0
    for program, arguments, output in commands:
        if program in ("snmpget", "snmpset"):
            total += 1
            continue
        if program == "snmpbulkwalk":
            return None  # rows per GETBULK unknown from the output
        walked = re.findall(r"'(\.[0-9.]+)'", arguments)
        rows = re.findall(r"^(\.[0-9.]+) ", output, flags=re.M)
        total += 2 if walked and rows == [walked[-1]] else len(rows) + 1
    return total or None


def run_cases(cases, progress=None):
    return [run_case(case, progress) for case in cases]


def _ms(seconds):
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


def _span(timing):
    return f"{_ms(timing.min)}–{_ms(timing.max)}" if timing and timing.ok else "–"


def format_table(results):
    """A Markdown table, one row per case."""
    rows = [
        "| case | ours median (ms) | peer median (ms) | ratio | requests ours / peer | min–max ours / peer (ms) | target | verdict |"
        + (" peak RSS ours / peer (MiB) |" if any(r.case.memory for r in results) else ""),
        "|---|---:|---:|---:|---:|---|---|---|" + ("---:|" if any(r.case.memory for r in results) else ""),
    ]
    for result in results:
        case = result.case
        ours = _ms(result.ours.median) if result.ours.ok else "–"
        peer = _ms(result.peer.median) if result.peer and result.peer.ok else "–"
        ratio = f"{result.ratio:.2f}×" if result.ratio is not None else "–"
        span = _span(result.ours) + (f" / {_span(result.peer)}" if result.peer else "")
        target = f"≤ {case.target:g}×" if case.target is not None else "–"
        verdict = result.verdict.replace("|", "\\|")
        memory = f" {_memory(result)} |" if any(r.case.memory for r in results) else ""
        rows.append(f"| {case.name} | {ours} | {peer} | {ratio} | {_requests(result)} | {span} | {target} | {verdict} |"
                    + memory)
    return "\n".join(rows)


def _requests(result):
    def shown(timing):
        return "–" if timing is None or timing.requests is None else str(timing.requests)

    if result.case.requests is None and result.case.peer_requests is None:
        return "–"
    return shown(result.ours) + (f" / {shown(result.peer)}" if result.peer else "")


def _memory(result):
    def shown(timing):
        return "–" if timing is None or timing.peak_kib is None else f"{timing.peak_kib / 1024:.0f}"

    if not result.case.memory:
        return "–"
    return shown(result.ours) + (f" / {shown(result.peer)}" if result.peer else "")


def results_json(results):
    def timing(t):
        return None if t is None else {"seconds": t.seconds, "failure": t.failure, "requests": t.requests,
                                       "peak_kib": t.peak_kib}

    return [
        {
            "case": r.case.name,
            "ours": timing(r.ours),
            "peer": timing(r.peer),
            "ratio": r.ratio,
            "target": r.case.target,
            "verdict": r.verdict,
        }
        for r in results
    ]


# -- case files ------------------------------------------------------------


def load_cases_module(path):
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"bench_cases_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "cases", None)):
        raise SystemExit(f"{path}: a cases module must define cases(context=None)")
    return module


def default_case_files():
    """Every bench/cases_*.py whose module does not opt out."""
    files = []
    for path in sorted(BENCH_DIR.glob("cases_*.py")):
        if "IN_DEFAULT_SET = False" not in path.read_text():
            files.append(path)
    return files


@contextlib.contextmanager
def _cases_from(module):
    session = getattr(module, "session", None)
    if session is None:
        yield module.cases()
    else:
        with session() as context:
            yield module.cases(context)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time whole processes, ours against a peer, and print a Markdown table. "
        "Exit status 1 if any command failed (or, with --strict, missed its target).",
    )
    parser.add_argument(
        "files", nargs="*", help="cases files (default: bench/cases_*.py except those with IN_DEFAULT_SET = False)"
    )
    parser.add_argument("-k", "--filter", help="only cases whose name contains this text")
    parser.add_argument("--runs", type=int, help="override every case's timed runs")
    parser.add_argument("--warmup", type=int, help="override every case's warm-up runs")
    parser.add_argument("--json", metavar="FILE", help="also write the raw timings as JSON")
    parser.add_argument("--strict", action="store_true", help="a missed target also makes the exit status 1")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    files = args.files or default_case_files()
    if not files:
        parser.error("no cases files: give some, or add bench/cases_*.py")
    progress = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))

    results = []
    for path in files:
        module = load_cases_module(path)
        with _cases_from(module) as cases:
            selected = [c for c in cases if not args.filter or args.filter in c.name]
            for case in selected:
                if args.runs is not None:
                    case.runs = args.runs
                if args.warmup is not None:
                    case.warmup = args.warmup
            results += run_cases(selected, progress)

    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results_json(results), indent=1))
    failed = [r.case.name for r in results if r.failed]
    missed = [r.case.name for r in results if r.met_target is False]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    if missed:
        print(f"missed target: {', '.join(missed)}", file=sys.stderr)
    return 1 if failed or (args.strict and missed) else 0


# `python3 bench/bench.py` runs this file as __main__; cases modules import
# `bench`, which must be this very module, or their Case would be another class.
sys.modules.setdefault("bench", sys.modules[__name__])

if __name__ == "__main__":
    sys.exit(main())
