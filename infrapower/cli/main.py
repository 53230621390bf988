"""`infrapower`: the pack's command line (the lab, the OID tables)."""

import argparse
import json
import sys
import time


def _lab_dir(args):
    from infrapower.lab import default_lab_dir

    return args.dir or default_lab_dir()


def cmd_lab_up(args):
    from infrapower import lab

    started = time.monotonic()
    components = tuple(args.only.split(",")) if args.only else lab.COMPONENTS
    topology, ready = None, lab.READY_SECONDS
    if args.servers is not None:
        from infrapower.lab import bigrack

        if args.servers < 1:
            raise lab.LabError("--servers: give at least 1")
        topology, ready = bigrack.topology(args.servers), bigrack.ready_seconds(args.servers)
    running = lab.up(_lab_dir(args), topology=topology, components=components, ready_seconds=ready)
    print(f"lab up in {time.monotonic() - started:.1f} s ({running.dir})", file=sys.stderr)
    if args.servers is not None:
        print("\n".join(bigrack.summary(running)))
    else:
        print(lab.status_table(lab.status(running.dir)))
    if args.cluster:
        from infrapower.cli import lab_cluster

        lab_cluster.start(running, fencing=not args.no_fencing)


def cmd_lab_node(args):
    from infrapower.cli import lab_cluster

    return lab_cluster.cmd_lab_node(args, _lab_dir(args))


def cmd_lab_status(args):
    from infrapower import lab

    report = lab.status(_lab_dir(args))
    print(json.dumps(report, indent=1) if args.json else lab.status_table(report))


def cmd_lab_down(args):
    from infrapower import lab

    stopped = lab.down(_lab_dir(args))
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)


def cmd_lab_log(args):
    from infrapower.lab import Lab

    for event in Lab(_lab_dir(args)).rack.power_log():
        stamp = time.strftime("%H:%M:%S", time.localtime(event["t"])) + f".{int(event['t'] % 1 * 1000):03d}"
        print(f"{stamp}  {event['kind']:<6} {event['name']:<10} {event['state']}")


def cmd_lab_fault(args):
    """Inject or clear a fault; `clear` as the kind clears."""
    from infrapower.lab import Lab

    lab = Lab(_lab_dir(args))
    kind, _, value = args.kind.partition("=")
    kind = None if kind == "clear" else kind
    params = {"seconds": float(value)} if value else {}
    if args.target_type == "outlet":
        lab.rack.set_fault(args.target, kind, **params)
    elif args.target_type == "pdu":
        from infrapower.lab import pdus

        if kind == "slow":  # every request answered SECONDS late (default 50 ms)
            pdus.set_reply_delay(lab, args.target, params.get("seconds", 0.05))
        else:
            pdus.set_silent(lab, args.target, kind == "silent")
            if kind is None:
                pdus.set_reply_delay(lab, args.target, 0.0)
    elif args.target_type == "psu":
        from infrapower.lab import bmc

        server, _, psu = args.target.partition(":")
        bmc.set_psu_fault(lab, server, psu, kind)
    elif args.target_type == "bmc":
        from infrapower.lab import bmc

        bmc.set_bmc_down(lab, args.target, kind == "down")
    elif args.target_type == "nut":
        from infrapower.lab import nut

        nut.set_nut_fault(lab, args.target, kind, **params)
    elif args.target_type == "node":
        from infrapower.cli import lab_cluster

        lab_cluster.fault(lab.dir, args.target, kind)


def cmd_lab_power(args):
    """Cut or restore mains behind a UPS: it goes on battery, drains,
    then cuts its output (infrapower.lab.rack's UPS physics)."""
    from infrapower.lab import Lab

    Lab(_lab_dir(args)).rack.set_mains(args.ups, args.state == "on", runtime=args.runtime)


def cmd_tables_generate(args):
    from infrapower.tables import generate

    argv = ["--nut-source", args.nut_source]
    if args.out:
        argv += ["--out", args.out]
    return generate.main(argv + args.extra)


def build_parser():
    parser = argparse.ArgumentParser(prog="infrapower", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    lab = commands.add_parser("lab", help="the simulated rack").add_subparsers(dest="lab_command", required=True)

    def lab_command(name, func, help_text):
        sub = lab.add_parser(name, help=help_text)
        sub.add_argument("--dir", help="lab directory (default: $INFRAPOWER_LAB_DIR or ~/.infrapower-lab)")
        sub.set_defaults(func=func)
        return sub

    up = lab_command("up", cmd_lab_up, "start the rack")
    up.add_argument("--only", help="comma-separated components (pdus,bmc,nut)")
    up.add_argument("--servers", type=int, metavar="N",
                    help="a rack of N servers (two PSUs each) on as many PDUs and UPSes as needed, instead of the spec's three")
    up.add_argument("--cluster", action="store_true", help="also a 3-node Pacemaker cluster (clc, nc1, nc2) fenced by the plan")
    up.add_argument("--no-fencing", action="store_true", help="with --cluster: leave the cluster without fence devices")
    lab_command("status", cmd_lab_status, "the rack as a table").add_argument("--json", action="store_true")
    lab_command("down", cmd_lab_down, "stop the lab's processes")
    lab_command("log", cmd_lab_log, "every outlet, PSU, UPS and server power transition")
    fault = lab_command("fault", cmd_lab_fault, "inject or clear a fault")
    fault.add_argument("target_type", choices=["outlet", "pdu", "psu", "bmc", "nut", "node"])
    fault.add_argument("target", help="pdu1:3, pdu1, clc:psu1, clc, tpdu ...")
    fault.add_argument(
        "kind",
        help="outlet: stuck_on, stuck_off, slow=SECONDS, silent; pdu: silent, slow=SECONDS (per request); psu: failed, absent; "
        "bmc: down; nut: tracking_failed, stale, gone, slow=SECONDS ...; node: crash, hang, isolate; `clear` clears",
    )
    from infrapower.cli import lab_cluster

    lab_cluster.add_commands(lab_command, cmd_lab_node)
    power = lab_command("power", cmd_lab_power, "cut or restore the mains behind a UPS")
    power.add_argument("ups")
    power.add_argument("state", choices=["on", "off"])
    power.add_argument("--runtime", type=float, help="seconds a full battery lasts (default 60)")

    tables = commands.add_parser("tables", help="fence_snmp_pdu's OID tables").add_subparsers(
        dest="tables_command", required=True
    )
    generate = tables.add_parser("generate", help="generate the tables from a NUT source tree")
    generate.add_argument("--nut-source", required=True, help="a checkout of networkupstools/nut")
    generate.add_argument("--out", metavar="TABLEDIR", help="the table directory to write, e.g. "
                          "agents/fence_snmp_pdu/tables/nut-master (default: the whole document on standard output)")
    generate.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    generate.set_defaults(func=cmd_tables_generate)

    from infrapower.cli import chain as chain_cli, psu as psu_cli, publish as publish_cli
    from infrapower.nutconf import cli as config_cli
    from infrapower.scan import cli as scan_cli

    psu_cli.add_parser(commands)
    chain_cli.add_parser(commands)
    scan_cli.add_parser(commands)
    config_cli.add_parser(commands)
    publish_cli.add_parser(commands)
    return parser


# The lab's own environment (`make install`): Debian's Python, which runs
# the packaged `infrapower`, has no snmpsim to simulate the PDUs with.
LAB_ENVIRONMENT_PYTHON = "/usr/lib/fence-agents-infrapower/lab/bin/python"


def _run_lab_in_its_environment(argv):
    """`infrapower lab ...` from the Debian package re-runs itself in the
    lab's environment (unless INFRAPOWER_LAB_PYTHON names another)."""
    import importlib.util
    import os

    if argv[:1] != ["lab"] or os.environ.get("INFRAPOWER_LAB_PYTHON") or importlib.util.find_spec("snmpsim"):
        return
    if os.access(LAB_ENVIRONMENT_PYTHON, os.X_OK):
        os.execv(LAB_ENVIRONMENT_PYTHON, [LAB_ENVIRONMENT_PYTHON, "-m", "infrapower.cli.main", *argv])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    _run_lab_in_its_environment(argv)
    if argv[:1] == ["scan"]:  # its start-up is part of its measured speed: the other commands' imports stay out
        from infrapower.scan import cli as scan_cli

        return scan_cli.main(argv[1:])
    from infrapower.lab.core import LabError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (LabError, FileNotFoundError, KeyError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) else exc
        print(f"infrapower: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
