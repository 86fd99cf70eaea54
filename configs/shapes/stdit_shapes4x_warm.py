# Issue #25, a probe: the one-model candidate (configs/shapes/stdit_shapes4x.py) started from the shipped STDiT's
# transformer blocks, embedders of time and class included (same width and depth); only the patch embedding and
# the final layer, whose shapes differ (4x4 patches of another VAE's latents), start afresh. Its loss curve is set
# against the from-nothing run's at equal steps (docs/shapes_model.md: worth about 1,000 steps). The init file is
# the shipped weights without those three tensors:
#   python -c "from safetensors.torch import load_file, save_file; w = load_file('weights/shapes/stdit.safetensors'); \
#       [w.pop(k) for k in ('final_layer.linear.bias', 'final_layer.linear.weight', 'x_embedder.proj.weight')]; \
#       save_file(w, 'runs/stdit_shipped_blocks.safetensors')"
#   python tools/train.py configs/shapes/stdit_shapes4x_warm.py
_base_ = ["./stdit_shapes4x.py"]

train = dict(outputs="runs/stdit_shapes4x_warm", max_steps=6000)
ckpt = dict(init="runs/stdit_shipped_blocks.safetensors")
