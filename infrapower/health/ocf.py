"""The OCF resource agent power-health (OCF 1.1), run by pacemaker-execd
as a clone on every node: each monitor reads the node's own power chain
and sets its node health attribute (default `#health-power`) to green,
yellow or red (infrapower.health.colour).  The resource itself never
fails for what it sees: the colour is its answer, the cluster's
node-health-strategy decides what to do with it.
"""

import os
import subprocess
import sys
from pathlib import Path

OCF_SUCCESS, OCF_ERR_GENERIC, OCF_ERR_ARGS, OCF_ERR_UNIMPLEMENTED = 0, 1, 2, 3
OCF_ERR_INSTALLED, OCF_ERR_CONFIGURED, OCF_NOT_RUNNING = 5, 6, 7

DEFAULT_ATTRIBUTE = "#health-power"
DEFAULT_TIMEOUT = 3.0
DEFAULT_READ_BUDGET = 15.0  # seconds for the chain read when Pacemaker gives no op timeout (monitor's: 30 s)

METADATA = """<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="power-health" version="1.0">
<version>1.1</version>
<longdesc lang="en">
Reads this node's power chain live (upsd, SNMP PDUs, its BMC: the
PowerChain of fence-agents-infrapower, configured by ups.conf with parent =
lines and servers.conf) and sets the node health attribute to green
(redundant), yellow (one failure from losing power, or the chain not fully
read) or red (its last live feeds are on battery or about to be cut, or it
has none). Run it
as a clone; with node-health-strategy=migrate-on-red, resources leave a red
node while it still runs.
</longdesc>
<shortdesc lang="en">Node health from the node's power chain</shortdesc>
<parameters>
<parameter name="config_dir" required="1">
<longdesc lang="en">Directory holding ups.conf (with parent = lines) and servers.conf.</longdesc>
<shortdesc lang="en">PowerChain configuration directory</shortdesc>
<content type="string" default="/etc/nut"/>
</parameter>
<parameter name="server">
<longdesc lang="en">This node's name in servers.conf (default: the node's name).</longdesc>
<shortdesc lang="en">Server name</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="attribute">
<longdesc lang="en">Node attribute to set; Pacemaker's node health attributes start with #health.</longdesc>
<shortdesc lang="en">Health attribute</shortdesc>
<content type="string" default="#health-power"/>
</parameter>
<parameter name="timeout">
<longdesc lang="en">Seconds per peer exchange while reading the chain.</longdesc>
<shortdesc lang="en">Read timeout</shortdesc>
<content type="integer" default="3"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="30s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="30s" interval="10s" depth="0"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"""


class Settings:
    def __init__(self, env):
        self.config_dir = env.get("OCF_RESKEY_config_dir", "/etc/nut")
        self.server = env.get("OCF_RESKEY_server") or env.get("OCF_RESKEY_CRM_meta_on_node") or _node_name()
        self.attribute = env.get("OCF_RESKEY_attribute") or DEFAULT_ATTRIBUTE
        self.timeout_text = env.get("OCF_RESKEY_timeout") or str(DEFAULT_TIMEOUT)
        # Half the op's timeout (Pacemaker passes it in ms) for the read:
        # the rest for attrd_updater and the start-up.
        try:
            self.read_budget = max(float(env.get("OCF_RESKEY_CRM_meta_timeout", "")) / 2000.0, 0.001)
        except ValueError:
            self.read_budget = DEFAULT_READ_BUDGET
        instance = env.get("OCF_RESOURCE_INSTANCE", "power-health").replace(":", "-").replace("/", "-")
        self.state_file = Path(env.get("HA_RSCTMP", "/run/resource-agents")) / f"power-health-{instance}.state"

    def problem(self):
        """What is wrong with the parameters, or None."""
        try:
            if not float(self.timeout_text) > 0:
                raise ValueError
        except ValueError:
            return f"timeout={self.timeout_text}: give a number of seconds above 0"
        if not self.attribute:
            return "attribute is empty"
        for name in ("ups.conf", "servers.conf"):
            if not (Path(self.config_dir) / name).is_file():
                return f"config_dir={self.config_dir}: no {name} there"
        return None


def _node_name():
    try:
        return subprocess.run(["crm_node", "-n"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _log(text):
    print(f"power-health: {text}", file=sys.stderr)


def set_attribute(settings, value):
    argv = ["attrd_updater", "-n", settings.attribute]
    argv += ["-U", value] if value is not None else ["-D"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as error:
        _log(f"attrd_updater: {error}")
        return False
    if proc.returncode != 0:
        _log(f"attrd_updater: {proc.stderr.strip()}")
    return proc.returncode == 0


def _read_within(settings, seconds):
    """The node's Health, or yellow if the read fails or has not ended
    within `seconds` (the monitor must set a colour before Pacemaker's
    op timeout kills it; the unfinished read is left to die with the
    process: ocf/power-health ends with os._exit)."""
    import threading

    from infrapower.errors import InfrapowerError
    from infrapower.health import colour

    result = {}

    def read():
        try:
            result["health"] = colour.read(settings.config_dir, settings.server, float(settings.timeout_text))
        except InfrapowerError as error:
            result["health"] = colour.Health(colour.YELLOW, f"power chain not read: {error}")
        except Exception as error:  # an answer no reader expected: no evidence, so never green
            result["health"] = colour.Health(colour.YELLOW, f"power chain not read: {type(error).__name__}: {error}")

    reader = threading.Thread(target=read, name="power-chain-read", daemon=True)
    reader.start()
    reader.join(seconds)
    return result.get("health") or colour.Health(colour.YELLOW, f"power chain not read within {seconds:g} s")


def monitor(settings, update=True):
    if not settings.state_file.exists():
        return OCF_NOT_RUNNING
    health = _read_within(settings, settings.read_budget)
    previous = settings.state_file.read_text().strip()
    if health.colour != previous:
        _log(f"{settings.server}: {health.colour}: {health.reason}")
    if update and set_attribute(settings, health.colour):
        settings.state_file.write_text(health.colour)
    return OCF_SUCCESS


def validate(settings):
    problem = settings.problem()
    if problem:
        _log(problem)
        return OCF_ERR_CONFIGURED
    if not settings.server:
        _log("no server name: set server= (the node's name could not be found)")
        return OCF_ERR_CONFIGURED
    from infrapower.chain import assemble
    from infrapower.errors import InfrapowerError

    try:
        chain = assemble.load(settings.config_dir)
    except InfrapowerError as error:
        _log(str(error))
        return OCF_ERR_CONFIGURED
    if chain.problems:
        _log(str(chain.problems[0]))
        return OCF_ERR_CONFIGURED
    if settings.server not in chain.servers:
        _log(f"no server {settings.server!r} in {settings.config_dir} (servers: {', '.join(chain.servers) or 'none'})")
        return OCF_ERR_CONFIGURED
    return OCF_SUCCESS


def start(settings):
    code = validate(settings)
    if code != OCF_SUCCESS:
        return code
    settings.state_file.parent.mkdir(parents=True, exist_ok=True)
    settings.state_file.write_text("started")
    return monitor(settings)


def stop(settings):
    if settings.state_file.exists():
        set_attribute(settings, None)
        settings.state_file.unlink(missing_ok=True)
    return OCF_SUCCESS


def main(argv=None, env=None):
    """The OCF exit code of one action; whatever goes wrong ends as one
    logged line and OCF_ERR_GENERIC, never a traceback."""
    try:
        return _main(argv, env)
    except Exception as error:
        _log(f"{type(error).__name__}: {error}")
        return OCF_ERR_GENERIC


def _main(argv, env):
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    action = argv[1] if len(argv) > 1 else ""
    if action in ("meta-data", "metadata"):
        print(METADATA, end="")
        return OCF_SUCCESS
    settings = Settings(env)
    actions = {"start": start, "stop": stop, "monitor": monitor, "status": monitor, "validate-all": validate}
    if action not in actions:
        _log(f"unknown action {action!r} (actions: {', '.join(actions)}, meta-data)")
        return OCF_ERR_UNIMPLEMENTED
    if action != "stop":
        problem = settings.problem()
        if problem and action in ("monitor", "status") and not settings.state_file.exists():
            return OCF_NOT_RUNNING  # a probe of a misconfigured, stopped resource
        if problem:
            _log(problem)
            return OCF_ERR_CONFIGURED
    return actions[action](settings)
