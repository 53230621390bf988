# fence-agents-infrapower: install, test, demo, bench.
# Everything here runs as root on Debian 12 (the agents go where
# pacemaker-fenced looks for them).

PYTHON        ?= /usr/bin/python3
SBINDIR       ?= /usr/sbin
BINDIR        ?= /usr/bin
MANDIR        ?= /usr/share/man/man8
LIBDIR        ?= /usr/lib/fence-agents-infrapower
# The agents' runtime environment: pysnmp, pyghmi and fencing.py's own
# imports, nothing else (snmpsim's pysmi would slow every pysnmp import).
VENV          ?= $(LIBDIR)/venv
# The lab and the tests: snmpsim, pysmi, pytest on top.
LABVENV       ?= $(LIBDIR)/lab
RELAXNG       ?= /usr/share/cluster/relaxng
# NUT's driver directory (Debian's DRVPATH): upsdrvctl runs drivers from here.
NUT_DRIVERDIR ?= /lib/nut
# OCF resource agents of the pack (provider "infrapower") and systemd units.
OCFDIR        ?= /usr/lib/ocf/resource.d/infrapower
UNITDIR       ?= /lib/systemd/system
# Where fence-agents keeps fencing.py; pkg-config knows its prefix.
FENCE_LIBDIR  ?= $(shell pkg-config --variable=prefix fence-agents 2>/dev/null || echo /usr)/share/fence

AGENTS        := $(sort $(notdir $(basename $(wildcard agents/fence_*/fence_*.py))))
DEBS          := fence-agents nut-server nut-client nut-snmp openipmi ipmitool snmp \
                 pacemaker corosync pcs xsltproc libxml2-utils python3-venv man-db groff-base \
                 libnss3-tools openssl librsvg2-bin snmpd \
                 avahi-daemon avahi-utils dbus iproute2
PYTEST_ARGS   ?=

.PHONY: all install install-debs install-venvs install-agents install-driver install-extras uninstall check test demo bench metadata man lab-up lab-down

all:
	@echo "targets: check, install, uninstall, test, demo, bench, metadata, man"

install: install-debs install-venvs install-agents install-driver install-extras

# apt-get only when something is missing: a re-install stays quick.
install-debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

install-venvs:
	# setuptools builds in ./build: a stale copy there would ship moved modules again.
	rm -rf build
	test -x $(VENV)/bin/python3 || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-cache-dir .
	test -x $(LABVENV)/bin/python3 || $(PYTHON) -m venv $(LABVENV)
	$(LABVENV)/bin/pip install -q --disable-pip-version-check --no-cache-dir '.[test]'
	ln -sf $(LABVENV)/bin/infrapower $(BINDIR)/infrapower

# Each agent is one script; the installed copy runs with the runtime
# environment's interpreter and finds fencing.py without any PATH.
install-agents:
	@for agent in $(AGENTS); do \
		sed -e '1s|^#!.*|#!$(VENV)/bin/python3|' \
		    -e 's|^FENCE_LIBDIR = .*|FENCE_LIBDIR = "$(FENCE_LIBDIR)"|' \
		    agents/$$agent/$$agent.py > $(SBINDIR)/$$agent.tmp && \
		chmod 755 $(SBINDIR)/$$agent.tmp && mv $(SBINDIR)/$$agent.tmp $(SBINDIR)/$$agent && \
		echo "installed $(SBINDIR)/$$agent"; \
		mkdir -p $(MANDIR); \
		if [ -f man/$$agent.8 ]; then install -m 644 man/$$agent.8 $(MANDIR)/$$agent.8; fi; \
	done

# The NUT driver ipmi-psu: a launcher running the runtime environment's
# python (the package itself is in the venv, from install-venvs).
install-driver:
	mkdir -p $(NUT_DRIVERDIR)
	sed -e '1s|^#!.*|#!$(VENV)/bin/python3|' nutdriver/ipmi-psu > $(NUT_DRIVERDIR)/ipmi-psu.tmp
	chmod 755 $(NUT_DRIVERDIR)/ipmi-psu.tmp && mv $(NUT_DRIVERDIR)/ipmi-psu.tmp $(NUT_DRIVERDIR)/ipmi-psu
	@echo "installed $(NUT_DRIVERDIR)/ipmi-psu"

# OCF resource agents (ocf/*: run by pacemaker's lrmd) and systemd units
# (systemd/*.service), each script on the runtime environment's python.
install-extras:
	@if [ -d ocf ]; then mkdir -p $(OCFDIR); for f in ocf/*; do \
		sed -e '1s|^#!.*python3.*|#!$(VENV)/bin/python3|' $$f > $(OCFDIR)/$$(basename $$f).tmp && \
		chmod 755 $(OCFDIR)/$$(basename $$f).tmp && mv $(OCFDIR)/$$(basename $$f).tmp $(OCFDIR)/$$(basename $$f) && \
		echo "installed $(OCFDIR)/$$(basename $$f)"; done; fi
	@if [ -d systemd ]; then mkdir -p $(UNITDIR); for f in systemd/*; do \
		install -m 644 $$f $(UNITDIR)/$$(basename $$f) && echo "installed $(UNITDIR)/$$(basename $$f)"; done; fi

uninstall:
	@if [ -d ocf ]; then for f in ocf/*; do rm -f $(OCFDIR)/$$(basename $$f); done; rmdir $(OCFDIR) 2>/dev/null || true; fi
	@if [ -d systemd ]; then for f in systemd/*; do rm -f $(UNITDIR)/$$(basename $$f); done; fi
	@for agent in $(AGENTS); do rm -f $(SBINDIR)/$$agent $(MANDIR)/$$agent.8; done
	rm -f $(NUT_DRIVERDIR)/ipmi-psu
	rm -f $(BINDIR)/infrapower
	rm -rf $(LIBDIR)

# Golden metadata and man pages come from the installed agents' own output.
metadata: install
	@for agent in $(AGENTS); do \
		$(SBINDIR)/$$agent -o metadata > metadata/$$agent.xml && echo "metadata/$$agent.xml"; \
	done
	$(MAKE) man

man:
	@for agent in $(AGENTS); do \
		xsltproc $(RELAXNG)/fence2man.xsl metadata/$$agent.xml > man/$$agent.8 && echo "man/$$agent.8"; \
	done

# The unit tests (safety core, options, parsers): any user, no install, no
# lab, seconds.  Any python3 with pytest will do (else the lab's venv).
CHECK_PYTHON  ?= python3
check:
	@py=$(CHECK_PYTHON); $$py -c 'import pytest' 2>/dev/null || py=$(LABVENV)/bin/python; \
	$$py -c 'import pytest' 2>/dev/null || { echo "make check needs pytest: pip install --user pytest"; exit 1; }; \
	PYTHONPATH=$(CURDIR) $$py -m pytest -q -p no:cacheprovider tests/unit

test: install
	$(LABVENV)/bin/python -m pytest $(PYTEST_ARGS) tests

demo: install
	$(LABVENV)/bin/python -m infrapower.cli.demo

bench: install
	$(LABVENV)/bin/python bench/bench.py

lab-up: install
	infrapower lab up

lab-down:
	infrapower lab down
