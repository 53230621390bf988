"""`infrapower chain`: every node's power chain, its single points of
failure, what-if, and the fencing plan it implies (docs/powerchain.md).

Exit codes, for monitoring: 0 every server redundant, 1 some server
degraded (one failure from losing power) or down, 2 an error (a problem in
the configuration, a peer that does not answer, a refused fencing plan).
"""

import argparse
import sys

DEFAULT_CONFIG_DIR = "/etc/nut"
EXIT_ERROR = 2


def add_parser(subparsers):
    """Add `chain` to an argparse subparsers object (infrapower.cli)."""
    parser = subparsers.add_parser(
        "chain",
        help="power chains: tree, live states, SPOFs, what-if, fencing plan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _arguments(parser):
    where = parser.add_argument_group("configuration")
    where.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR,
                       help="holds ups.conf (with parent = lines) and servers.conf (default: %(default)s)")
    where.add_argument("--ups-conf", help="ups.conf elsewhere than in --config-dir")
    where.add_argument("--servers", help="the servers file elsewhere than in --config-dir (optional when ups.conf "
                                         "describes the servers as PSU devices: driver = ipmi-psu)")
    where.add_argument("--upsd", metavar="HOST[:PORT]",
                       help="the upsd serving ups.conf's devices (default: the servers file's upsd =, else localhost:3493)")
    where.add_argument("--lab", nargs="?", const="", metavar="LAB_DIR",
                       help="describe the running lab (default dir: $INFRAPOWER_LAB_DIR or ~/.infrapower-lab) "
                            "into LAB_DIR/chain and use that")
    view = parser.add_argument_group("views")
    view.add_argument("--live", action="store_true", help="read each link's state (upsd, BMCs)")
    view.add_argument("-l", "--long", action="store_true", help="one line per link, with where it is configured")
    view.add_argument("--svg", metavar="FILE", help="draw the chain as SVG into FILE")
    view.add_argument("--png", metavar="FILE", help="the same drawing as PNG (needs rsvg-convert, Debian's librsvg2-bin)")
    view.add_argument("--fail", action="append", default=[], metavar="LINK",
                      help="what-if: take LINK down (ups2, pdu1, pdu1:3, clc:psu1); several allowed")
    view.add_argument("--timeout", type=float, default=3.0, help="seconds per peer exchange (default: %(default)s)")
    fencing = parser.add_argument_group("fencing plan")
    fencing.add_argument("--plan", action="store_true", help="the outlets to cut per server and the pcs commands (reads live)")
    fencing.add_argument("--pcs-force", action="store_true",
                         help="add --force to `pcs stonith level add` (targets that are not cluster nodes)")
    fencing.add_argument("--secrets-dir", metavar="DIR", default=None,
                         help="where the nodes keep the keys the configuration gives literally: devices read them "
                              "with `cat DIR/DEVICE.OPTION` (default: /etc/fence-agents-infrapower/keys)")
    fencing.add_argument("--write-secrets", action="store_true",
                         help="write those key files (mode 0600) into --secrets-dir on this machine")
    fencing.add_argument("--health", action="store_true",
                         help="also power-aware node health: the power-health clone reading --config-dir "
                         "and node-health-strategy=migrate-on-red (docs/cluster.md)")


def run(args):
    from infrapower.chain.model import ChainError

    try:
        return _run(args)
    except ChainError as error:
        print(f"infrapower chain: {error}", file=sys.stderr)
        return EXIT_ERROR


def _config_paths(args):
    from pathlib import Path

    if args.lab is None:
        return args.config_dir
    from infrapower.chain.lab import write_config
    from infrapower.chain.model import ChainError
    from infrapower.lab import Lab, LabError, default_lab_dir

    lab = Lab(args.lab or default_lab_dir())
    try:
        return str(write_config(lab))
    except LabError as error:
        raise ChainError(str(error)) from None
    except OSError as error:
        raise ChainError(f"cannot describe the lab in {Path(lab.dir)}: {error}") from None


def _run(args):
    from infrapower.chain import analysis, assemble, model, render

    upsd = None
    if args.upsd:
        try:
            upsd = model.Upsd.parse(args.upsd)
        except ValueError as error:
            raise model.ChainError(f"--upsd {args.upsd}: {error}") from None
    config_dir = _config_paths(args)
    chain = assemble.load(config_dir, args.ups_conf, args.servers, upsd)
    errors = [str(problem) for problem in chain.problems]
    view = None
    if (args.live or args.plan) and not errors:
        from infrapower.chain import live

        view = live.read(chain, args.timeout)
        errors += [str(problem) for problem in view.problems]
    for line in errors:
        print(line, file=sys.stderr)
    if chain.problems:
        return EXIT_ERROR  # a half-built chain would mislead every view

    failed = [chain.find(name) for name in args.fail]
    if model.MAIN in failed:
        raise model.ChainError("main is not a failure point here (surviving it is what UPSes are for); fail a UPS")
    states = analysis.link_states(view.states if view else None, failed)

    if args.plan:
        from infrapower.chain import plan

        plans = plan.make_plan(chain, view, args.timeout)
        print("\n".join(plan.describe(chain, plans)))
        secrets_dir = (args.secrets_dir or plan.DEFAULT_SECRETS_DIR).rstrip("/") or "/"
        commands = plan.pcs_commands(plans, force_levels=args.pcs_force, secrets_dir=secrets_dir)
        if commands and args.health:
            from pathlib import Path

            commands += plan.health_commands(Path(config_dir).resolve())
        files = plan.secret_files(plans, secrets_dir)
        if files and args.write_secrets:
            plan.write_secret_files(files)
        if commands:
            print()
            if files:
                # The keys are never printed: say where they must be.
                state = "written" if args.write_secrets else "to create on every node (or rerun with --write-secrets)"
                print(f"# key files ({state}), mode 0600: " + " ".join(sorted(files)))
            print("\n".join(commands))
        return EXIT_ERROR if errors or any(node.refusals for node in plans) else 0

    assessments, lost = analysis.what_if(chain, view.states if view else None, failed)
    print(render.text_tree(chain, states, long=args.long))
    print()
    for assessment in assessments:
        print(assessment.line())
    if failed:
        names = ", ".join(chain.links[i].label for i in failed)
        print(f"\nif {names} fail{'s' if len(failed) == 1 else ''}: "
              f"{'losing power: ' + ', '.join(lost) if lost else 'no server loses power'}")
    if args.svg or args.png:
        title = "power chain" + (" (live)" if view else "") + (f", what if {', '.join(args.fail)} fail" if failed else "")
        drawing = render.svg(chain, states, assessments, title)
        if args.svg:
            try:
                with open(args.svg, "w") as out:
                    out.write(drawing)
            except OSError as error:
                raise model.ChainError(f"cannot write {args.svg}: {error.strerror or error}") from None
        if args.png:
            _write_png(drawing, args.png)
    return EXIT_ERROR if errors else analysis.exit_code(assessments)


def _write_png(drawing, path):
    """Rasterise with librsvg's converter rather than pulling a Python
    imaging stack into the pack."""
    import subprocess

    from infrapower.chain.model import ChainError

    try:
        result = subprocess.run(["rsvg-convert", "-o", path], input=drawing, text=True, capture_output=True, timeout=30)
    except FileNotFoundError:
        raise ChainError("--png needs rsvg-convert: apt-get install librsvg2-bin (or use --svg)") from None
    if result.returncode != 0:
        raise ChainError(f"cannot write {path}: {result.stderr.strip() or 'rsvg-convert failed'}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="infrapower chain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
