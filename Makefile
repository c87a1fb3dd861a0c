# Two commands on a fresh machine (only Python + pip needed):
#   make demo   – create .venv if missing, convert resnet34 -> MG, audit vs base, export + verify ONNX
#   make test   – the test suite (CI runs exactly this)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT := out/mg_resnet34_g32c64

.PHONY: demo test test-full bench env clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/mgcompile convert resnet34 --group-size 32 -o $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not full"

# The whole matrix at full size (slow; not run in CI).
test-full: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf out build *.egg-info
