# The shipped default: a small STDiT trained on the moving-shapes benchmark (12 classes, 16 frames, 64x64).
#   python tools/inference.py configs/shapes/stdit_shapes.py --class 5 --frames 16
# Reproduce the shipped weights with `make shapes-model` (see README).
_base_ = ["./vae_shapes.py"]

num_classes = 12

model = dict(
    type="STDiT",
    input_size=(8, 8, 8),  # latent (T', H', W') of 16 frames at 64x64; positions follow the real input
    patch_size=(1, 2, 2),
    in_channels=4,
    hidden_size=128,
    depth=6,
    num_heads=4,
    mlp_ratio=4.0,
    class_dropout_prob=0.1,
    num_classes=num_classes,
    learn_sigma=False,
)

scheduler = dict(
    type="rflow",
    num_sampling_steps=25,
    cfg_scale=3.0,
    sample_method="logit-normal",
)

train = dict(
    outputs="runs/stdit_shapes",
    plugin="ddp",
    precision="fp32",
    seed=0,
    batch_size=32,
    max_steps=2500,
    lr=6e-4,
    warmup_steps=200,
    grad_clip=1.0,
    ema_decay=0.999,
    ckpt_every=250,
    log_every=50,
    # Every clip of `dataset` is encoded once by the VAE into this file, then training reads latents.
    latent_cache="data/shapes/latents.safetensors",
)

ckpt = dict(model="weights/shapes/stdit.safetensors")

inference = dict(num_frames=16, fps=8)
