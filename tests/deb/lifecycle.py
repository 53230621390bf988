"""Install, upgrade, remove and purge the Debian package inside a private
mount namespace: run as `unshare --mount --propagation private python3
lifecycle.py WORKDIR PREVIOUS.deb NEW.deb`.

/usr, /etc and /var are overlays whose writes land in WORKDIR, so the
machine (and every agent other tests are running) never sees the package
come and go.  Prints one JSON object: what was found at each step.

"Leftovers" are judged two ways: every path `dpkg -L` listed for either
version must, after the purge, exist only if it existed before the first
install (a shared directory such as /usr/sbin); and nothing the namespace
wrote outside dpkg's own bookkeeping may be left in the overlays (compiled
.pyc files, systemd state, empty directories).
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

PACKAGE = "fence-agents-infrapower"
OVERLAID = ("/usr", "/etc", "/var")
# dpkg's and apt's own bookkeeping, logs and caches: allowed to change.
BOOKKEEPING = ("/var/lib/dpkg", "/var/log", "/var/cache", "/var/lib/apt", "/etc/ld.so.cache")
# A module only the previous build has: the upgrade must take it (and its .pyc) away.
PREVIOUS_ONLY = "/usr/lib/python3/dist-packages/infrapower/_previous_build.py"


def sh(*argv):
    run = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
                         env=dict(os.environ, DEBIAN_FRONTEND="noninteractive",
                                  PATH="/usr/sbin:/usr/bin:/sbin:/bin"))
    if run.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    return run.stdout


def mount_overlays(work):
    """Each of OVERLAID becomes an overlay writing to WORK/upper; the
    machine's own directory stays visible, read-only, under WORK/host."""
    for top in OVERLAID:
        name = top.strip("/")
        host, upper, scratch = work / "host" / name, work / "upper" / name, work / "scratch" / name
        for directory in (host, upper, scratch):
            directory.mkdir(parents=True)
        sh("mount", "--bind", "-o", "ro", top, str(host))
        sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={host},upperdir={upper},workdir={scratch}", top)


def listing():
    return sorted(line for line in sh("dpkg", "-L", PACKAGE).splitlines() if line.startswith("/") and line != "/.")


def existing(paths):
    return sorted(path for path in paths if os.path.lexists(path))


def overlay_writes(work):
    """Paths the namespace created or changed, outside dpkg's bookkeeping;
    not whiteouts (deletions), and a directory only where the machine has
    none (a directory copied up to hold a change is no trace)."""
    found = set()
    for top in OVERLAID:
        upper = work / "upper" / top.strip("/")
        for root, dirs, files in os.walk(upper):
            for name in dirs + files:
                entry = Path(root, name)
                path = f"{top}/{entry.relative_to(upper)}"
                mode = entry.lstat().st_mode
                if stat.S_ISCHR(mode) or path.startswith(BOOKKEEPING):
                    continue
                if stat.S_ISDIR(mode) and (work / "host" / path.lstrip("/")).is_dir():
                    continue
                found.add(path)
    return found


def deb_paths(deb):
    """The paths a .deb installs, as `dpkg -L` will list them."""
    contents = sh("dpkg-deb", "-c", deb)
    paths = {"/" + line.split(None, 5)[5].split(" -> ")[0].removeprefix("./").rstrip("/") for line in contents.splitlines()}
    return paths - {"/"}


def agent_runs():
    return subprocess.run(["/usr/sbin/fence_snmp_pdu", "-o", "metadata"], capture_output=True).returncode == 0


def main(work, previous, new):
    work = Path(work)
    mount_overlays(work)
    report = {}
    # Start from a machine without the package (this namespace's view only).
    for package in (PACKAGE, "python3-nut"):
        if subprocess.run(["dpkg-query", "-W", package], capture_output=True).returncode == 0:
            sh("dpkg", "--purge", package)
    writes_before = overlay_writes(work)
    shipped = deb_paths(previous) | deb_paths(new)
    existed_before = set(existing(shipped))  # shared directories: /usr/sbin, /lib/nut, ...

    sh("dpkg", "-i", previous)
    listed_previous = listing()
    report["previous"] = {"version": sh("dpkg-query", "-W", "-f=${Version}", PACKAGE),
                          "missing": [p for p in listed_previous if not os.path.lexists(p)],
                          "has_previous_only": os.path.exists(PREVIOUS_ONLY), "agent_runs": agent_runs()}

    sh("dpkg", "-i", new)
    listed_new = listing()
    pycache = Path(PREVIOUS_ONLY).parent / "__pycache__"
    report["upgraded"] = {"version": sh("dpkg-query", "-W", "-f=${Version}", PACKAGE),
                          "missing": [p for p in listed_new if not os.path.lexists(p)],
                          "previous_only_left": existing([PREVIOUS_ONLY, *map(str, pycache.glob("_previous_build.*"))]),
                          "compiled": any(pycache.glob("*.pyc")), "agent_runs": agent_runs()}

    sh("dpkg", "--remove", PACKAGE)
    report["removed"] = {"left": [p for p in existing(listed_new) if not os.path.isdir(p)]}

    sh("dpkg", "--purge", PACKAGE)
    known = subprocess.run(["dpkg-query", "-W", PACKAGE], capture_output=True).returncode == 0
    report["purged"] = {"still_known": known,
                        "listed_left": sorted(set(existing(set(listed_previous) | set(listed_new))) - existed_before),
                        "written_left": sorted(overlay_writes(work) - writes_before)}
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
