# Issue #25, fourth stage: the one-model candidate's STDiT (configs/shapes/stdit_shapes4x.py, 6,000 steps, loss
# still falling) continued from its EMA weights for another 6,000 steps at half the learning rate.
#   python tools/train.py configs/shapes/stdit_shapes4x_more.py
_base_ = ["./stdit_shapes4x.py"]

train = dict(outputs="runs/stdit_shapes4x_more", max_steps=6000, lr=3e-4, warmup_steps=100)
ckpt = dict(init="weights/shapes/candidate4x/stdit.safetensors")
