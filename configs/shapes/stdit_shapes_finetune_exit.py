# Third stage of the frame-masked shapes model (docs/shapes_model.md): continues from the second stage's EMA
# weights (configs/shapes/stdit_shapes_finetune_more.py) on the whole 17-frame set, now with exit windows:
# clips that start as the shape leaves or after it has gone, which train.csv marks frame_mask=first_k, so
# they are only ever trained as continuations (given black frames, the model must keep them black instead
# of drawing a new shape). Data:
#   python tools/make_shapes.py --out data/shapes_frames --clips-per-class 300 --val-clips-per-class 30 \
#       --frames 17 --long-fraction 0.3 --exit-fraction 0.1 --val-long-clips-per-class 4 --long-frames 48 --seed 0
# (its val and val_long clips are those of data/shapes: same seed). Then
#   python tools/train.py configs/shapes/stdit_shapes_finetune_exit.py
_base_ = ["./stdit_shapes_finetune_more.py"]

dataset = dict(source="data/shapes_frames/train.csv")

train = dict(
    outputs="runs/stdit_shapes_finetune_exit",
    latent_cache="data/shapes_frames/latents.safetensors",
    max_steps=5000,
    lr=3e-4,
    warmup_steps=100,
    frame_mask=dict(none=0.3, first=0.3, first_k=0.3, last_k=0.1, max_k=7),
)

# The second stage's output (its run folder), which is weights/shapes/frames/stdit.safetensors until this
# stage replaces it.
ckpt = dict(init="runs/stdit_shapes_finetune_more/model_ema.safetensors")
