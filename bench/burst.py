#!/usr/bin/env python3
"""Start N copies of a command at once, as Pacemaker does when many nodes
must be fenced together, and wait for all of them.

    burst.py --plugs 1-64 [--expect 0,2] -- ARGV... < TEMPLATE

Each copy gets TEMPLATE (this program's stdin) on its stdin with `{plug}`
replaced by its own plug (and `{plug}` in ARGV too; `--plugs` is a list such as `1-64` or
`pdu2:1-8`).  Every copy is started before any of them gets its options,
so they start together, as when Pacemaker fences many nodes at once.

Exit 0 only if every copy exited with an expected code; otherwise each
failure is one line on stderr ("plug 12: exit 1: <last stderr line>") and
the exit status is 1.  The first copy's stderr is passed on (before the
summary), so a verbose run shows one action's requests, as for one agent.

Secrets stay on stdin, as Pacemaker passes them: never in argv.
"""

import argparse
import subprocess
import sys
import time


def plug_list(text):
    """`1-64`, `pdu2:1-8`, `3,5,7`: the plugs, one per copy."""
    plugs = []
    for item in text.split(","):
        prefix, _, span = item.rpartition(":")
        if "-" in span:
            first, last = (int(part) for part in span.split("-", 1))
            plugs += [f"{prefix}:{n}" if prefix else str(n) for n in range(first, last + 1)]
        else:
            plugs.append(item)
    return plugs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", required=True)
    parser.add_argument("--expect", default="0")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    template = sys.stdin.read()
    expected = {int(code) for code in args.expect.split(",")}
    plugs = plug_list(args.plugs)

    started = time.perf_counter()
    running = []
    for plug in plugs:
        argv = [part.replace("{plug}", plug) for part in command]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        running.append((plug, proc))
    # Every copy is started before any gets its options: they start together.
    for plug, proc in running:
        proc.stdin.write(template.replace("{plug}", plug).encode())
        proc.stdin.close()
    failures = []
    for index, (plug, proc) in enumerate(running):
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait()
        if index == 0:
            sys.stderr.write(err)
        if code not in expected:
            tail = (err.strip().splitlines() or [""])[-1][:160]
            failures.append(f"plug {plug}: exit {code}: {tail}")
    elapsed = time.perf_counter() - started
    print(f"{len(plugs)} runs in {elapsed:.2f} s, {len(failures)} failed", file=sys.stderr)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
