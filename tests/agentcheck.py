"""Checks every fence agent's tests reuse: golden metadata, the RelaxNG
schema Pacemaker's tools use, the man page built from the metadata, and
fence-agents' delay rule (`delay=N` holds off/reboot back for N seconds
before any network I/O).

Plain functions that raise AssertionError with a message worth reading;
tests call them with their own agent.  `agent` everywhere is a path or an
argv list (for an agent run through a given interpreter).
"""

import difflib
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

RELAXNG_DIR = Path("/usr/share/cluster/relaxng")
METADATA_RNG = RELAXNG_DIR / "metadata.rng"
FENCE2MAN_XSL = RELAXNG_DIR / "fence2man.xsl"

REGENERATE_HINT = "if the change is intended, regenerate with `make metadata` and review the diff"


def _argv(agent):
    return [str(a) for a in agent] if isinstance(agent, (list, tuple)) else [str(agent)]


def _require_tool(name, package):
    if shutil.which(name) is None:
        raise RuntimeError(f"{name} is not installed: the checks need Debian package {package}")


# -- metadata ----------------------------------------------------------------


def metadata_xml(agent, env=None, timeout=30):
    """`AGENT -o metadata` as text; the agent must exit 0 and print XML."""
    argv = _argv(agent) + ["-o", "metadata"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env(env))
    if proc.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()}")
    if not proc.stdout.lstrip().startswith("<?xml"):
        raise AssertionError(f"`{' '.join(argv)}` did not print XML: {proc.stdout[:200]!r}")
    return proc.stdout


def validate_rng(xml_text, schema=METADATA_RNG):
    """Validate against the RelaxNG schema fence-agents installs (the one
    its own `make check` uses); raises AssertionError with xmllint's errors."""
    _require_tool("xmllint", "libxml2-utils")
    proc = subprocess.run(
        ["xmllint", "--noout", "--relaxng", str(schema), "-"],
        input=xml_text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        raise AssertionError(f"metadata does not validate against {schema}:\n{proc.stderr.strip()}")


def check_golden_metadata(agent, golden_path, env=None):
    """The agent's metadata must equal the reviewed copy in metadata/<agent>.xml
    (Pacemaker, pcs and the man page all read it; a change must be seen)."""
    golden_path = Path(golden_path)
    actual = metadata_xml(agent, env)
    if not golden_path.exists():
        raise AssertionError(f"no golden metadata at {golden_path}: {REGENERATE_HINT}")
    expected = golden_path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(golden_path),
                tofile=" ".join(_argv(agent)) + " -o metadata",
            )
        )
        raise AssertionError(f"metadata differs from {golden_path}; {REGENERATE_HINT}:\n{diff}")
    return actual


def write_golden(agent, golden_path, env=None):
    """Regenerate a golden file (what `make metadata` calls); refuses metadata
    that does not validate, so a broken one never becomes the reference."""
    xml = metadata_xml(agent, env)
    validate_rng(xml)
    golden_path = Path(golden_path)
    golden_path.parent.mkdir(parents=True, exist_ok=True)
    golden_path.write_text(xml)
    return golden_path


# -- man page ----------------------------------------------------------------


def build_manpage(golden_path, out_path):
    """fence-agents' own recipe: xsltproc fence2man.xsl over the metadata,
    then prove the page renders without a groff warning."""
    _require_tool("xsltproc", "xsltproc")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["xsltproc", "--nonet", "-o", str(out_path), str(FENCE2MAN_XSL), str(golden_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0 or proc.stderr.strip():
        raise AssertionError(f"xsltproc over {golden_path} failed ({proc.returncode}): {proc.stderr.strip()}")
    render_manpage(out_path)
    return out_path


def render_manpage(page_path):
    """`man -l` the page with every groff warning on; returns the rendered
    text, raises AssertionError listing the warnings if there are any.

    `w` is groff's "every warning": its `all` leaves out undefined macros
    and registers, the very mistakes generated roff makes (fence2man.xsl
    does not escape `\\`, so a backslash in metadata text becomes a roff
    escape: fence-agents' own fence_ipmilan page warns here for that)."""
    _require_tool("man", "man-db")
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    proc = subprocess.run(
        ["man", "--warnings=w", "-l", str(page_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    if proc.returncode != 0 or proc.stderr.strip():
        raise AssertionError(f"man page {page_path} renders with warnings ({proc.returncode}):\n{proc.stderr.strip()}")
    if not proc.stdout.strip():
        raise AssertionError(f"man page {page_path} renders empty")
    return proc.stdout


# -- delay -------------------------------------------------------------------


@dataclass
class FirstIO:
    """When the agent's first packet or connection reached our socket,
    counted from just before the agent was started."""

    seconds: Optional[float]
    agent_exit: Optional[int]
    agent_stderr: str


def _env(extra):
    if extra is None:
        return None
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _render_options(options):
    if isinstance(options, str):
        return options if options.endswith("\n") or not options else options + "\n"
    return "".join(f"{key}={value}\n" for key, value in options.items())


def time_first_io(agent, build_options, protocol="udp", delay=0, action="off", wait=30.0, env=None):
    """Run the agent with options on stdin (as Pacemaker does) against a
    socket of ours, and time its first I/O.  `build_options(host, port)`
    returns the agent's options (dict or `key=value` lines); `action` and
    `delay` are added here.  The agent is killed once it has shown itself."""
    if protocol not in ("udp", "tcp"):
        raise ValueError(f"protocol must be udp or tcp, not {protocol!r}")
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as listener:
        listener.bind(("127.0.0.1", 0))
        if protocol == "tcp":
            listener.listen(8)
        host, port = listener.getsockname()
        stdin = _render_options(build_options(host, port)) + f"action={action}\ndelay={delay}\n"
        # stderr to a file: a chatty agent must not block on a full pipe
        # while we wait for its packet.
        stderr_file = tempfile.TemporaryFile()
        started = time.monotonic()
        agent_proc = subprocess.Popen(
            _argv(agent),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            env=_env(env),
            start_new_session=True,  # its helpers (snmpget, ipmitool) go with it
        )
        try:
            try:
                agent_proc.stdin.write(stdin.encode())
                agent_proc.stdin.close()
            except BrokenPipeError:
                # It exited without reading its options; its exit and
                # stderr are what the loop below reports.
                pass
            deadline = started + delay + wait
            while True:
                # A short select, so an agent that exits without I/O is seen at once.
                ready, _, _ = select.select([listener], [], [], 0.05)
                if ready:
                    arrived = time.monotonic() - started
                    if protocol == "tcp":
                        listener.accept()[0].close()
                    else:
                        listener.recvfrom(65535)
                    return FirstIO(arrived, None, "")
                if agent_proc.poll() is not None:
                    stderr_file.seek(0)
                    return FirstIO(None, agent_proc.returncode, stderr_file.read().decode(errors="replace"))
                if time.monotonic() >= deadline:
                    return FirstIO(None, None, "")
        finally:
            if agent_proc.poll() is None:
                try:
                    os.killpg(agent_proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            agent_proc.wait()
            stderr_file.close()


def check_delay(agent, build_options, protocol="udp", delay=2, action="off", slack=0.25, env=None):
    """fence-agents' delay rule: with `delay=N`, off/reboot do no network I/O
    for N seconds.  Run once with delay=0 (the agent must reach our socket,
    or the check proves nothing), then with delay=N: the first I/O must come
    ≥ N s after start and ≥ N − slack s later than without the delay (so
    a slow start-up cannot pass for a delay).  Returns (undelayed, delayed)
    seconds."""

    def first_io(with_delay):
        result = time_first_io(agent, build_options, protocol, with_delay, action, env=env)
        if result.seconds is None:
            if result.agent_exit is not None:
                raise AssertionError(
                    f"with delay={with_delay} the agent exited {result.agent_exit} before any {protocol} I/O "
                    f"to our socket: {result.agent_stderr.strip()[-500:]}"
                )
            raise AssertionError(f"with delay={with_delay} the agent never reached our {protocol} socket")
        return result.seconds

    undelayed = first_io(0)
    delayed = first_io(delay)
    if delayed < delay or delayed - undelayed < delay - slack:
        raise AssertionError(
            f"action={action} delay={delay}: first {protocol} I/O after {delayed:.2f} s "
            f"(without delay: {undelayed:.2f} s); the delay must come before any network I/O"
        )
    return undelayed, delayed
