"""A server's power as a node health colour.

- green: redundant: two independent healthy feeds;
- yellow: one failure from losing power (a single point of failure, one
  healthy feed left), or the chain cannot be read in full (a colour that
  moves resources needs evidence);
- red: it still runs, but on borrowed time: no live feed is healthy (its
  last feeds hang on UPSes on battery or low battery), or it has no live
  feed at all (then whatever still answers for it will not for long).

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
    assessment = analysis.assess_server(chain, server, analysis.link_states(view.states, ()))
    unread = [
        chain.links[link_id].label
        for feed in assessment.feeds
        for link_id in feed.links
        if link_id not in view.states or view.states[link_id].level == live.UNKNOWN
    ]
    return colour(assessment, unread)
