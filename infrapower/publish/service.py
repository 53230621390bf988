"""The long-running publication: wait for upsd, publish, poll LIST UPS and
update the records when devices come or go, keep them through a short
upsd restart, withdraw them when upsd stays away, and send the goodbye
packets on SIGTERM (systemd's stop) or SIGINT."""

import logging
import signal
import threading
import time
from dataclasses import dataclass

from infrapower.errors import InfrapowerError, NutError
from infrapower.publish import txt, upsd

log = logging.getLogger(__name__)

# After a change that left some device's type unknown (its driver still
# connecting), poll this often for this long, so the record settles soon.
SETTLE_INTERVAL, SETTLE_SECONDS = 1.0, 30.0


@dataclass(frozen=True)
class Options:
    endpoints: tuple  # listen.Endpoint
    publisher: str = "auto"  # auto, avahi, zeroconf
    name: str = None  # the instance name (default: the host name)
    interval: float = 10.0  # seconds between LIST UPS polls
    grace: float = 60.0  # seconds upsd may be away before the records are withdrawn
    timeout: float = 5.0  # each upsd exchange


def choose_publisher(kind, addresses):
    """avahi-daemon when it runs (auto), else python-zeroconf; a
    publisher asked for by name or nothing is an error."""
    from infrapower.publish import avahi

    running = kind in ("auto", "avahi") and avahi.daemon_running()
    if kind == "avahi" and not running:
        raise InfrapowerError("--publisher avahi: no avahi-daemon runs here (start it, or use --publisher zeroconf)")
    if running:
        return avahi.AvahiPublisher(addresses)
    from infrapower.publish.responder import ResponderPublisher

    return ResponderPublisher(addresses)


def _describe(facts):
    shown = ", ".join(f"{name} ({kind})" for name, kind in facts.devices[:10])
    more = f" and {len(facts.devices) - 10} more" if len(facts.devices) > 10 else ""
    return f"{len(facts.devices)} device(s){': ' + shown + more if shown else ''}"


class Publication:
    """The loop's state: what upsd said last, what is published."""

    def __init__(self, options, publisher, stop):
        self.options, self.publisher, self.stop = options, publisher, stop
        self.endpoint = options.endpoints[0]
        self.where = f"{self.endpoint.poll_host}:{self.endpoint.port}"
        self.facts = None  # the last answer from upsd
        self.published = None  # the services as published, or None
        self.away_since = None  # when upsd stopped answering (monotonic)
        self.failure = None  # the publisher's last error, said once
        self.changed_at = None  # when the record last changed (monotonic)
        self.base_name = options.name or publisher.host_name.split(".")[0]

    def poll(self):
        """One round: ask upsd, publish what changed."""
        host, port, timeout = self.endpoint.poll_host, self.endpoint.port, self.options.timeout
        try:
            if self.facts is None or self.away_since is not None:
                facts = upsd.facts(host, port, timeout)  # versions and STARTTLS: after every return of upsd
            else:
                facts = upsd.UpsdFacts(upsd.devices(host, port, timeout), self.facts.protocol,
                                       self.facts.version, self.facts.starttls)
        except NutError as error:
            self._away(error)
            return
        if self.facts is not None:
            # A type upsd cannot give right now (a driver not yet connected
            # after a reload or restart) keeps the one it gave before.
            known = dict(self.facts.devices)
            facts = upsd.UpsdFacts(tuple((name, known.get(name, kind) if kind == upsd.UNKNOWN_TYPE else kind)
                                         for name, kind in facts.devices),
                                   facts.protocol, facts.version, facts.starttls)
        if self.away_since is not None and self.facts is not None:
            log.info("upsd at %s answers again", self.where)
        self.away_since = None
        services = txt.services(self.options.endpoints, facts, self.base_name)
        alive = getattr(self.publisher, "alive", lambda: True)()
        self.facts = facts
        if services != self.published or not alive:
            try:
                names = self.publisher.publish(services)
            except InfrapowerError as error:
                # avahi-daemon restarting, a socket error: the next poll
                # tries again (systemd would only restart us to do the same).
                if str(error) != self.failure:
                    log.info("%s: trying again every %g s", error, self.options.interval)
                self.failure = str(error)
                return
            self.failure = None
            self.changed_at = time.monotonic()
            verb = "published" if self.published is None else "updated" if alive else "published again"
            self.published = services
            addresses = sorted({f"{address}:{service.port}" for service in services for address in service.addresses})
            log.info("%s %s as %s on %s (host %s, through %s): %s", verb, " and ".join(txt.SERVICE_TYPES),
                     ", ".join(sorted(set(names))), ", ".join(addresses), self.publisher.host_name,
                     self.publisher.kind, _describe(facts))

    def _away(self, error):
        now = time.monotonic()
        if self.away_since is None:
            self.away_since = now
            if self.facts is None:
                log.info("waiting for upsd at %s (%s)", self.where, error)
            else:
                log.info("upsd at %s does not answer (%s): the records stay for %g s", self.where, error,
                         self.options.grace)
        elif self.published is not None and now - self.away_since >= self.options.grace:
            self.publisher.withdraw()
            self.published = None
            log.info("upsd at %s away for %g s: records withdrawn until it answers", self.where, self.options.grace)

    def wait_seconds(self):
        settling = (self.facts is not None and self.changed_at is not None
                    and any(kind == upsd.UNKNOWN_TYPE for _, kind in self.facts.devices)
                    and time.monotonic() - self.changed_at < SETTLE_SECONDS)
        return min(self.options.interval, SETTLE_INTERVAL) if settling else self.options.interval

    def run(self):
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(self.wait_seconds())


def run(options):
    """Publish until SIGTERM/SIGINT; returns 0 after withdrawing."""
    stop = threading.Event()

    def on_signal(number, frame):
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
    addresses = tuple({address for endpoint in options.endpoints for address in endpoint.addresses})
    publisher = choose_publisher(options.publisher, addresses)
    try:
        Publication(options, publisher, stop).run()
    finally:
        publisher.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    log.info("stopped: records withdrawn")
    return 0
