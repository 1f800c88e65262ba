# Developer shortcuts. The two README commands are scripts/run-local and scripts/test;
# these targets call the same scripts, or parts of them, once scripts/bootstrap has run.
VENV := .venv/bin

.PHONY: run test bootstrap lock lint format docs unit workload tools e2e bench bench-ui bench-forward bench-fleet-metrics bench-tunnel clean

run:            ## the cluster manager locally, with a simulated fleet (README command 1)
	./scripts/run-local

test:           ## install everything, then every check and test (README command 2)
	./scripts/test

bootstrap:      ## install system packages, .venv and npm packages
	scripts/bootstrap test

lock:           ## update uv.lock and the files exported from it (requirements.txt, ...)
	scripts/lock

lint:           ## ruff, pyright, codespell
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .
	$(VENV)/pyright
	$(VENV)/codespell

format:         ## rewrite files with ruff
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

docs:           ## README.md's Configuration table, from workload/cluster_manager/options.py
	$(VENV)/python -m tools.options_doc

unit:           ## charm tests (ops.testing)
	$(VENV)/pytest tests/unit

workload:       ## the workload against real PostgreSQL and the HAProxy front
	$(VENV)/pytest tests/workload

tools:          ## the MicroCloud emulator and fleet tools
	$(VENV)/pytest tests/tools

e2e:            ## the deployment in a box (charm-rendered files, real processes, Traefik)
	$(VENV)/pytest tests/e2e

bench:          ## heartbeat throughput and latency; prints figures
	$(VENV)/python -m tools.bench

bench-ui:       ## the UI's fleet queries on 10,000 clusters; prints figures
	$(VENV)/python -m tools.bench_ui

bench-forward:  ## the forwarder's parse+encode rate against promtool's; prints figures
	$(VENV)/python -m tools.bench_forward

bench-fleet-metrics: ## 300 clusters' LXD metrics into Prometheus, memory at 10,000; prints figures
	$(VENV)/python -m tools.bench_fleet_metrics

bench-tunnel:   ## memory per idle reverse tunnel (1,000 of them) and request latency; prints figures
	$(VENV)/python -m tools.bench_tunnel

clean:          ## remove local state and caches (keeps .venv)
	rm -rf .local .pytest_cache .ruff_cache test-artifacts
