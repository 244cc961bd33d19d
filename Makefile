# The two commands a user needs: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-all lint benchmarks images clean
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	# ImageBind's wheel declares torchaudio/pytorchvideo, which would replace the pinned torch: no deps.
	$(PY) -m pip install -q --no-deps imagebind-unofficial==0.1.1
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/moca demo --out .moca/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check src components pipelines tests benchmarks

benchmarks: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

# Needs a Docker engine (none on the build machines): see docker/README.md.
images:
	@command -v docker >/dev/null || { echo "no docker engine here: images not built"; exit 1; }
	docker build -f docker/Dockerfile.cpu -t moca-cpu:$(IMAGE_TAG) .
	docker build -f docker/Dockerfile.gpu -t moca-gpu:$(IMAGE_TAG) .

clean:
	rm -rf .moca .pytest_cache
