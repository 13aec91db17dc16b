# Set-up and everyday commands. `make run` and `make test` are the two to remember.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# llama-cpp-python compiles llama.cpp. A -march=native build crashed in the AMX kernels on these VMs, so it is
# built portable (AVX2, no AMX) once into a wheelhouse outside the repo and reused by every later install.
LLAMA_VERSION    := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
WHEELHOUSE       ?= $(HOME)/.cache/support-reply-assistant/wheels-avx2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install run test test-fast lint bench bench-quick ingest draft ui clean browser

install: $(STAMP)

# torch first and pinned: a bare torch requirement would pull gigabytes of CUDA wheels. Everything else is
# resolved against constraints.txt so the install is fast and the same on every machine.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q torch==2.13.0
	@ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) (once; several minutes on 2 cores)..."; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
	    -w $(WHEELHOUSE) llama-cpp-python==$(LLAMA_VERSION); }
	$(PIP) install -q --no-deps $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PIP) install -q -c constraints.txt -e ".[local,dev]"
	touch $(STAMP)

# Chromium for the browser tests (Debian package; Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

ingest: install
	$(VENV)/bin/assistant ingest knowledge_base

run: install
	$(VENV)/bin/assistant ingest knowledge_base
	$(VENV)/bin/assistant ui

draft: install
	$(VENV)/bin/assistant draft "My jacket arrived with a torn sleeve, order 4521"

ui: install
	$(VENV)/bin/assistant ui

test: install browser
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser"

lint: install
	$(VENV)/bin/ruff check assistant ui evals tests scripts

bench: install
	$(PY) scripts/bench.py

bench-quick: install
	$(PY) scripts/bench.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
