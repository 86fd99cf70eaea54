# Stage 1 of the shapes VAE: the 2-D AutoencoderKL on single frames.
#   python tools/train_vae.py configs/shapes/vae_shapes_2d.py
_base_ = ["./vae_shapes.py"]

vae_train = dict(
    outputs="runs/vae_shapes_2d",
    stage="2d",
    batch_size=16,
    frames_per_clip=1,  # 16 different clips (colours, shapes) per step rather than 4 frames of 4
    max_steps=1500,
    lr=1e-3,
    warmup_steps=100,
    recon_loss="mse",
    kl_weight=1e-6,  # per latent value vs per pixel: ~SD's 1e-6 on sums would be 2e-8 here
    ema_decay=0.999,
    ckpt_every=500,
    sample_every=500,
    log_every=100,
)
