# credops.pgauth — `make demo` and `make test` are the two commands the README promises.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
BUILD  ?= $(CURDIR)/.build
COLL   := $(BUILD)/ansible_collections/credops/pgauth
LABCTL := $(CURDIR)/tests/lab/labctl
PYVER  := 3.11

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)
# a fresh shell per recipe line: this loads the lab's exports into it
LAB_ENV = eval "$$($(LABCTL) env)"
# tests/run_all.sh builds the copy once and runs two lanes side by side (PGAUTH_BUILT=1):
# then no target may rebuild it under the other lane
BUILT := $(if $(PGAUTH_BUILT),,collection)

.PHONY: help venv collection lab-up lab-down lab-status lab-test reliability security demo test lint \
        sanity units integration molecule ruff changelog specs bench clean

help:
	@echo "make demo        bootstrap, start the lab, show the password_mismatch outage"
	@echo "make test        everything CI runs (lint, sanity, units, lab, reliability, integration,"
	@echo "                 molecule)"
	@echo "make reliability  faults, leaks, bad input, concurrency (docs/reliability.md)"
	@echo "make security    every attack of the security review, performed for real"
	@echo "make lab-up | lab-down | lab-status | lab-test"
	@echo "make lint | sanity | units | integration | molecule | ruff | changelog"
	@echo "make specs       write the doc fragments, role argument specs and AWX surveys from the option registry"

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt requirements-dev.txt tests/bootstrap.sh
	tests/bootstrap.sh
	@touch $@

# ansible-test wants the collection at .../ansible_collections/credops/pgauth: a copy of
# the tracked (and new, not ignored) files, refreshed on every run.  The copy gets its
# own git index: ansible-test lists files with git, and from the outer checkout the
# copy is ignored.
collection: venv
	@rm -rf $(COLL) && mkdir -p $(COLL)
	@git ls-files -z --cached --others --exclude-standard \
	  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C $(COLL) -xf -
	@cd $(COLL) && git init -q && git add -A

lab-up: venv
	$(LABCTL) up

lab-down:
	@[ -x $(BIN)/python ] && $(LABCTL) down || true

lab-status: venv
	$(LABCTL) status

lab-test: $(BUILT) lab-up
	$(LAB_ENV) && $(BIN)/pytest -q -p no:cacheprovider --durations=8 tests/lab

# the reliability harness; its tally goes to .build/test-results/faults.json
reliability: $(BUILT) lab-up
	$(LAB_ENV) && $(BIN)/pytest -q -p no:cacheprovider --durations=8 tests/reliability

# attacks performed for real against the collection (docs/reliability.md, "security")
security: $(BUILT) lab-up
	$(LAB_ENV) && $(BIN)/pytest -q -p no:cacheprovider --durations=8 tests/security

demo: collection lab-up
	@$(LABCTL) scenario password_mismatch
	@$(LAB_ENV) && $(BIN)/python tests/lab/demo.py

# ruff, plus pycodestyle as ansible-test's pep8 sanity test runs it (ruff lacks some of
# its rules, continuation lines among them): fails in a second instead of after sanity
PEP8_IGNORE := E402,W503,W504,E741,E203,E701,E704
ruff: venv
	$(BIN)/ruff check plugins tests bench
	$(BIN)/pycodestyle --max-line-length=160 --ignore=$(PEP8_IGNORE) plugins tests bench

lint: $(BUILT)
	cd $(COLL) && NO_COLOR=1 $(BIN)/ansible-lint

sanity: $(BUILT)
	cd $(COLL) && $(BIN)/ansible-test sanity --venv --python $(PYVER) --color no

units: $(BUILT)
	cd $(COLL) && $(BIN)/ansible-test units --python $(PYVER) --color no

# ansible-test passes no environment to targets: the lab's settings go in as vars.
integration: $(BUILT) lab-up
	$(LABCTL) env --json > $(COLL)/tests/integration/integration_config.yml
	cd $(COLL) && $(BIN)/ansible-test integration --python $(PYVER) --color no

# reset first: the delegated scenarios have no create/destroy, so a stale "prepared" state
# from an earlier run would skip prepare (and its lab scenario)
molecule: $(BUILT) lab-up
	$(BIN)/molecule reset --all >/dev/null
	$(LAB_ENV) && NO_COLOR=1 ANSIBLE_NOCOLOR=1 $(BIN)/molecule test --all

changelog: venv
	$(BIN)/antsibull-changelog lint

# doc fragments and roles/*/meta/argument_specs.yml from the one option registry, and the AWX
# surveys from those (hack/gen_specs.py, hack/gen_surveys.py; tests/unit/plugins/test_specs.py
# and test_surveys.py fail when they are stale)
specs: venv
	$(BIN)/python hack/gen_specs.py

# The whole suite; the lab goes down at the end even when a step fails.
test: venv
	tests/run_all.sh

# The anchor collections (community.postgresql, amazon.aws, community.hashi_vault) come from
# the `ansible` bundle, in a venv of their own: the collection itself never needs them.
BENCH_VENV := $(CURDIR)/.bench-venv
$(BENCH_VENV)/.stamp:
	python$(PYVER) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "ansible>=12,<13" psycopg2-binary boto3 hvac
	@touch $@

bench: collection lab-up $(BENCH_VENV)/.stamp
	$(BIN)/python bench/logscan_throughput.py --size-mb 1024
	$(LAB_ENV) && $(BIN)/python bench/diagnose_vs_anchor.py
	$(LAB_ENV) && $(BIN)/python bench/rotate_wall.py
	$(LAB_ENV) && $(BIN)/python bench/rotation_availability.py
	$(LAB_ENV) && $(BIN)/python bench/consumers_load.py
	$(LAB_ENV) && $(BIN)/python bench/fleet.py

clean: lab-down
	rm -rf $(BUILD) .lab
