# Two commands on a fresh machine: `make run` (the service, default config) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install run test bench clean

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU wheel, first: a looser torch requirement would pull the CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	# tts: piper-tts is GPL-3.0+, an optional extra that the default config uses
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,tts]'
	# resemblyzer only carries the GE2E weights we load; its metadata asks for the sdist-only
	# `webrtcvad` (which needs pkg_resources), so it goes in without deps: webrtcvad-wheels
	# and librosa come from our own dependencies
	$(BIN)/pip install --quiet --no-deps -c constraints.txt resemblyzer
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/speechfleet serve --config config.yml

test: $(STAMP)
	# the slowest tests named at the end, so a suite that grows shows where
	$(BIN)/python -m pytest --durations=25

# the bench extra: the load generator's client (aiohttp), and flask for bench_peers.py's peer
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/bench_fleet.py
	$(BIN)/python bench/bench_stt.py
	$(BIN)/python bench/bench_tts.py
	$(BIN)/python bench/bench_denoise.py

clean:
	rm -rf $(VENV)
