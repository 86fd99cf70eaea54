# Stage 3 of the shapes VAE: the encoders (so the latent space the diffusion model learns) stay frozen;
# the temporal and 2-D decoders are fine-tuned together on pixels, as Stable Diffusion fine-tuned its
# VAE decoder. Safe to run after the diffusion model was trained on the latents.
#   python tools/train_vae.py configs/shapes/vae_shapes_decoder.py --vae_init runs/vae_shapes_temporal/vae.safetensors
_base_ = ["./vae_shapes.py"]

vae_train = dict(
    outputs="runs/vae_shapes_decoder",
    stage="decoder",
    batch_size=4,
    max_steps=600,
    lr=2e-4,
    warmup_steps=50,
    recon_loss="mse",
    ema_decay=0.995,
    ckpt_every=200,
    sample_every=200,
    log_every=50,
)
