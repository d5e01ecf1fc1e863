# wsfleet.fleet: the two commands people run are `make deploy` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv test unit lint build docs engine engine-stop images molecule deploy bench bench-provision lock clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: ## Create/update the controller virtualenv from requirements.txt
	@scripts/venv.sh

test: ## Everything CI runs: venv, unit tests, lint, collection build, docker engine, images, molecule
	@scripts/test.sh

unit: venv ## Unit tests (app, plugins, templates): no containers
	@scripts/unit.sh

lint: venv ## yamllint, ansible-lint (production profile), ansible-doc on every role and plugin, ansible-test sanity
	@scripts/lint.sh

build: venv ## Build the collection tarball into build/ and run galaxy-importer (Galaxy's import checks) on it
	@scripts/build.sh

docs: venv ## Regenerate each role's README.md from its meta/argument_specs.yml
	python scripts/role-docs.py

engine: ## Start a Docker engine if none answers (installs docker.io if missing)
	@scripts/docker-engine.sh start

engine-stop: ## Stop the dockerd that `make engine` started (only that one, by PID)
	@scripts/docker-engine.sh stop

images: venv engine ## Build the Debian 12/13 systemd images, bare and with the roles' OS packages (cached by tag)
	@scripts/build-images.sh

molecule: venv images ## Every scenario on Debian 12 and 13, several at once, with a table of stage times (WSFLEET_MOLECULE_ONLY=lb_nginx,fleet-haproxy-d13 for some)
	scripts/molecule-matrix.py

deploy: ## Deploy on this machine: nginx on 8080 in front of one echo process per vCPU (WSFLEET_LB=haproxy for HAProxy)
	@scripts/deploy.sh

bench: venv engine ## Benchmark direct vs our nginx/HAProxy vs the seeds' setup, side by side (25-30 min on 2 busy cores; BENCH_QUICK=1: smoke run)
	scripts/build-images.sh bookworm
	python bench/run.py

bench-provision: venv engine ## Wall time of site.yml on 3 containers: fresh converge, re-runs, pipelining, facts (~15 min; BENCH_PROVISION_ARGS="--baseline REF")
	scripts/build-images.sh bookworm
	python bench/provision/run.py $(BENCH_PROVISION_ARGS)

lock: ## Re-lock requirements.txt (Python 3.13) and requirements-2.19.txt (Python 3.11) from their .in files
	@scripts/lock.sh

clean: ## Remove build outputs (keeps the venv and the images)
	rm -rf build .pytest_cache
