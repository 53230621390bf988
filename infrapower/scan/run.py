"""The scan itself, each probe bounded by the timeout.  The presence
round (an SNMP GET of sysObjectID per community, ASF pings and upsd
TCP connects, swept at once: infrapower.scan.sweep; SNMPv3 on the thread
pool meanwhile) starts the details of each host on a bounded thread pool
as soon as it answers, so a range with nothing on it ends in about one
timeout, and a range with devices in not much more."""

import ipaddress
import threading

from infrapower.scan.targets import address

BUSES = ("snmp", "nut", "ipmi", "mdns")
ADDRESS_BUSES = BUSES[:3]


class ScanPlan:
    """What to scan and how (a plain class: dataclasses costs the start-up
    ~10 ms, and the start-up counts in a scan's time)."""

    def __init__(self, hosts, buses=BUSES, snmp_ports=(161,), nut_ports=(3493,), ipmi_ports=(623,), credentials=(),
                 ipmi_user=None, ipmi_password=None, timeout=1.0, threads=64):
        self.hosts, self.buses = hosts, buses
        self.snmp_ports, self.nut_ports, self.ipmi_ports = snmp_ports, nut_ports, ipmi_ports
        self.credentials = credentials  # infrapower.scan.snmp.Credential, in the order given
        self.ipmi_user, self.ipmi_password = ipmi_user, ipmi_password
        self.timeout, self.threads = timeout, threads

    def __repr__(self):  # never the password
        return f"ScanPlan({len(self.hosts)} hosts, {self.buses}, timeout {self.timeout})"


class _Tables:
    """fence_snmp_pdu's tables and NUT 2.8.0's mapping names, loaded once,
    by the first SNMP details probe that needs them (a range where no
    agent answers never loads them)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.loaded = None

    def get(self):
        with self.lock:
            if self.loaded is None:
                from infrapower import tables
                from infrapower.scan.snmp import conf_names

                document = tables.load()
                self.loaded = document, conf_names(document)
            return self.loaded


# What each kind of probe imports, lazily, in its pool thread.  Two threads
# importing one module graph at once can meet a partially initialised
# module (importlib breaks the cycle of its per-module locks that way:
# seen as "partially initialized module 'typing'"), so every probe first
# imports its kind's modules under one lock of the scan's own.
_IMPORTS = {
    "snmp": ("infrapower.snmp.ber", "infrapower.resolve",
             "infrapower.snmp.session", "infrapower.snmp.usm", "infrapower.snmp.pdu", "infrapower.tables"),
    "nut": ("ssl", "infrapower.nut.client"),
    "ipmi": ("infrapower.resolve", "infrapower.ipmi.session", "infrapower.ipmi.chassis", "infrapower.ipmi.psu",
             "pyghmi.ipmi.private.constants", "pyghmi.ipmi.sdr", "pyghmi.ipmi.fru"),
    "mdns": ("zeroconf",),
}


class _Imports:
    """Each kind's modules imported once, one kind at a time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = set()

    def ready(self, kind):
        import importlib

        with self.lock:
            if kind in self.done:
                return
            self.done.add(kind)
            for name in _IMPORTS[kind]:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass  # the probe itself says what is missing, in its one line


def _probe(imports, kind, function, *args):
    """function(*args) in a pool thread, its kind's imports done first."""
    imports.ready(kind)
    return function(*args)


def _snmp_details(host, port, credential, timeout, loaded):
    from infrapower.scan.snmp import details

    document, names = loaded.get()
    return details(host, port, credential, timeout, document, names)


def _sort_key(result):
    try:
        host = (0, int(ipaddress.ip_address(result["host"])))
    except ValueError:
        host = (1, result["host"])
    return BUSES.index(result["kind"]), host, result["port"]


class _Pool:
    """A thread pool that counts its work for a progress line."""

    def __init__(self, threads, progress, imports):
        self.threads, self.progress, self.imports = threads, progress, imports
        self.pool = None  # started by the first probe (a silent range needs none)
        self.total = self.done = 0

    @property
    def executor(self):
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="scan")
        return self.pool

    def shutdown(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, jobs):
        """[(key, function, args)] -> futures, running; key[0] is the kind."""
        return {self.submit_one(key[0], function, *args): key for key, function, args in jobs}

    def submit_one(self, kind, function, *args):
        self.total += 1
        return self.executor.submit(_probe, self.imports, kind, function, *args)

    def collect(self, futures):
        """{key: result}; a probe that raises is a bug: its one line is
        kept, the traceback goes to debug."""
        if not futures:
            return {}
        from concurrent.futures import as_completed

        results = {}
        for future in as_completed(futures):
            key = futures[future]
            try:
                results[key] = future.result()
            except Exception as error:  # one host must not end the scan
                import logging

                logging.getLogger(__name__).debug("probe %s failed", key, exc_info=True)
                results[key] = {"error": f"{type(error).__name__}: {error}"}
            self.count(1)
        return results

    def count(self, done, total=0):
        self.total += total
        self.done += done
        self.show(self.done)

    def show(self, done):
        if self.progress:
            self.progress(done, self.total)


def scan(plan, progress=None):
    """Everything found, as dicts (see infrapower.scan.output), sorted by
    kind, address and port.  Read-only: no SET, no power command."""
    from infrapower.scan import ipmi, mdns, nut, snmp, sweep

    loaded, imports = _Tables(), _Imports()
    pool = _Pool(max(1, plan.threads), progress, imports)
    v3_jobs, snmp_sweep, ipmi_sweep, nut_sweep = [], {}, {}, {}
    for host in plan.hosts:
        if "snmp" in plan.buses:
            for port in plan.snmp_ports:
                for index, credential in enumerate(plan.credentials):
                    key = ("snmp", host, port, index)
                    if credential.usm:  # v3 discovery and keys: the session's own code, one thread each
                        v3_jobs.append((key, snmp.ping, (host, port, credential, plan.timeout)))
                    else:
                        snmp_sweep[key] = (host, port, credential)
        if "nut" in plan.buses:
            nut_sweep.update({("nut", host, port): (host, port) for port in plan.nut_ports})
        if "ipmi" in plan.buses:
            ipmi_sweep.update({("ipmi", host, port): (host, port) for port in plan.ipmi_ports})
    early = {}  # (kind, host, port) -> (credential index, future): details started within the presence round
    early_lock = threading.Lock()  # SNMPv3 answers come from pool threads, the others from the sweep

    def details_job(kind, host, port, index):
        if kind == "snmp":
            return _snmp_details, (host, port, plan.credentials[index], plan.timeout, loaded)
        if kind in ("nut", "mdns"):
            return nut.probe, (host, port, plan.timeout)
        return ipmi.login, (host, port, plan.ipmi_user, plan.ipmi_password or "", plan.timeout)

    def on_answer(key, outcome):
        """Details start as soon as a host answers: an agent with the
        best credential it answered so far (the first given wins), a
        upsd once connected, a BMC its ping (with credentials)."""
        kind, host, port = key[:3]
        index = key[3] if kind == "snmp" else None
        if kind == "snmp" and outcome[0] != "ok":
            return
        if kind == "ipmi" and (plan.ipmi_user is None or "error" in outcome):
            return
        with early_lock:
            started = early.get(key[:3])
            if started is None or (index is not None and index < started[0]):
                function, args = details_job(kind, host, port, index)
                early[key[:3]] = (index, pool.submit_one(kind, function, *args))  # never mdns: its probes follow the browse

    def on_v3_answer(key, future):
        if not future.cancelled() and future.exception() is None and future.result()[0] == "ok":
            try:
                on_answer(key, future.result())
            except RuntimeError:  # the pool already shut down: the scan is ending anyway
                pass

    try:
        browsing = pool.submit_one("mdns", mdns.browse, plan.timeout) if "mdns" in plan.buses else None
        futures = pool.submit(v3_jobs)
        for future, key in futures.items():  # an SNMPv3 agent's details start when it answers, within the round
            future.add_done_callback(lambda done, key=key: on_v3_answer(key, done))
        swept = len(snmp_sweep) + len(ipmi_sweep) + len(nut_sweep)
        pool.count(0, swept)
        first = {}
        if swept:
            done_before = pool.done
            first.update(sweep.presence(snmp_sweep, ipmi_sweep, plan.timeout, on_answer, nut_sweep,
                                        tick=lambda settled: pool.show(done_before + settled)))
            pool.count(swept)
        for key, outcome in pool.collect(futures).items():  # SNMPv3 pings; a probe that raised is its error line
            first[key] = ("error", outcome["error"]) if isinstance(outcome, dict) else outcome
        results, snmp_found, second = [], {}, []
        for key, outcome in first.items():
            kind, host, port = key[:3]
            base = {"kind": kind, "address": address(host, port), "host": host, "port": port}
            if kind == "snmp":
                snmp_found.setdefault((host, port), {})[key[3]] = outcome
            elif kind == "nut":
                second.append((key, None))  # its probe is the details, started on connect
            elif "error" in outcome:
                results.append({**base, **outcome})
            else:
                results.append({**base, "asf": True, **outcome})
                if plan.ipmi_user is not None:
                    second.append((key, None))
        for (host, port), outcomes in snmp_found.items():
            found = _snmp_result(host, port, plan.credentials, outcomes)
            if found is None:
                continue
            results.append(found)
            if "error" not in found:
                second.append((("snmp", host, port), found.pop("_credential")))
        if browsing is not None:
            for found in mdns.results(pool.collect({browsing: "mdns"})["mdns"]):
                results.append(found)
                if "error" not in found:  # each upsd published: its devices, as the upsd probe reads them
                    second.append((("mdns", found["host"], found["port"]), None))
        pending = {}
        for key, index in second:
            started = early.get(key)
            if started and started[0] == index:
                future = started[1]
            else:
                function, args = details_job(*key, index)
                future = pool.submit_one("nut" if key[0] == "mdns" else key[0], function, *args)
            pending[future] = key
        for key, outcome in pool.collect(pending).items():
            kind, host, port = key
            if kind == "nut":
                if outcome is not None:
                    results.append({"kind": kind, "address": address(host, port), "host": host, "port": port,
                                    **outcome})
                continue
            target = next(r for r in results if r["kind"] == kind and r["host"] == host and r["port"] == port)
            if kind == "mdns":
                target.update(outcome if outcome is not None else
                              {"error": f"{target['address']} published, but no upsd answers there"})
            elif kind == "ipmi" and "error" in outcome:
                target["login_error"] = outcome["error"]
            elif "error" in outcome and kind == "snmp":
                target["note"] = outcome["error"]
            else:
                target.update(outcome)
    finally:
        pool.shutdown()
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
