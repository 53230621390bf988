"""Single points of failure and what-if, over a chain and its link states.

A feed (one PSU's path to main) is *live* when none of its links is down,
and *healthy* when it is live and none of its links is at risk (a UPS on
battery).  For each server:

- down: no live feed;
- degraded: one failure away from losing power: the links every live feed
  passes through (its single points of failure) are not empty, or no feed
  is healthy, or only one is;
- redundant: otherwise.

`main` is never a failure point (surviving it is what UPSes are for); a
link named with `--fail` counts as down.  Without live states every link
counts as up, which leaves what the design itself gets wrong (one PSU,
two PSUs on one PDU).
"""

from dataclasses import dataclass, field

from infrapower.chain.live import DOWN, RISK, LinkState
from infrapower.chain.model import MAIN, compact

REDUNDANT, DEGRADED, NODE_DOWN = "redundant", "degraded", "down"
EXIT_REDUNDANT, EXIT_DEGRADED, EXIT_ERROR = 0, 1, 2
FAILED_BY_WHAT_IF = LinkState(DOWN, "failed", "failed (what-if)")


@dataclass
class Feed:
    psu: str
    links: list  # link ids, PSU first, main left out
    down: list = field(default_factory=list)  # its links that are down
    risks: list = field(default_factory=list)  # its links at risk

    @property
    def live(self):
        return not self.down

    @property
    def healthy(self):
        return self.live and not self.risks


@dataclass
class Assessment:
    server: str
    status: str
    feeds: list
    single_points: list  # link ids whose single failure takes the server down
    reasons: list

    def line(self):
        return f"{self.server}: {self.status.upper() if self.status != REDUNDANT else self.status}: " + "; ".join(self.reasons)


def link_states(states, failed):
    """The states with every `failed` link forced down."""
    merged = dict(states or {})
    for link_id in failed:
        merged[link_id] = FAILED_BY_WHAT_IF
    return merged


def feed_text(chain, links, states):
    """`psu2 ← pdu2:1 ← ups2 (on battery, low)`: a feed as a person reads
    it, each link that is down or at risk with its state."""
    troubled = {i for i in links if i in states and states[i].level in (DOWN, RISK)}
    parts = []
    for link_id in compact(chain, links, keep=troubled):
        text = chain.links[link_id].label
        if link_id in troubled:
            text += f" ({states[link_id].describe()})"
        parts.append(text)
    return " ← ".join(parts)


def _cause(chain, feed, states):
    """Why a dead feed is dead: the down link nearest the mains (the PSU
    reports "no input" when it is the outlet or UPS that is off)."""
    top = [link_id for link_id in reversed(feed.links) if link_id in feed.down][0]
    psu = chain.links[feed.psu].label
    state = states[top]
    if top == feed.psu:
        return f"{psu} {state.describe()}"
    return f"{psu}'s feed: {chain.links[top].label} {state.describe()}"


def assess_server(chain, server, states):
    feeds = []
    for psu, path in chain.feeds(server).items():
        links = [link_id for link_id in path if link_id != MAIN]
        feed = Feed(psu, links)
        for link_id in links:
            state = states.get(link_id)
            if state is not None and state.level == DOWN:
                feed.down.append(link_id)
            elif state is not None and state.level == RISK:
                feed.risks.append(link_id)
        feeds.append(feed)

    live = [feed for feed in feeds if feed.live]
    healthy = [feed for feed in live if feed.healthy]
    reasons = [_cause(chain, feed, states) for feed in feeds if not feed.live]
    if not live:
        return Assessment(server, NODE_DOWN, feeds, [], ["no power"] + reasons)

    single_points = [link_id for link_id in live[0].links if all(link_id in feed.links for feed in live[1:])]
    for feed in live:
        if not feed.healthy:
            risky = ", ".join(f"{chain.links[i].label} {states[i].describe()}" for i in feed.risks)
            if len(live) > 1:
                reasons.append(f"{chain.links[feed.psu].label}'s feed: {risky}")
    if len(live) == 1:
        reasons.append(f"only feed is {feed_text(chain, live[0].links, states)}")
    elif single_points:
        names = ", ".join(chain.links[i].label for i in single_points if chain.links[i].kind != "psu")
        reasons.append(f"every feed passes through {names}")
    elif not healthy:
        reasons.append("every feed is at risk")
    elif len(healthy) == 1:
        reasons.append(f"only healthy feed is {feed_text(chain, healthy[0].links, states)}")
    else:
        return Assessment(server, REDUNDANT, feeds, [], [f"{len(live)} independent feeds"])
    return Assessment(server, DEGRADED, feeds, single_points, reasons)


def assess(chain, states=None, failed=()):
    """An Assessment per server, in the servers file's order."""
    merged = link_states(states, failed)
    return [assess_server(chain, server, merged) for server in chain.servers]


def exit_code(assessments):
    return EXIT_REDUNDANT if all(a.status == REDUNDANT for a in assessments) else EXIT_DEGRADED


def what_if(chain, states, failed):
    """(assessments with `failed` links down, the servers that lose power
    because of them)."""
    before = {a.server: a.status for a in assess(chain, states)}
    after = assess(chain, states, failed)
    lost = [a.server for a in after if a.status == NODE_DOWN and before[a.server] != NODE_DOWN]
    return after, lost
