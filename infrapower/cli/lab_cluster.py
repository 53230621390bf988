"""`infrapower lab` commands for the lab's 3-node cluster (docs/cluster.md):
`lab up --cluster`, `lab node NAME -- CMD...`, `lab fault node NAME KIND`."""

import sys
import time


def start(running, fencing=True):
    """After `lab up`: the cluster, then its fencing from the plan;
    returns (seconds until every node joined, the pcs commands applied).
    tests/cluster's fixture starts its cluster with it."""
    from infrapower.lab import cluster
    from infrapower.lab.cluster import fencing as cluster_fencing

    started = time.monotonic()
    cluster.up(running)
    seconds = time.monotonic() - started
    print(f"cluster up in {seconds:.1f} s: {', '.join(cluster.NODES)}", file=sys.stderr)
    commands = []
    if fencing:
        started = time.monotonic()
        commands = cluster_fencing.apply(running)
        print(f"fencing applied in {time.monotonic() - started:.1f} s ({len(commands)} pcs commands)", file=sys.stderr)
    return seconds, commands


def cmd_lab_node(args, lab_dir):
    """Run a command inside a node, its output and exit code passed on."""
    from infrapower.lab import Lab, LabError, cluster

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise LabError("give the command to run after --, e.g. `infrapower lab node clc -- crm_mon -1`")
    proc = cluster.run(Lab(lab_dir), args.node, argv, timeout=args.timeout, capture=False)
    return proc.returncode


def fault(lab_dir, node, kind):
    from infrapower.lab import Lab, cluster

    cluster.fault(Lab(lab_dir), node, "clear" if kind is None else kind)


def add_commands(lab_command, cmd_lab_node):
    node = lab_command("node", cmd_lab_node, "run a command inside a cluster node (lab up --cluster)")
    node.add_argument("node", help="clc, nc1 or nc2")
    node.add_argument("--timeout", type=float, default=600.0, help="seconds before the command is killed")
    node.add_argument("argv", nargs="...", help="-- COMMAND [ARG...]")
