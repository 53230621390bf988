# fence-agents-infrapower: install, test, demo, bench.
# Everything here runs as root on Debian 12 (the agents go where
# pacemaker-fenced looks for them).

# bash: the recipes read NUL-separated file lists.
SHELL         := /bin/bash
PYTHON        ?= /usr/bin/python3
SBINDIR       ?= /usr/sbin
BINDIR        ?= /usr/bin
LIBDIR        ?= /usr/lib/fence-agents-infrapower
# Before #17 the agents ran from a private virtualenv here; `make install`
# removes it (the Debian package runs them on /usr/bin/python3).
OLD_VENV      ?= $(LIBDIR)/venv
# The lab and the tests: snmpsim, pysmi, pytest, zeroconf and the pack's own
# package on top (PyPI's pysnmp 7.x); never part of the Debian package.
LABVENV       ?= $(LIBDIR)/lab
RELAXNG       ?= /usr/share/cluster/relaxng
PACKAGE       := fence-agents-infrapower
# Where `make deb` builds (a clean copy of the tree) and leaves the .deb.
DEBDIR        ?= $(CURDIR)/build/deb
# dpkg-buildpackage with Debian's own interpreters only: a python3.x of
# pyenv or /usr/local on PATH would build for an interpreter the package
# does not run with.
DEB_ENV       := env PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive

AGENTS        := $(sort $(notdir $(basename $(wildcard agents/fence_*/fence_*.py))))
# The lab's peers and tools, the package's build dependencies
# (debian/control's Build-Depends, lintian), its runtime dependencies
# (apt resolves those again when it installs the .deb), and python3-pysnmp4:
# Debian's pysnmp 4.4, against which tests/unit/test_ber.py checks the
# pack's own SNMP codec (beside the lab's pysnmp 7.x).
DEBS          := fence-agents nut-server nut-client nut-snmp openipmi ipmitool snmp \
                 pacemaker corosync pcs xsltproc libxml2-utils python3-venv man-db groff-base \
                 libnss3-tools openssl librsvg2-bin snmpd \
                 avahi-daemon avahi-utils dbus iproute2 \
                 dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools lintian \
                 python3-pysnmp4 python3-pyghmi python3-cryptography python3-pexpect python3-pycurl
PYTEST_ARGS   ?=

.PHONY: all install install-debs install-venvs install-package install-agents install-driver install-extras deb tree-files tree-checksum uninstall check test demo bench metadata man lab-up lab-down

all:
	@echo "targets: check, install, uninstall, deb, test, demo, bench, metadata, man"

install: install-debs install-venvs install-agents install-driver install-extras

# apt-get only when something is missing: a re-install stays quick.
install-debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The lab's environment only (the agents come from the Debian package).
install-venvs:
	# setuptools builds in ./build/lib: a stale copy there would ship moved modules again.
	rm -rf build/lib build/bdist.*
	test -x $(LABVENV)/bin/python3 || $(PYTHON) -m venv $(LABVENV)
	$(LABVENV)/bin/pip install -q --disable-pip-version-check --no-cache-dir '.[test]'

# The Debian package, built with dpkg-buildpackage from a clean copy of the
# tree (its files as git sees them: tracked and new, never ignored ones).
# The tree's checksum is the build's stamp: an unchanged tree is not
# rebuilt.
deb:
	@mkdir -p $(DEBDIR); \
	stamp=$$($(MAKE) -s --no-print-directory tree-checksum); \
	version=$$(dpkg-parsechangelog -l debian/changelog -S Version); \
	deb=$(DEBDIR)/$(PACKAGE)_$${version}_all.deb; \
	if [ -f $$deb ] && [ "$$(cat $(DEBDIR)/stamp 2>/dev/null)" = "$$stamp $$version" ]; then \
		echo "$$deb is up to date"; exit 0; fi; \
	rm -rf $(DEBDIR)/src $(DEBDIR)/*.deb $(DEBDIR)/*.changes $(DEBDIR)/*.buildinfo $(DEBDIR)/stamp && mkdir -p $(DEBDIR)/src && \
	$(MAKE) -s --no-print-directory tree-files | tar --null -T - -cf - | tar -C $(DEBDIR)/src -xf - && \
	started=$$(date +%s.%N) && \
	(cd $(DEBDIR)/src && $(DEB_ENV) dpkg-buildpackage -us -uc -b > $(DEBDIR)/build.log 2>&1) || \
		{ tail -30 $(DEBDIR)/build.log; echo "dpkg-buildpackage failed: see $(DEBDIR)/build.log"; exit 1; }; \
	rm -rf $(DEBDIR)/src; \
	echo "$$stamp $$version" > $(DEBDIR)/stamp; \
	echo "built $$deb in $$(awk "BEGIN { printf \"%.1f\", $$(date +%s.%N) - $$started }") s"

tree-files:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$$f" ] && printf '%s\0' "$$f"; done; \
	else find . -path ./build -prune -o -path ./.git -prune -o -type f -print0; fi

tree-checksum:
	@$(MAKE) -s --no-print-directory tree-files | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40

# apt installs the .deb and what it depends on.  A build whose files and
# maintainer scripts are what dpkg has installed (whichever checkout
# installed it) is left alone.
install-package: deb
	@version=$$(dpkg-parsechangelog -l debian/changelog -S Version); \
	deb=$(DEBDIR)/$(PACKAGE)_$${version}_all.deb; \
	if [ -L $(BINDIR)/infrapower ]; then rm -f $(BINDIR)/infrapower; fi; \
	same=$$([ "$$(dpkg-query -W -f='$${Status} $${Version}' $(PACKAGE) 2>/dev/null)" = "install ok installed $$version" ] && echo yes); \
	for part in md5sums preinst postinst prerm postrm; do \
		[ -n "$$same" ] || break; \
		[ "$$(dpkg-deb -I $$deb $$part 2>/dev/null)" = "$$(cat /var/lib/dpkg/info/$(PACKAGE).$$part 2>/dev/null)" ] || same=; \
	done; \
	if [ -n "$$same" ]; then echo "$(PACKAGE) $$version is installed (this build)"; exit 0; fi; \
	$(DEB_ENV) apt-get install -y -q --reinstall --no-install-recommends $$deb > $(DEBDIR)/apt.log 2>&1 || \
		{ tail -20 $(DEBDIR)/apt.log; echo "apt-get could not install $$deb: see $(DEBDIR)/apt.log"; exit 1; }; \
	rm -rf $(OLD_VENV); \
	echo "installed $(PACKAGE) $$version ($$deb)"

# The agents (/usr/sbin), the NUT driver (/lib/nut/ipmi-psu), the OCF
# agents and systemd units, the man pages, `infrapower` and the Python
# package all come with the Debian package: these names stay for whoever
# reinstalls by them.
install-agents install-driver install-extras: install-package
	@:

uninstall:
	$(DEB_ENV) apt-get purge -y -q $(PACKAGE) 2>/dev/null || true
	rm -rf $(LIBDIR) $(DEBDIR)

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

# The lab runs from its own environment (snmpsim is not a Debian package).
lab-up: install
	$(LABVENV)/bin/infrapower lab up

lab-down:
	$(LABVENV)/bin/infrapower lab down
