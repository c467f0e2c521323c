# ssbfrac: two commands.
#   make run    set up .venv (first time) and run the default case cases/bucci2017.yaml
#   make test   set up .venv (first time) and run the test suite
# Other targets: make mesh | make bench | make clean
VENV      ?= .venv
CASE      ?= cases/bucci2017.yaml
OUT       ?= results/bucci2017
NP        ?= 1
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.ssbfrac-installed

.PHONY: run test mesh bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@set -e; py=$$(scripts/find-python); \
	echo "ssbfrac: creating $(VENV) with $$py ($$($$py -V 2>&1))"; \
	[ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[wheel,test]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/mpiexec -n $(NP) $(BIN)/ssbfrac run $(CASE) --out $(OUT) --overwrite

mesh: $(STAMP)
	$(BIN)/ssbfrac mesh $(CASE) --out $(OUT)-mesh --preview

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results build *.egg-info
