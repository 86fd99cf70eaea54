# Issue #25, the VAE decoders again: the candidate VAE (after configs/shapes/vae_shapes4x_decoder.py's 300 steps,
# which lifted the 48-frame val_long round trip from 34 to 39 of 48 judged) fine-tuned for 600 more steps, the
# learning rate annealed on a half cosine (21 min). The encoders stay frozen, so the STDiT's latents do not change.
#   python tools/train_vae.py configs/shapes/vae_shapes4x_decoder_more.py
_base_ = ["./vae_shapes4x_decoder.py"]

vae_init = "weights/shapes/candidate4x/vae.safetensors"
vae_train = dict(outputs="runs/vae_shapes4x_decoder_more", max_steps=600, lr=1e-4, warmup_steps=20,
                 lr_schedule="cosine", min_lr=1e-5, ckpt_every=200, sample_every=600)
