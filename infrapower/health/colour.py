"""A server's power as a node health colour.

- green: redundant: two independent healthy feeds;
- yellow: one failure from losing power (a single point of failure, one
  healthy feed left), or the chain cannot be read in full (a colour that
  moves resources needs evidence);
- red: it still runs, but on borrowed time: no live feed is healthy (its
  last feeds hang on UPSes on battery or low battery, or are about to be
  cut), or it has no live feed at all (then whatever still answers for it
  will not for long).

"About to be cut" is what NUT publishes of a countdown: a UPS (or a
upsd-served PDU) with `ups.timer.shutdown` or `ups.timer.reboot` running
(load.off.delay, shutdown.return, shutdown.reboot...), an outlet with
`outlet.N.timer.shutdown` or `.timer.reboot` running; NUT writes -1 (some
drivers 0) while none runs.  `ups.status` FSD (upsmon's forced shutdown)
is already a dead link for the PowerChain (infrapower.chain.live).

With Pacemaker's node-health-strategy=migrate-on-red, red moves every
resource off the node while it still runs; yellow and green leave them.
"""

from dataclasses import dataclass

GREEN, YELLOW, RED = "green", "yellow", "red"


@dataclass(frozen=True)
class Health:
    colour: str
    reason: str


def colour(assessment, unread=()):
    """The colour of an infrapower.chain.analysis Assessment; `unread`:
    links of the server's feeds whose state the live read could not get."""
    from infrapower.chain.analysis import DEGRADED, NODE_DOWN

    reason = "; ".join(assessment.reasons)
    live = [feed for feed in assessment.feeds if feed.live]
    if assessment.status == NODE_DOWN:
        return Health(RED, reason)
    if not any(feed.healthy for feed in live):
        return Health(RED, reason)
    if assessment.status == DEGRADED:
        return Health(YELLOW, reason)
    if unread:
        return Health(YELLOW, f"power chain not fully read: no state for {', '.join(unread)}")
    return Health(GREEN, reason)


UPS_TIMERS = ("ups.timer.shutdown", "ups.timer.reboot")
OUTLET_TIMERS = ("timer.shutdown", "timer.reboot")


def countdown(variables, names):
    """Seconds left of the soonest running countdown among `names`, or
    None (absent, idle: -1 or 0, or not a number)."""
    running = []
    for name in names:
        try:
            seconds = float(variables.get(name, ""))
        except ValueError:
            continue
        if seconds > 0:
            running.append(seconds)
    return min(running, default=None)


def about_to_be_cut(chain, view):
    """{link id: a RISK LinkState} for the links of `chain` that still
    work in the live `view` but count down to cutting their output."""
    from infrapower.chain.live import OK, RISK, LinkState, outlet_prefix

    cuts = {}
    for link_id, state in view.states.items():
        link = chain.links.get(link_id)
        if link is None or state.level != OK:
            continue
        if link.kind == "device":
            seconds = countdown(view.variables.get(link_id, {}), UPS_TIMERS)
        elif link.kind == "outlet" and link_id in view.outlet_numbers:
            prefix = f"{outlet_prefix(view.outlet_numbers[link_id])}."
            seconds = countdown(view.variables.get(link.parent, {}), [prefix + name for name in OUTLET_TIMERS])
        else:
            continue
        if seconds is not None:
            cuts[link_id] = LinkState(RISK, state.text, f"output off in {seconds:.0f} s")
    return cuts


def read(config_dir, server, timeout=3.0):
    """The Health of `server` from the chain in `config_dir`, read live;
    raises infrapower.chain.model.ChainError for a configuration that
    does not describe it."""
    from infrapower.chain import analysis, assemble, live
    from infrapower.chain.model import ChainError

    chain = assemble.load(config_dir)
    if chain.problems:
        raise ChainError(str(chain.problems[0]))
    if server not in chain.servers:
        raise ChainError(f"no server {server!r} in {config_dir} (servers: {', '.join(chain.servers) or 'none'})")
    view = live.read(chain, timeout)
    states = dict(view.states)
    states.update(about_to_be_cut(chain, view))
    assessment = analysis.assess_server(chain, server, states)
    unread = [
        chain.links[link_id].label
        for feed in assessment.feeds
        for link_id in feed.links
        if link_id not in view.states or view.states[link_id].level == live.UNKNOWN
    ]
    return colour(assessment, unread)
