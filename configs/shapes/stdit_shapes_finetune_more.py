# Second stage of the frame-masked shapes model (docs/shapes_model.md): continues from the first stage's EMA
# weights (configs/shapes/stdit_shapes_finetune.py, 1,500 steps) on the same half of the 17-frame set, with a
# larger share of conditioned clips (image-to-video had the largest gap: 47.5% after the first stage). Its
# EMA weights after 3,000 steps are weights/shapes/frames/stdit.safetensors (the run was launched with 4,500
# steps and stopped at the step-3,000 checkpoint; the LR is flat after warm-up, so this config, which says
# 3,000, makes the same weights):
#   python tools/train.py configs/shapes/stdit_shapes_finetune_more.py
_base_ = ["./stdit_shapes_finetune.py"]

train = dict(
    outputs="runs/stdit_shapes_finetune_more",
    max_steps=3000,
    lr=3e-4,
    warmup_steps=100,
    frame_mask=dict(none=0.35, first=0.3, first_k=0.25, last_k=0.1, max_k=7),
)

# The first stage's output (its run folder), which was weights/shapes/frames/stdit.safetensors until this
# stage replaced it.
ckpt = dict(init="runs/stdit_shapes_finetune/model_ema.safetensors")
