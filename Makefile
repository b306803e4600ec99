# The two quick-start commands are `make run` and `make test`; both set themselves up.
# Everything lives in a local virtualenv (.venv); the Kafka jars are cached outside the repo.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-reliability images test-containers bench lint check clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
		|| { echo "zoom-kafka-connector needs Python 3.11+ (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run the connector: local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS is set), source and worker
run: $(STAMP)
	$(BIN)/zoom-connector run

## run every test; the Kafka tests find or start a real broker
test: $(STAMP)
	$(BIN)/python -m pytest

## the reliability suite: faults (broker outage, kill -9, SIGSTOP, state loss), Zoom's retries,
## fuzzing, security, and a 10-minute soak (SOAK_SECONDS=60 shortens it); see tests/reliability
test-reliability: $(STAMP)
	$(BIN)/python -m pytest tests/reliability

## the images of the container tests, built locally (Docker engine, compose, Kafka, registry,
## the project's image; as root; cached): see tests/images/build.sh
images: $(STAMP)
	bash tests/images/build.sh

## the container tests: the project's image and docker compose (needs `make images` first)
test-containers: $(STAMP)
	$(BIN)/python -m pytest tests/containers

## the benchmark (bench/, ~25 min; BENCH_ARGS=--quick for ~3 min): figures beside their ceilings,
## results in bench/results/. Needs wrk on the PATH (Debian/Ubuntu: apt-get install wrk).
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "the benchmark needs wrk (Debian/Ubuntu: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

## lint, format and types, plus the drift checks of the generated schemas and AsyncAPI document
check: $(STAMP)
	$(BIN)/zoom-connector schemas check
	$(BIN)/zoom-connector asyncapi check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
