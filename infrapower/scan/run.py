"""The scan itself, each probe bounded by the timeout.  Two rounds:
presence (an SNMP GET of sysObjectID per credential and ASF pings, swept
over one UDP socket (infrapower.scan.sweep); SNMPv3 and upsd's LIST UPS on
a bounded thread pool meanwhile), then details only for what answered,
so a range with nothing on it ends in about one timeout."""

import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from infrapower.scan.targets import address

log = logging.getLogger(__name__)

BUSES = ("snmp", "nut", "ipmi")


@dataclass(frozen=True)
class ScanPlan:
    hosts: list
    buses: tuple = BUSES
    snmp_ports: tuple = (161,)
    nut_ports: tuple = (3493,)
    ipmi_ports: tuple = (623,)
    credentials: tuple = ()  # infrapower.scan.snmp.Credential, in the order given
    ipmi_user: str = None
    ipmi_password: str = field(default=None, repr=False)
    timeout: float = 1.0
    threads: int = 64


def _warm_imports(buses):
    """Import in this thread what the probes import in theirs: dozens of
    threads importing pysnmp at once would each wait on the import lock
    and spend their timeout there."""
    if "snmp" in buses:
        import infrapower.snmp.pdu  # noqa: F401
        import infrapower.snmp.session  # noqa: F401
        from pysnmp.proto import api  # noqa: F401
    if "nut" in buses:
        import infrapower.nut.client  # noqa: F401
    if "ipmi" in buses:
        import infrapower.ipmi.chassis  # noqa: F401
        import infrapower.ipmi.psu  # noqa: F401


def _sort_key(result):
    try:
        host = (0, int(ipaddress.ip_address(result["host"])))
    except ValueError:
        host = (1, result["host"])
    return BUSES.index(result["kind"]), host, result["port"]


class _Pool:
    """A thread pool that counts its work for a progress line."""

    def __init__(self, threads, progress):
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scan")
        self.progress = progress
        self.total = self.done = 0

    def submit(self, jobs):
        """[(key, function, args)] -> futures, running."""
        self.total += len(jobs)
        return {self.executor.submit(function, *args): key for key, function, args in jobs}

    def collect(self, futures):
        """{key: result}; a probe that raises is a bug: its one line is
        kept, the traceback goes to debug."""
        results = {}
        for future in as_completed(futures):
            key = futures[future]
            try:
                results[key] = future.result()
            except Exception as error:  # one host must not end the scan
                log.debug("probe %s failed", key, exc_info=True)
                results[key] = {"error": f"{type(error).__name__}: {error}"}
            self.count(1)
        return results

    def count(self, done, total=0):
        self.total += total
        self.done += done
        if self.progress:
            self.progress(self.done, self.total)


def scan(plan, progress=None):
    """Everything found, as dicts (see infrapower.scan.output), sorted by
    kind, address and port.  Read-only: no SET, no power command."""
    from infrapower.scan import ipmi, nut, snmp

    _warm_imports(plan.buses)
    document = names = None
    if "snmp" in plan.buses:
        from infrapower import tables

        document = tables.load()
        names = snmp.conf_names(document)
    pool = _Pool(max(1, plan.threads), progress)
    jobs, snmp_sweep, ipmi_sweep = [], {}, {}
    for host in plan.hosts:
        if "snmp" in plan.buses:
            for port in plan.snmp_ports:
                for index, credential in enumerate(plan.credentials):
                    key = ("snmp", host, port, index)
                    if credential.usm:  # v3 discovery and keys: the session's own code, one thread each
                        jobs.append((key, snmp.ping, (host, port, credential, plan.timeout)))
                    else:
                        snmp_sweep[key] = (host, port, credential)
        if "nut" in plan.buses:
            jobs += [(("nut", host, port), nut.probe, (host, port, plan.timeout)) for port in plan.nut_ports]
        if "ipmi" in plan.buses:
            ipmi_sweep.update({("ipmi", host, port): (host, port) for port in plan.ipmi_ports})
    early = {}  # details started within the presence round: (kind, host, port) -> (credential index, future)

    def on_answer(key, outcome):
        """Details start as soon as a host answers the credential that
        would be chosen anyway (the first given), or a BMC its ping."""
        kind, host, port = key[:3]
        if kind == "snmp" and key[3] == 0 and outcome[0] == "ok":
            early[key[:3]] = (0, pool.executor.submit(snmp.details, host, port, plan.credentials[0], plan.timeout,
                                                      document, names))
        elif kind == "ipmi" and plan.ipmi_user is not None and "error" not in outcome:
            early[key[:3]] = (None, pool.executor.submit(ipmi.login, host, port, plan.ipmi_user,
                                                         plan.ipmi_password or "", plan.timeout))

    try:
        futures = pool.submit(jobs)
        pool.count(0, len(snmp_sweep) + len(ipmi_sweep))
        first = {}
        if snmp_sweep or ipmi_sweep:
            from infrapower.scan import sweep

            first.update(sweep.presence(snmp_sweep, ipmi_sweep, plan.timeout, on_answer))
            pool.count(len(snmp_sweep) + len(ipmi_sweep))
        first.update(pool.collect(futures))
        first.update({key: (None, None) for key in snmp_sweep if key not in first})
        first.update({key: None for key in ipmi_sweep if key not in first})
        results, second = [], []
        snmp_found = {}
        for key, outcome in first.items():
            kind, host, port = key[:3]
            base = {"kind": kind, "address": address(host, port), "host": host, "port": port}
            if kind == "snmp":
                snmp_found.setdefault((host, port), {})[key[3]] = outcome
            elif outcome is None:
                continue
            elif kind == "nut":
                results.append({**base, **outcome})
            elif "error" in outcome:
                results.append({**base, **outcome})
            else:
                found = {**base, "asf": True, **outcome}
                results.append(found)
                if plan.ipmi_user is not None:
                    second.append((("ipmi", host, port), None, ipmi.login,
                                   (host, port, plan.ipmi_user, plan.ipmi_password or "", plan.timeout)))
        for (host, port), outcomes in snmp_found.items():
            found = _snmp_result(host, port, plan.credentials, outcomes)
            if found is None:
                continue
            results.append(found)
            if "error" not in found:
                index = found.pop("_credential")
                second.append((("snmp", host, port), index, snmp.details,
                               (host, port, plan.credentials[index], plan.timeout, document, names)))
        pending = {}
        for key, index, function, args in second:
            started = early.get(key)
            future = started[1] if started and started[0] == index else pool.executor.submit(function, *args)
            pending[future] = key
        pool.count(0, len(pending))
        for key, outcome in pool.collect(pending).items():
            kind, host, port = key
            target = next(r for r in results if r["kind"] == kind and r["host"] == host and r["port"] == port)
            if kind == "ipmi" and "error" in outcome:
                target["login_error"] = outcome["error"]
            elif "error" in outcome and kind == "snmp":
                target["note"] = outcome["error"]
            else:
                target.update(outcome)
    finally:
        pool.executor.shutdown(wait=True, cancel_futures=True)
    return sorted(results, key=_sort_key)


def _snmp_result(host, port, credentials, outcomes):
    """One result per agent: the first credential (in the order given)
    that it answered is the one the details and the outputs use; every
    other that answered is listed; credential errors are kept as lines."""
    answered = [index for index in sorted(outcomes) if outcomes[index][0] == "ok"]
    errors = [f"{credentials[index].label}: {outcomes[index][1]}" for index in sorted(outcomes)
              if outcomes[index][0] == "error"]
    base = {"kind": "snmp", "address": address(host, port), "host": host, "port": port}
    if not answered:
        return {**base, "error": errors[0]} if errors else None
    chosen = credentials[answered[0]]
    found = {**base, "version": chosen.version, "sysoid": outcomes[answered[0]][1], "_credential": answered[0]}
    if chosen.usm:
        found.update(sec_name=chosen.usm.user, sec_level=chosen.usm.level, auth_protocol=chosen.usm.auth_protocol,
                     priv_protocol=chosen.usm.priv_protocol)
    else:
        found["community"] = chosen.community
    found["communities"] = [credentials[i].community for i in answered if not credentials[i].usm]
    found["users"] = [credentials[i].usm.user for i in answered if credentials[i].usm]
    if errors:
        found["errors"] = errors
    return found
