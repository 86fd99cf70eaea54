# Issue #25, fifth stage: the 12,000-step candidate (configs/shapes/stdit_shapes4x_more.py, loss still falling at
# a flat learning rate) continued for 7,000 steps with the learning rate annealed on a half cosine from 3e-4 to
# 1e-5 (81 min on the 2-core AMD EPYC; judged in docs/shapes_model.md, "Annealed to 19,000 steps").
#   python tools/train.py configs/shapes/stdit_shapes4x_anneal.py
_base_ = ["./stdit_shapes4x.py"]

train = dict(outputs="runs/stdit_shapes4x_anneal", max_steps=7000, lr=3e-4, warmup_steps=100,
              lr_schedule="cosine", min_lr=1e-5)
ckpt = dict(init="weights/shapes/candidate4x/stdit_12k.safetensors")
