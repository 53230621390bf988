"""The chain for people: a text tree like the spec's `upsc -P` (one line
per feed) and `upsc -Pl` (one line per link, with where it was written),
and a hand-written SVG with live states coloured."""

from xml.sax.saxutils import escape

from infrapower.chain.live import DOWN, OK, RISK, UNKNOWN
from infrapower.chain.model import MAIN, compact

ARROW = " -> "


def _tag(states, link_id):
    state = states.get(link_id)
    return f" [{state.text}]" if state is not None and state.text and link_id != MAIN else ""


def text_tree(chain, states=None, long=False):
    """Per server, each feed path to main (`upsc -P`), or each link on a
    line of its own with its details (`upsc -Pl`)."""
    states = states or {}
    lines = []
    for server in chain.servers.values():
        how = f"  ({server.how})" if long and server.how else ""
        lines.append(server.name + (f" ({server.desc})" if server.desc else "") + _tag(states, server.name) + how)
        for psu, path in chain.feeds(server.name).items():
            if not long:
                shown = compact(chain, path, keep={i for i in path if i in states and states[i].level in (DOWN, RISK)})
                lines.append("  " + ARROW.join(chain.links[i].label + _tag(states, i) for i in shown))
                continue
            for depth, link_id in enumerate(path):
                lines.append(("  " if depth == 0 else "    -> ") + _long_line(chain, link_id, states))
    return "\n".join(lines)


def _long_line(chain, link_id, states):
    link = chain.links[link_id]
    cells = [link.label + _tag(states, link_id)]
    if link.kind == "device" and link.snmp is not None:
        cells += ["SNMP PDU, no upsd", f"SNMP {link.snmp}"] + ([f"mib {link.snmp.mib}"] if link.snmp.mib else [])
        if link.desc:
            cells.append(f'"{link.desc}"')
    elif link.kind == "device":
        conf = link.conf
        driver = conf.get("driver", "") if conf is not None else ""
        cells.append(f"{driver or 'device'} on upsd {link.upsd}")
        if conf is not None and driver == "snmp-ups":
            cells.append(f"SNMP {conf.get('port', '?')}")
        if link.desc:
            cells.append(f'"{link.desc}"')
        if link.parent is None:
            cells.append("(its feed is not described)")
    elif link.kind == "outlet":
        cells.append(f"outlet {link.outlet} of {link.device}")
    elif link.kind == "psu" and link.conf is not None:  # a PSU device of ups.conf
        conf = link.conf
        cells.append(f"{conf.get('driver') or 'device'} on upsd {link.upsd}")
        if conf.get("driver") == "ipmi-psu" and conf.get("port"):
            cells.append(f"BMC {conf.get('port')}")
            if conf.get("psu"):
                cells.append(f"PSU {conf.get('psu')}")
        if link.desc:
            cells.append(f'"{link.desc}"')
        cells.append(f"power supply of {link.server}")
    elif link.kind == "psu":
        cells.append(f"power supply of {link.server}")
    if link.origin is not None and link_id != MAIN:
        cells.append(f"@ {link.origin}")
    return "  ".join(cells)


# -- SVG ---------------------------------------------------------------------

COLOURS = {  # fill, stroke
    OK: ("#d9f2d9", "#2e7d32"),
    RISK: ("#ffe6bf", "#e65100"),
    DOWN: ("#ffd6d6", "#c62828"),
    UNKNOWN: ("#eeeeee", "#757575"),
    None: ("#ffffff", "#455a64"),  # no live state read
}
SERVER_COLOURS = {"redundant": OK, "degraded": RISK, "down": DOWN}
BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN = 150, 38, 60, 14, 20


def _columns(chain):
    """Column per link: main rightmost, each link one left of its parent,
    servers left of their leftmost PSU; rows in order of first use."""
    depth = {}

    def column(link_id):
        if link_id not in depth:
            parent = chain.links[link_id].parent
            depth[link_id] = 0 if link_id == MAIN else (column(parent) + 1 if parent is not None else 1)
        return depth[link_id]

    order = []
    for server in chain.servers.values():
        order.append(server.name)
        for path in chain.feeds(server.name).values():
            order += [i for i in path if i not in order]
    for link_id in order:
        if link_id not in chain.servers:
            column(link_id)
    for server in chain.servers.values():
        depth[server.name] = max((depth[p] for p in server.psus), default=1) + 1
    return depth, order


def svg(chain, states=None, assessments=(), title="power chain"):
    """The whole chain as an SVG document (a string)."""
    states = states or {}
    depth, order = _columns(chain)
    widest = max(depth.values(), default=0)
    by_column = {}
    for link_id in order:
        by_column.setdefault(depth[link_id], []).append(link_id)
    rows = max((len(ids) for ids in by_column.values()), default=1)
    height_nodes = rows * (BOX_H + ROW_GAP)
    top = MARGIN + 30
    position = {}
    for col, ids in by_column.items():
        step = height_nodes / len(ids)
        for row, link_id in enumerate(ids):
            x = MARGIN + (widest - col) * (BOX_W + COL_GAP)
            y = top + row * step + (step - BOX_H) / 2
            position[link_id] = (x, y)
    status = {a.server: a for a in assessments}
    footer = [a.line() for a in assessments]
    width = MARGIN * 2 + (widest + 1) * BOX_W + widest * COL_GAP
    # ~7 px per character of a 12 px sans-serif line
    width = max(width, 7 * max((len(line) for line in footer), default=0) + 2 * MARGIN)
    height = top + height_nodes + MARGIN + 18 * len(footer) + 40

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 8}" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for link_id in order:
        parent = chain.links[link_id].parent if link_id not in chain.servers else None
        targets = [parent] if parent is not None else []
        if link_id in chain.servers:
            targets = chain.servers[link_id].psus
            for psu in targets:  # server -> its PSUs
                out.append(_edge(position[link_id], position[psu], states.get(psu)))
            continue
        for target in targets:
            if target in position:
                out.append(_edge(position[link_id], position[target], states.get(link_id)))
    for link_id in order:
        link = chain.links[link_id]
        state = states.get(link_id)
        if link_id in chain.servers:
            level = SERVER_COLOURS.get(status[link_id].status) if link_id in status else None
            caption = status[link_id].status if link_id in status else link.desc
        else:
            level = state.level if state is not None else None
            caption = state.text if state is not None else ""
        fill, stroke = COLOURS[level]
        x, y = position[link_id]
        out.append(
            f'<g><title>{escape(link.id)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{2 if level in (RISK, DOWN) else 1}"/>'
            f'<text x="{x + 8:.0f}" y="{y + 16:.0f}" font-weight="bold">{escape(link.label)}</text>'
            f'<text x="{x + 8:.0f}" y="{y + 31:.0f}" fill="#37474f">{escape(caption or "")}</text></g>'
        )
    y = top + height_nodes + MARGIN
    for line in footer:
        y += 18
        out.append(f'<text x="{MARGIN}" y="{y:.0f}">{escape(line)}</text>')
    y += 26
    x = MARGIN
    for level, name in ((OK, "ok"), (RISK, "at risk"), (DOWN, "down / failed"), (UNKNOWN, "unknown"), (None, "not read")):
        fill, stroke = COLOURS[level]
        out.append(f'<rect x="{x}" y="{y - 11:.0f}" width="14" height="14" fill="{fill}" stroke="{stroke}"/>')
        out.append(f'<text x="{x + 20}" y="{y:.0f}">{name}</text>')
        x += 40 + 8 * len(name)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge(child, parent, child_state):
    """A line from a link (left) to what feeds it (right); dashed when the
    link is down, so a cut is visible."""
    (cx, cy), (px, py) = child, parent
    dashed = ' stroke-dasharray="5,4"' if child_state is not None and child_state.level == DOWN else ""
    return (
        f'<line x1="{cx + BOX_W:.0f}" y1="{cy + BOX_H / 2:.0f}" x2="{px:.0f}" y2="{py + BOX_H / 2:.0f}" '
        f'stroke="#78909c" stroke-width="1.5"{dashed}/>'
    )
