# Issue #26 on the shapes benchmark: the shipped model (square 64x64 clips only) fine-tuned in buckets on clips
# of 64x64, 48x96 and 96x48 with still images beside them (docs/shapes_model.md, "Buckets").
#   python tools/make_shapes.py --out data/shapes_mixed --clips-per-class 150 --val-clips-per-class 12 \
#       --sizes 64x64 48x96 96x48 --stills-per-class 30 --seed 1
#   python tools/train.py configs/shapes/stdit_shapes_buckets.py
#   python tools/eval.py configs/shapes/stdit_shapes_buckets.py --modes sizes --sizes 64x64 48x96 96x48 \
#       --data data/shapes_mixed --per-class 8 --ckpt runs/stdit_shapes_buckets/model_ema.safetensors
_base_ = ["./stdit_shapes.py"]

dataset = dict(source="data/shapes_mixed/train.csv")
# 64px at 1:1, 1:2 and 2:1 is 64x64, 48x96 and 96x48; stills go to the 1-frame buckets (64 a batch). Clips
# take batches of 4,096 tokens: 32 at 64x64 (128 tokens), 28 at 48x96 and 96x48 (144 tokens).
bucket_config = {"64px": {1: (1.0, 64), 16: (1.0, None)}}
train = dict(
    outputs="runs/stdit_shapes_buckets",
    latent_cache="data/shapes_mixed/latents_buckets.safetensors",
    batch_tokens=4096,
    max_steps=1500,
    lr=3e-4,
    warmup_steps=100,
)
ckpt = dict(init="weights/shapes/stdit.safetensors")
