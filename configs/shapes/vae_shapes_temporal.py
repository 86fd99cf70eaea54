# Stage 2 of the shapes VAE: the causal temporal VAE on the latents of the frozen 2-D VAE; at the end
# shift/scale are measured on the clips and the pipeline is exported.
#   python tools/train_vae.py configs/shapes/vae_shapes_temporal.py --vae_init runs/vae_shapes_2d/vae.safetensors
_base_ = ["./vae_shapes.py"]

vae_train = dict(
    outputs="runs/vae_shapes_temporal",
    stage="temporal",
    batch_size=4,
    max_steps=1800,
    lr=1e-3,
    warmup_steps=100,
    recon_loss="mse",
    kl_weight=1e-6,
    latent_loss_weight=1.0,
    pixel_loss_weight=0.0,  # latents only: the pixel term costs a 2-D decoder pass per step
    ema_decay=0.999,
    ckpt_every=500,
    sample_every=500,
    log_every=100,
)
