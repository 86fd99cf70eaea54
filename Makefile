# opensora_lite: set-up, the main job and the tests on a fresh CPU machine.
# torch is pinned here (the CPU wheel of this machine), not in pyproject.toml, so GPU users keep their own.
PY ?= python3
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: install install-train install-dist install-browser demo serve test test-fast shapes-model

# ffmpeg (the Debian package) cuts and rotates the test videos of tests/test_video_io.py with -c copy;
# apt-get runs only where it is missing.
install:
	command -v ffmpeg >/dev/null || (apt-get update -qq && apt-get install -y -qq ffmpeg)
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e ".[test]"

# colossalai 0.5.0 declares pins that conflict with everything else: the [train] extras are the packages it
# really imports, and colossalai itself is installed without its dependencies (docs/install.md).
# Training in one step: the [train] extras are what colossalai really imports, and colossalai goes in without its
# declared pins (the resolver warnings it prints are expected: docs/install.md).
install-train: install
	$(PIP) install -q -e ".[train]"
	$(PIP) install -q --no-deps colossalai==0.5.0

install-dist: install-train install-browser
	$(PIP) install -q -e ".[train,text,test,dev]"

# The web demo's browser test (tests/test_demo.py) drives Debian's chromium with selenium; apt-get runs only where
# they are missing.
install-browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

demo: install
	$(PY) tools/generate.py configs/shapes/stdit_shapes.py --class 5 --frames 16 --save-dir samples/demo

# The web demo on http://127.0.0.1:7860 with the shipped model (Gradio: the [demo] extra).
serve: install
	$(PIP) install -q -e ".[demo]"
	$(PY) tools/serve.py

test: install-dist
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

# The same without the slow tests (torchrun, SIGKILL, torch.compile, package builds).
test-fast: install-dist
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow" tests

# Reproduce the shipped default model (weights/shapes/*.safetensors) from nothing on a CPU (times: docs/shapes_model.md).
# The STDiT's latent cache is made with weights/shapes/vae.safetensors, so the VAE is copied there first.
shapes-model: install-dist
	$(PY) tools/make_shapes.py --out data/shapes --clips-per-class 300 --val-clips-per-class 30 --seed 0
	$(PY) tools/train_vae.py configs/shapes/vae_shapes_2d.py
	$(PY) tools/train_vae.py configs/shapes/vae_shapes_temporal.py --vae_init runs/vae_shapes_2d/vae.safetensors
	mkdir -p weights/shapes
	cp runs/vae_shapes_temporal/vae.safetensors weights/shapes/vae.safetensors
	$(PY) tools/train.py configs/shapes/stdit_shapes.py
	cp runs/stdit_shapes/model_ema.safetensors weights/shapes/stdit.safetensors
