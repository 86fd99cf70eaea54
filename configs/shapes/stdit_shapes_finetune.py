# How weights/shapes/frames/stdit.safetensors was made: the shipped model (16-frame clips, no frame masks)
# fine-tuned on the 17-frame benchmark with window clips and frame masks, on the 17-frame VAE
# (configs/shapes/stdit_shapes_frames.py says how that was made). Data: tools/make_shapes.py --out data/shapes
# --clips-per-class 300 --val-clips-per-class 30 --frames 17 --long-fraction 0.3 --val-long-clips-per-class 4
# --long-frames 48 --seed 0
#   python tools/train.py configs/shapes/stdit_shapes_finetune.py
_base_ = ["./stdit_shapes_frames.py"]

# Every other clip of train.csv (1,800 of 3,600, windows included): encoding the latent cache costs ~10 s per
# 16 clips on a loaded 2-core CPU, so the fine-tune reads half the set. Made with
#   python -c "import csv; r = list(csv.DictReader(open('data/shapes/train.csv'))); w = csv.DictWriter(
#   open('data/shapes/train_half.csv', 'w', newline=''), r[0].keys()); w.writeheader(); w.writerows(r[::2])"
dataset = dict(source="data/shapes/train_half.csv")

train = dict(
    outputs="runs/stdit_shapes_finetune",
    latent_cache="data/shapes/latents_half.safetensors",
    max_steps=1500,
    lr=3e-4,
    warmup_steps=100,
)

ckpt = dict(init="weights/shapes/stdit.safetensors", vae="weights/shapes/frames/vae.safetensors")
