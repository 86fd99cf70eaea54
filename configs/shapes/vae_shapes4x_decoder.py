# Issue #25, third VAE stage: the encoders (so the latents the STDiT learns) stay frozen; the temporal and 2-D
# decoders are fine-tuned together on pixels of 17-frame windows, border-crossing and exit windows included.
# After the temporal stage alone, 48-frame val_long clips through the VAE kept their colour in 34 of 48
# (the latents hold it: the 2-D round trip keeps 45 of 48).
#   python tools/train_vae.py configs/shapes/vae_shapes4x_decoder.py \
#       --vae_init runs/vae_shapes4x_temporal/vae.safetensors
_base_ = ["./vae_shapes4x_2d.py"]

vae_train = dict(
    outputs="runs/vae_shapes4x_decoder",
    stage="decoder",
    batch_size=4,
    max_steps=300,
    lr=2e-4,
    warmup_steps=50,
    recon_loss="mse",
    ema_decay=0.995,
    ckpt_every=150,
    sample_every=300,
    log_every=50,
)
