# Issue #25, fourth stage: the one-model candidate's STDiT (configs/shapes/stdit_shapes4x.py, 6,000 steps, loss
# still falling) continued from its EMA weights for another 6,000 steps at half the learning rate (77 min). Its EMA
# weights are weights/shapes/candidate4x/stdit_12k.safetensors; judged (eval_results/candidate4x_12k/):
#   python tools/train.py configs/shapes/stdit_shapes4x_more.py
#   python tools/eval.py configs/shapes/stdit_shapes4x.py --ckpt weights/shapes/candidate4x/stdit_12k.safetensors \
#       --data data/shapes_frames --real-clips 120 --modes uncond i2v extend --out runs/eval_candidate_more
_base_ = ["./stdit_shapes4x.py"]

train = dict(outputs="runs/stdit_shapes4x_more", max_steps=6000, lr=3e-4, warmup_steps=100)
ckpt = dict(init="weights/shapes/candidate4x/stdit.safetensors")
