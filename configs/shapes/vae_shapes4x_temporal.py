# Issue #25, second stage: the causal temporal VAE (2x in time: 17 frames -> 9 latent frames, frame 0 alone in
# latent frame 0) on the 16x16x4 latents of the frozen 4x 2-D VAE; at the end shift/scale are measured.
#   python tools/train_vae.py configs/shapes/vae_shapes4x_temporal.py --vae_init runs/vae_shapes4x_2d/vae.safetensors
_base_ = ["./vae_shapes4x_2d.py"]

vae_train = dict(
    outputs="runs/vae_shapes4x_temporal",
    stage="temporal",
    batch_size=4,
    max_steps=1000,
    lr=1e-3,
    warmup_steps=100,
    recon_loss="mse",
    kl_weight=1e-6,
    latent_loss_weight=1.0,
    pixel_loss_weight=0.0,
    ema_decay=0.995,
    ckpt_every=250,
    sample_every=500,
    log_every=100,
)
