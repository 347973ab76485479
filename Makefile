# AILyS Hub. `make up` brings up the local site, `make test` runs every test; each installs
# what it needs first (apt packages when root, the virtual environment, the proxy).
SHELL := /bin/bash
SITE ?= local
VENV := .venv
PY := $(VENV)/bin/python
CHP_VERSION := 5.3.0
# The accessibility engine the browser tests inject into each page (tests/e2e/a11y.py).
AXE_VERSION := 4.14.1
# As root, learners' processes run the environment too, so it lives where every account can
# read it (/opt), whatever the mode of the checkout's parents; .venv points there.
VENV_HOME := $(if $(filter 0,$(shell id -u)),/opt/ailys-hub/venvs/$(shell echo $(CURDIR) | sha1sum | cut -c1-12),$(CURDIR)/.venv)
APT_RUN := python3-venv python3-dev build-essential acl
# Chromium for browser tests; a real Slurm cluster (tests/services/slurm.py), PostgreSQL
# (tests/services/postgres.py), podman with runc (tests/services/podman.py) and slapd
# (tests/services/ldap.py), Prometheus (tests/services/prometheus.py), systemd-analyze (tests/ansible)
# for the tests that need them.
APT_SLURM := slurmctld slurmd slurm-client slurmdbd munge mariadb-server
# Course images (images/, `ailys image build`): a debootstrap base, podman, SquashFS for ch-run
# (fuse3: fusermount3, with which a learner's ch-run mounts the SquashFS).
APT_IMAGE := debootstrap squashfs-tools squashfuse fuse3 charliecloud-runtime podman runc
APT_TEST := chromium $(APT_SLURM) postgresql sudo slapd ldap-utils prometheus systemd $(APT_IMAGE)
ENV ?= python-ml
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: up down test lint messages test-unit test-deploy bench-load bench-faults bench-spawn bench-slurm bench-grade bench-voila bench-catalogue bench-login bench-energy bench-deploy bench-docker bench-collab docker-site image lock docs deps test-deps slurm-deps clean slurm-up slurm-down slurm-status slurm-site

# SITE=slurm: Mesolys in a box, a Slurm cluster on this machine (make slurm-up) and the hub on it.
# SITE=docker: learners in podman containers of their course's image, python-ml built first.
up: deps $(if $(filter slurm,$(SITE)),slurm-site) $(if $(filter docker,$(SITE)),docker-site)
	$(VENV)/bin/ailys up --site $(SITE)

down: deps
	$(VENV)/bin/ailys down --site $(SITE)

# Two workers (pytest-xdist); a module's tests stay on one (loadfile), since they share its hub,
# Slurm cluster and Unix accounts; the 30 slowest are listed.
test: test-deps
	$(VENV)/bin/pytest -ra -n 2 --dist loadfile --durations=30 $(PYTEST_ARGS)

lint: test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-unit: test-deps
	$(VENV)/bin/pytest -ra tests/unit $(PYTEST_ARGS)

bench-spawn: test-deps
	$(PY) -m tests.bench.spawn

# Slurm spawns: our slurm site, stock batchspawner and our local site on one test cluster (~3 min).
bench-slurm: test-deps
	$(PY) -m tests.bench.slurm

# Autograde 40 submissions (one loops forever): stock nbgrader, ours local and on Slurm (~10 min).
bench-grade: test-deps
	$(PY) -m tests.bench.grade

# Voilà demo pages in Chromium: stock `voila <demo>` against our gallery, and stalls (~6 min).
bench-voila: test-deps
	$(PY) -m tests.bench.voila

# A class arriving at once: 100 learners over 60 s (log in, server, kernel, cell, idle, some submit),
# on SQLite, on PostgreSQL, 40 on the Slurm site, and stock JupyterHub in the same run (~25 min).
# The Ansible deploy against a podman container target over ssh (tests/ansible, ~3 min; part of
# `make test` too): this module alone.
test-deploy: test-deps
	$(VENV)/bin/pytest -ra tests/ansible $(PYTEST_ARGS)

bench-load: test-deps
	$(PY) -m tests.bench.load $(BENCH_ARGS)

# Faults under load: 100 submissions in a minute while the exchange is killed -9 and restarted by
# the hub; lost, duplicated, recovered_s, every one graded on submit (~5 min).
bench-faults: test-deps
	$(PY) -m tests.bench.faults $(BENCH_ARGS)

# Six members typing into one notebook of a team server: edit-to-arrival latency, server RSS,
# ours (a team account's server on our hub) against JupyterLab with jupyter-collaboration (~4 min).
bench-collab: test-deps
	$(PY) -m tests.bench.collab $(BENCH_ARGS)

# The running hub's catalogue: cached on its files' stats against parsed at each call (~20 s).
bench-catalogue: deps
	$(PY) -m tests.bench.catalogue

# Logins, local, LDAP (a test slapd) and OIDC (a test oidc-provider): ours against stock
# NativeAuthenticator, ldapauthenticator and GenericOAuthenticator configured by hand (~2 min).
bench-login: test-deps
	$(PY) -m tests.bench.login

# `ailys energy report` over 100,000 synthetic footprint records, goal 2 s (~10 s).
bench-energy: deps
	$(PY) -m tests.bench.energy

# ansible/site.yml against the test target (a podman container from a Debian base): the first
# run from nothing and a no-change run (goal under 30 s) (~2 min).
bench-deploy: test-deps
	$(PY) -m tests.bench.deploy

# Container spawns (podman, the python-ml image): our docker site against a stock DockerSpawner
# configured by hand, sequential and a burst of 10; idle container memory; image size (~5 min).
bench-docker: test-deps docker-site
	$(PY) -m tests.bench.docker

# The docker site's needs: podman with runc, and the python-ml image (a no-op once built).
docker-site: deps
	$(call apt_install,$(APT_IMAGE))
	$(VENV)/bin/ailys image build python-ml

# A course environment's images, OCI (podman) and SquashFS (ch-run): `make image ENV=r-stats`;
# a no-op when its spec is unchanged (docs/images.md). Root only.
image: deps
	$(call apt_install,$(APT_IMAGE))
	$(VENV)/bin/ailys image build $(ENV)

# Regenerate images/$(ENV)/requirements.lock from its requirements.in (uv, hashes; docs/images.md).
lock: test-deps
	$(PY) -m images.lock $(ENV)

# A real Slurm cluster on this machine (state, logs: var/slurm). Root only.
slurm-up: slurm-deps
	$(PY) -m tests.services.slurm up

slurm-down: slurm-deps
	$(PY) -m tests.services.slurm down

slurm-status: slurm-deps
	$(PY) -m tests.services.slurm status

# The cluster of the slurm site, with Unix and Slurm accounts for the people of its courses.
slurm-site: slurm-deps
	$(PY) -m tests.services.slurm up --site hub_config/sites/slurm.yaml

docs: deps
	$(VENV)/bin/ailys docs

# The message catalogue (hub_config/i18n.py): extract the messages of our templates and Python
# into hub_config/locale/messages.pot, then add the new ones to each language's .po for translation (a .po
# is compiled in memory at first use: nothing to build).
messages: deps
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output --project "AILyS Hub" \
	  --msgid-bugs-address "" --copyright-holder AILyS --ignore-dirs ".* _* var node_modules" -o hub_config/locale/messages.pot .
	$(VENV)/bin/pybabel update -i hub_config/locale/messages.pot -d hub_config/locale --ignore-obsolete --no-wrap --no-fuzzy-matching

LEARNER_CONFIG_DIR := $(VENV)/share/ailys-hub/jupyter-config/learner
LEARNER_CONFIG := $(LEARNER_CONFIG_DIR)/labconfig/page_config.json $(LEARNER_CONFIG_DIR)/nbgrader_config.py \
  $(LEARNER_CONFIG_DIR)/jupyter_server_config.py $(foreach l,fr en,$(LEARNER_CONFIG_DIR)/lab-settings/$(l)/overrides.json)
# A team server's (hub_config/appliers/teams.py): put before the learner's, it turns collaboration on.
TEAM_CONFIG_DIR := $(VENV)/share/ailys-hub/jupyter-config/team
TEAM_CONFIG := $(TEAM_CONFIG_DIR)/labconfig/page_config.json

# The JupyterLab status-bar item of the footprint service (footprint/labextension/README.md): npm
# packages in its node_modules, built there, installed where the environment's JupyterLab finds it.
LABEXT_SRC := footprint/labextension
LABEXT := $(VENV)/share/jupyter/labextensions/@ailys/footprint/package.json

deps: $(VENV)/.deps-stamp $(VENV)/bin/configurable-http-proxy $(LEARNER_CONFIG) $(TEAM_CONFIG) $(LABEXT)

test-deps: deps $(VENV)/.test-deps-stamp $(VENV)/lib/node_modules/axe-core/axe.min.js

slurm-deps: deps
	$(call apt_install,$(APT_SLURM))

# --- installation steps ---------------------------------------------------------------------

# Another apt run (a second checkout's make, a CI run beside this one) holds dpkg's lock: wait for it.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Please install: $$missing (apt-get install $$missing)"; exit 1; fi; \
	  echo "apt-get install $$missing"; \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null; \
	fi
endef

$(VENV)/bin/python:
	$(call apt_install,$(APT_RUN))
	@command -v node >/dev/null || $(MAKE) --no-print-directory apt-node
	mkdir -p $(VENV_HOME)
	/usr/bin/python3 -m venv $(VENV_HOME)
	@if [ "$(VENV_HOME)" != "$(CURDIR)/.venv" ]; then chmod 755 /opt/ailys-hub /opt/ailys-hub/venvs; ln -sfn $(VENV_HOME) $(VENV); fi
	$(VENV)/bin/pip install -q --upgrade pip

.PHONY: apt-node
apt-node:
	$(call apt_install,nodejs npm)

$(VENV)/.deps-stamp: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.test-deps-stamp: pyproject.toml $(VENV)/.deps-stamp
	$(call apt_install,$(APT_TEST))
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# In the environment, where learners' processes can read it (spawners/jupyter-config/README.md).
$(LEARNER_CONFIG_DIR)/%: spawners/jupyter-config/learner/% | $(VENV)/bin/python
	install -D -m 644 $< $@
$(TEAM_CONFIG_DIR)/%: spawners/jupyter-config/team/% | $(VENV)/bin/python
	install -D -m 644 $< $@

$(LABEXT): $(LABEXT_SRC)/package.json $(LABEXT_SRC)/lib/index.js $(LABEXT_SRC)/style/index.css | $(VENV)/.deps-stamp
	cd $(LABEXT_SRC) && npm install --silent --no-audit --no-fund
	cd $(LABEXT_SRC) && PATH=$(CURDIR)/$(VENV)/bin:$$PATH jupyter-builder build .
	rm -rf $(dir $@) && mkdir -p $(dir $@) && cp -r var/labextension/@ailys/footprint/. $(dir $@)

$(VENV)/bin/configurable-http-proxy: | $(VENV)/bin/python
	npm install --silent --global --prefix $(VENV_HOME) configurable-http-proxy@$(CHP_VERSION)

$(VENV)/lib/node_modules/axe-core/axe.min.js: | $(VENV)/bin/python
	npm install --silent --global --prefix $(VENV_HOME) axe-core@$(AXE_VERSION)

clean:
	-$(PY) -m tests.services.slurm down 2>/dev/null
	rm -rf var $(VENV_HOME) $(VENV)
