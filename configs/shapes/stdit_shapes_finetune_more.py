# Second stage of the frame-masked shapes model (docs/shapes_model.md): continues from the first stage's EMA
# weights (configs/shapes/stdit_shapes_finetune.py, 1,500 steps) on the same half of the 17-frame set, with a
# larger share of conditioned clips (image-to-video had the largest gap: 47.5% after the first stage).
#   python tools/train.py configs/shapes/stdit_shapes_finetune_more.py
_base_ = ["./stdit_shapes_finetune.py"]

train = dict(
    outputs="runs/stdit_shapes_finetune_more",
    max_steps=4500,
    lr=3e-4,
    warmup_steps=100,
    frame_mask=dict(none=0.35, first=0.3, first_k=0.25, last_k=0.1, max_k=7),
)

ckpt = dict(init="weights/shapes/frames/stdit.safetensors")
