# Issue #26, second stage of the bucketed shapes model: continues from the first stage's EMA weights
# (configs/shapes/stdit_shapes_buckets.py, 1,500 steps: 93.8% / 94.8% / 90.6% judged at 64x64 / 48x96 / 96x48)
# for 1,500 steps at a third of the learning rate.
#   python tools/train.py configs/shapes/stdit_shapes_buckets_more.py
_base_ = ["./stdit_shapes_buckets.py"]

train = dict(outputs="runs/stdit_shapes_buckets_more", lr=1e-4, warmup_steps=50)
ckpt = dict(init="runs/stdit_shapes_buckets/model_ema.safetensors")
