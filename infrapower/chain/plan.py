"""The fencing plan: for each server, every outlet that must be off for it
to be off, and the `pcs` commands that make Pacemaker switch them.

Each feed (PSU path to main) is cut at the switchable link nearest the
PSU, provided the cut feeds nothing but this server (cutting a UPS that
also feeds another server is no fencing plan).  A link is switchable

- through NUT when fence_nut could switch it: upsd offers the outlet's
  instant commands, or a writable status NUT can actually write
  (infrapower.nut.outlets decides, the same code fence_nut runs);
- over SNMP when ups.conf serves its device with snmp-ups (`port` is
  the PDU's address), or the servers file declares it as an SNMP PDU
  (`snmp =`, `community =`, `mib =`), for fence_snmp_pdu.

One server, one of:
- every cut through NUT on one upsd: one fence_nut device whose plugs are
  all the server's outlets (fence_nut switches them all off, then checks
  all are off, before it reports success);
- otherwise one device per upsd (fence_nut) or per outlet
  (fence_snmp_pdu), and a `pcs stonith level` holding them all, so
  Pacemaker fences them together.
A server with a feed that has no switchable link gets no commands, and
the reason: a plan that leaves a feed on would not fence it.
"""

import shlex
from dataclasses import dataclass, field

from infrapower.chain.live import outlet_plug
from infrapower.chain.model import MAIN, split_host_port
from infrapower.chain.servers import FENCE_NUT_KEYS
from infrapower.chain.snmpconf import fence_options
from infrapower.ports import SNMP_PORT

NUT_AGENT, SNMP_AGENT = "fence_nut", "fence_snmp_pdu"


@dataclass
class Cut:
    psu: str
    link: str  # outlet (or whole-load device) link id
    plug_nut: object = None  # "pdu2:1" when fence_nut can switch it
    snmp: object = None  # fence_snmp_pdu options when it can
    agent: str = ""  # the agent the plan switches it with


@dataclass
class FenceDevice:
    name: str
    agent: str
    options: dict


@dataclass
class NodePlan:
    server: str
    cuts: list
    refusals: list
    devices: list = field(default_factory=list)
    # fence_nut plugs of the server's PSU devices (ipmi-psu: the chassis
    # through the BMC): mentioned, never planned alone, as they leave the
    # feeds on
    psu_plugs: list = field(default_factory=list)

    @property
    def uses_level(self):
        return len(self.devices) > 1


class _Switchability:
    """What each upsd says about switching, asked once per device."""

    def __init__(self, chain, view, timeout):
        self.chain, self.view, self.timeout = chain, view, timeout
        self._outlets = {}  # upsd -> NutOutlets, or the error text
        self._clients = []

    def close(self):
        for client in self._clients:
            client.close()

    def _nut(self, upsd):
        if upsd not in self._outlets:
            from infrapower.nut.client import NutClient, NutError, NutSettings
            from infrapower.nut.outlets import NutOutlets

            try:
                client = NutClient(NutSettings(upsd.host, upsd.port, self.timeout)).connect()
            except NutError as error:
                self._outlets[upsd] = f"upsd at {upsd}: {error}"
            else:
                self._clients.append(client)
                self._outlets[upsd] = NutOutlets(client, None)
        return self._outlets[upsd]

    def nut_plug(self, link):
        """(plug for fence_nut, None) or (None, why not)."""
        from infrapower.fence import FenceError

        if link.upsd is None:
            device = self.chain.links[link.parent] if link.kind == "outlet" else link
            return None, f"no upsd serves {device.label} (an SNMP PDU of the servers file)"
        outlets = self._nut(link.upsd)
        if isinstance(outlets, str):
            return None, outlets
        if link.kind == "outlet":
            number = self.view.outlet_numbers.get(link.id)
            if number is None:
                return None, f"{link.label}: not read from upsd"
            plug = f"{link.device}:{outlet_plug(number)}"
        else:
            plug = f"{link.device}:"  # the device's whole load (a UPS)
        try:
            outlets.check(plug, False)
            outlets.check(plug, True)
        except FenceError as error:
            return None, str(error)
        return plug.rstrip(":") if link.kind != "outlet" else plug, None

    def snmp_options(self, link):
        """(fence_snmp_pdu options, None) or (None, why not)."""
        device = self.chain.links[link.parent] if link.kind == "outlet" else link
        conf = device.conf
        if link.kind != "outlet":
            return None, f"{link.label}: a whole device is not switched over SNMP"
        if device.snmp is not None:
            return self._snmp_pdu_options(link, device.snmp)
        if conf is None or conf.get("driver") != "snmp-ups":
            return None, f"{device.label} is not served by snmp-ups here, so its SNMP address is unknown"
        number = self.view.outlet_numbers.get(link.id)
        if number is None:
            return None, f"{link.label}: not read from upsd"
        # snmp-ups's own settings (v1/v2c community, v3 user and keys);
        # the servers file's snmp_community replaces a read-only one.
        options, problems = fence_options(conf, "public")
        if problems:
            return None, f"{device.label}: " + "; ".join(problem for _key, problem in problems)
        if "community" in options and self.chain.settings.get("snmp_community"):
            options["community"] = self.chain.settings.get("snmp_community")
        try:
            host, port = split_host_port(conf.get("port", ""), SNMP_PORT)
        except ValueError as error:
            return None, f"{device.label}: port: {error}"
        return {"ip": host, "ipport": str(port), **options, "plug": outlet_plug(number)}, None

    def _snmp_pdu_options(self, link, snmp):
        """fence_snmp_pdu's options for an outlet of an SNMP PDU the
        servers file declares: its own settings, the plug read live."""
        plug = self.view.snmp_plugs.get(link.id)
        if plug is None:
            return None, f"{link.label}: not read over SNMP"
        options = {"ip": snmp.host, "ipport": str(snmp.port), **dict(snmp.options)}
        if snmp.mib:
            options["mib"] = snmp.mib
        options["plug"] = plug
        return options, None


def _exclusive(chain, link_id, server):
    return all(chain.links[psu].server == server for psu in chain.psus_below(link_id))


def _cut_feed(chain, server, psu, path, switch):
    """The Cut for one feed, or (None, reason)."""
    why_not = []
    for link_id in path[1:]:
        link = chain.links[link_id]
        if link_id == MAIN or link.kind not in ("outlet", "device"):
            continue
        if not _exclusive(chain, link_id, server):
            others = sorted({chain.links[p].server for p in chain.psus_below(link_id)} - {server})
            why_not.append(f"cutting {link.label} would also cut {', '.join(others)}")
            break
        cut = Cut(psu, link_id)
        cut.plug_nut, nut_why = switch.nut_plug(link)
        cut.snmp, snmp_why = switch.snmp_options(link)
        if cut.plug_nut or cut.snmp:
            return cut, None
        why_not.append(f"{nut_why}; {snmp_why}" if link.kind == "outlet" else nut_why)
    feed = " -> ".join(chain.links[i].label for i in path)
    return None, f"{chain.links[psu].label}'s feed ({feed}) has no switchable link: " + "; ".join(why_not)


def _fence_nut_device(chain, name, server, upsd, plugs):
    # Another upsd's `[@host:port]` section may name its own fencing user.
    own = chain.upsd_settings.get(upsd)
    settings = own if own is not None and any(own.entry(key) for key in FENCE_NUT_KEYS) else chain.settings
    options = {"ip": upsd.host, "ipport": str(upsd.port)}
    if settings.get("fence_nut_username"):
        options["username"] = settings.get("fence_nut_username")
    if settings.get("fence_nut_password_script"):
        options["password_script"] = settings.get("fence_nut_password_script")
    elif settings.get("fence_nut_password"):
        options["password"] = settings.get("fence_nut_password")
    options["plug"] = ",".join(plugs)
    options["pcmk_host_list"] = server
    return FenceDevice(name, NUT_AGENT, options)


def plan_server(chain, server, switch):
    cuts, refusals = [], []
    for psu, path in chain.feeds(server).items():
        cut, reason = _cut_feed(chain, server, psu, path, switch)
        if cut is None:
            refusals.append(reason)
        else:
            cuts.append(cut)
    node = NodePlan(server, cuts, refusals, psu_plugs=_psu_device_plugs(chain, server, switch))
    if refusals:
        return node
    upsds = {chain.links[c.link].upsd for c in cuts}
    if all(c.plug_nut for c in cuts) and len(upsds) == 1:
        for cut in cuts:
            cut.agent = NUT_AGENT
        node.devices.append(_fence_nut_device(chain, f"chain-{server}", server, upsds.pop(), [c.plug_nut for c in cuts]))
        return node
    by_upsd = {}
    for cut in cuts:
        cut.agent = NUT_AGENT if cut.plug_nut else SNMP_AGENT
        if cut.plug_nut:
            by_upsd.setdefault(chain.links[cut.link].upsd, []).append(cut.plug_nut)
        else:
            link = chain.links[cut.link]
            options = dict(cut.snmp, pcmk_host_list=server)
            plug = cut.snmp["plug"].replace(":", ".")  # a daisy-chained unit:outlet
            node.devices.append(FenceDevice(f"chain-{server}-{link.device}-{plug}", SNMP_AGENT, options))
    for index, (upsd, plugs) in enumerate(by_upsd.items()):
        suffix = "nut" if len(by_upsd) == 1 else f"nut{index + 1}"
        node.devices.append(_fence_nut_device(chain, f"chain-{server}-{suffix}", server, upsd, plugs))
    return node


def _psu_device_plugs(chain, server, switch):
    """The server's PSU devices fence_nut could switch (a device without
    outlets stands for its whole load: ipmi-psu switches the chassis)."""
    plugs = []
    for psu in chain.servers[server].psus:
        link = chain.links[psu]
        if link.conf is not None and link.upsd is not None:
            plug, _why = switch.nut_plug(link)
            if plug:
                plugs.append(plug)
    return plugs


def make_plan(chain, view, timeout=3.0):
    """A NodePlan per server, from the chain and its live view."""
    switch = _Switchability(chain, view, timeout)
    try:
        return [plan_server(chain, server, switch) for server in chain.servers]
    finally:
        switch.close()


# Options that hold a key, and the *_script option that fence agents take
# instead: a plan never prints a key (it would reach the terminal, pcs's
# argv, `ps` and the CIB); it points the device at a file holding it.
SECRET_OPTIONS = {"password": "password_script", "snmp_priv_passwd": "snmp_priv_passwd_script"}
DEFAULT_SECRETS_DIR = "/etc/fence-agents-infrapower/keys"


def key_file(secrets_dir, device, option):
    return f"{secrets_dir}/{device.name}.{option}"


def secret_files(plans, secrets_dir=DEFAULT_SECRETS_DIR):
    """{path: key} for every literal key the plan's devices carry: what
    must be on every cluster node (mode 0600, root's) for the plan's
    commands to work."""
    files = {}
    for node in plans:
        for device in [] if node.refusals else node.devices:
            for option in SECRET_OPTIONS:
                if device.options.get(option):
                    files[key_file(secrets_dir, device, option)] = device.options[option]
    return files


def write_secret_files(files):
    """Each key into its file, created 0600 (never readable by others,
    not even for an instant)."""
    import os

    for path, key in files.items():
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key + "\n")


def pcs_commands(plans, force_levels=False, secrets_dir=DEFAULT_SECRETS_DIR):
    """Ready-to-run shell lines.  `force_levels` adds --force to `stonith
    level add`, which pcs needs when the target is not a cluster node.
    A literal key becomes `OPTION_script=cat FILE` (see secret_files)."""
    lines = []
    for node in plans:
        if node.refusals:
            continue
        for device in node.devices:
            words = ["pcs", "stonith", "create", device.name, device.agent]
            for key, value in device.options.items():
                if key in SECRET_OPTIONS and value:
                    key, value = SECRET_OPTIONS[key], f"cat {shlex.quote(key_file(secrets_dir, device, key))}"
                words.append(f"{key}={value}")
            lines.append(" ".join(shlex.quote(w) for w in words))
        if node.uses_level:
            # pcs 0.11 takes the level's devices space-separated (commas
            # are deprecated there); Pacemaker fences all of them.
            words = ["pcs", "stonith", "level", "add", "1", node.server, *(d.name for d in node.devices)]
            if force_levels:
                words.append("--force")
            lines.append(" ".join(shlex.quote(w) for w in words))
    return lines


def health_commands(config_dir):
    """Power-aware node health (docs/cluster.md): the pack's OCF agent as a
    clone on every node, reading its own power chain from `config_dir`
    (the same files on every node), and resources leaving a node that
    turns red while it still runs.  The agent itself must stay on a red
    node (allow-unhealthy-nodes): moved away, it would take the colour with
    it, and the resources would come back."""
    return [
        "pcs resource create power-health ocf:infrapower:power-health "
        + shlex.quote(f"config_dir={config_dir}")
        + " meta allow-unhealthy-nodes=true clone allow-unhealthy-nodes=true",
        "pcs property set node-health-strategy=migrate-on-red",
    ]


def describe(chain, plans):
    """The plan as a person reads it: per server, what goes off, how."""
    lines = []
    for node in plans:
        if node.refusals:
            lines.append(f"{node.server}: REFUSED: " + "; ".join(node.refusals))
        else:
            outlets = ", ".join(f"{chain.links[c.link].label} ({chain.links[c.psu].label}, {c.agent})" for c in node.cuts)
            how = "a pcs stonith level of " if node.uses_level else ""
            lines.append(f"{node.server}: off: {outlets}; {how}{', '.join(d.name for d in node.devices)}")
        if node.psu_plugs:
            plugs = " or ".join(f"plug={plug}" for plug in node.psu_plugs)
            lines.append(f"  {node.server}: fence_nut {plugs} (its PSU device) would switch its chassis through the "
                         "BMC, but leave its feeds on: not planned")
    return lines
