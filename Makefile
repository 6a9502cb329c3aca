# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
AZURITE := $(VENV)/azurite/node_modules/.bin/azurite-blob

.PHONY: demo test bench torture lint clean lambda-package

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo:
	@[ $(VENV)/.installed-embed -nt pyproject.toml ] || { $(PYTHON) -m venv $(VENV) && \
		$(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -e '.[embed]' && \
		touch $(VENV)/.installed-embed; }
	$(PY) examples/demo.py

# the Azure Blob emulator of tests/unit/test_remote_stores.py (without npm those tests skip)
$(AZURITE):
	@if command -v npm >/dev/null; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/azurite azurite@3.37.0; \
	else echo "npm not found: the az:// tests will be skipped"; fi

test: $(STAMP) $(AZURITE)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install --quiet psutil faiss-cpu hnswlib usearch chromadb lancedb memvid-sdk
	$(PY) bench/run_all.py

# kill -9, flipped bytes, truncations, crafted lengths, bombs and a reader soak; counts
# from MEMVID_TORTURE_* (docs/reliability.md); writes bench/results/torture-<stamp>.md/.json
torture: $(STAMP)
	$(PY) -m tests.torture

# dist/lambda/memvid-lambda.zip for a Python 3.12 x86_64 Lambda (manylinux wheels, unchecked-hash
# .pyc files) and its size against the 250 MB limit; LAMBDA_ARGS=--embed bundles the embedder,
# --from-venv copies this venv's packages instead of downloading (examples/serverless/README.md)
lambda-package: $(STAMP)
	$(PY) examples/serverless/build_package.py $(LAMBDA_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
