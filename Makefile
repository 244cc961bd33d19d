# The two commands a user needs: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-all lint benchmarks images check-images deploy clean
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

# Build and push both images to REGISTRY, pin every image of the stack by digest (k8s/images, the cluster
# pipeline config, the Prefect deployment). Needs a Docker engine with buildx (none on the build machines):
# see docker/README.md.
REGISTRY ?=
OVERLAY ?= gpu
images: $(STAMP)
	@command -v docker >/dev/null || { echo "no docker engine here: images not built"; exit 1; }
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=registry.example.com/moca (where the images are pushed)"; exit 2; }
	$(PY) docker/pin_images.py build --registry $(REGISTRY) --tag $(IMAGE_TAG) --git-sha $$(git rev-parse HEAD)

# Refuse a deployment whose images are not all pinned by a real digest; `deploy` runs it before applying.
check-images: $(STAMP)
	$(PY) docker/pin_images.py check k8s/overlays/$(OVERLAY) configs/pipeline_avsbench_s4.yaml pipelines/prefect.yaml

deploy: check-images
	kubectl apply -k k8s/overlays/$(OVERLAY)

clean:
	rm -rf .moca .pytest_cache
