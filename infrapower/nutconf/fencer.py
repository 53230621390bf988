"""The instcmds a fence_nut user needs (`infrapower config add-fencer`):
for outlets given by number, or for the PowerChain's fencing plan
(`--from-plan`: every outlet the plan cuts through the upsd whose
upsd.users is being written), and nothing else.

upsd's grants are per user, not per device (an `instcmds` line allows the
command on every device of that upsd), so the union of the plan's
commands is what one fencing user needs.
"""

from dataclasses import dataclass, field

# What fence_nut sends (infrapower.nut.outlets): an outlet's off and on, a
# whole device's load.off and load.on.  `.cycle` only when asked: the agent
# never sends it (it verifies off, then on).
OUTLET_COMMANDS = ("load.off", "load.on")
WHOLE_LOAD_COMMANDS = ("load.off", "load.on")


@dataclass
class FencerGrant:
    """What a fencing user needs on one upsd, and what the plan left out."""

    commands: list = field(default_factory=list)  # instcmds, in outlet order
    plugs: list = field(default_factory=list)  # the plan's DEVICE:OUTLET plugs on this upsd
    elsewhere: list = field(default_factory=list)  # "PLUG (upsd HOST:PORT)" cut through another upsd
    refused: list = field(default_factory=list)  # servers the plan could not fence: the reasons


def fencer_commands(outlets=(), cycle=False, whole_load=False):
    """The instcmds for outlets (a number: outlet.N.load.off/on; a (unit,
    number) of a daisy chain: device.U.outlet.N.load.off/on; .cycle when
    asked) and, with `whole_load` or no outlets, a whole device's
    load.off/on."""
    suffixes = OUTLET_COMMANDS + (("load.cycle",) if cycle else ())
    whole = list(WHOLE_LOAD_COMMANDS) if whole_load or not outlets else []
    return whole + [f"{_outlet_prefix(outlet)}.{suffix}" for outlet in outlets for suffix in suffixes]


def _outlet_prefix(outlet):
    if isinstance(outlet, tuple):
        return f"device.{outlet[0]}.outlet.{outlet[1]}"
    return f"outlet.{outlet}"


def commands_for(plugs, cycle=False):
    """The instcmds for fence_nut plugs: DEVICE:N → outlet N,
    DEVICE:U:N → outlet N of daisy-chained unit U, a bare DEVICE (a
    whole-load device) → load.off/on; each once, in outlet order."""
    outlets, whole = set(), False
    for plug in plugs:
        parts = plug.split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            outlets.add((int(parts[1]), int(parts[2])))
        elif len(parts) == 2 and parts[1].isdigit():
            outlets.add(int(parts[1]))
        else:
            whole = True
    ordered = sorted(outlets, key=lambda o: (1, *o) if isinstance(o, tuple) else (0, o, 0))
    return fencer_commands(ordered, cycle, whole) if outlets or whole else []


def plan_grant(chain, plans, cycle=False):
    """A FencerGrant for the main upsd of `chain` (the one reading its
    ups.conf) from `plans` (infrapower.chain.plan.make_plan)."""
    from infrapower.chain.plan import NUT_AGENT

    grant = FencerGrant()
    for node in plans:
        grant.refused += [f"{node.server}: {reason}" for reason in node.refusals]
        for cut in node.cuts:
            if cut.agent != NUT_AGENT or not cut.plug_nut:
                continue
            upsd = chain.links[cut.link].upsd
            if upsd == chain.upsd:
                grant.plugs.append(cut.plug_nut)
            else:
                grant.elsewhere.append(f"{cut.plug_nut} (upsd {upsd})")
    grant.commands = commands_for(grant.plugs, cycle)
    return grant


def read_plan(config_dir, ups_conf=None, servers=None, upsd=None, timeout=3.0):
    """(chain, plans, problems): the PowerChain of `config_dir` read live,
    as `infrapower chain --plan` reads it."""
    from infrapower.chain import assemble, live, plan

    chain = assemble.load(config_dir, ups_conf, servers, upsd)
    problems = [str(problem) for problem in chain.problems]
    if problems:
        return chain, [], problems
    view = live.read(chain, timeout)
    problems += [str(problem) for problem in view.problems]
    return chain, plan.make_plan(chain, view, timeout), problems
