# opensora_lite: set-up, the main job and the tests on a fresh CPU machine.
# torch is pinned here (the CPU wheel of this machine), not in setup.py, so GPU users keep their own.
PY ?= python3
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# colossalai 0.5.0 declares pins that conflict with everything else: install it without
# its dependencies and add the ones it really imports (see ../shared/DESIGN.md section 7).
COLOSSALAI_DEPS := psutil "peft>=0.17" transformers accelerate einops galore-torch bitsandbytes

.PHONY: install install-dist demo test shapes-model

install:
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e ".[test]"

install-dist: install
	$(PIP) install -q $(COLOSSALAI_DEPS)
	$(PIP) install -q --no-deps colossalai==0.5.0

demo: install
	$(PY) tools/inference.py configs/shapes/stdit_shapes.py --class 5 --frames 16 --save-dir samples/demo

test: install-dist
	$(PY) -m pytest -q tests

# Reproduce the shipped default model (weights/shapes/*.safetensors) from nothing on a CPU (README: times).
# The STDiT's latent cache is made with weights/shapes/vae.safetensors, so the VAE is copied there first.
shapes-model: install-dist
	$(PY) tools/make_shapes.py --out data/shapes --clips-per-class 300 --val-clips-per-class 30 --seed 0
	$(PY) tools/train_vae.py configs/shapes/vae_shapes_2d.py
	$(PY) tools/train_vae.py configs/shapes/vae_shapes_temporal.py --vae_init runs/vae_shapes_2d/vae.safetensors
	mkdir -p weights/shapes
	cp runs/vae_shapes_temporal/vae.safetensors weights/shapes/vae.safetensors
	$(PY) tools/train.py configs/shapes/stdit_shapes.py
	cp runs/stdit_shapes/model_ema.safetensors weights/shapes/stdit.safetensors
