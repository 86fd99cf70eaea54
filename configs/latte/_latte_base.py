# What the four released Latte models share (Vchitect/Latte, configs/*/*_sample.yaml): Latte-XL/2 at 256x256 with
# 16 frames, the SD VAE frame by frame, and DiT's IDDPM (linear betas, 1000 steps, epsilon + learned variance).
# Latte samples with 250 DDPM steps; the default here is DDIM with 50 steps, which a CPU can finish.
#   --steps 250 --sampler ddpm   gives Latte's own setting
num_frames = 16
image_size = (256, 256)

model = dict(
    type="Latte-XL/2",
    input_size=(num_frames, 32, 32),  # latent (T, H, W): the SD VAE keeps every frame and divides H, W by 8
    in_channels=4,
    learn_sigma=True,
)

vae = dict(
    type="VideoAutoencoderKL",
    from_pretrained="pretrained_models/sd-vae-ft-ema",
    micro_batch_size=4,
    scaling_factor=0.18215,  # SD 1.x's latent scale, as Latte's sample.py
)

scheduler = dict(
    type="iddpm",
    timestep_respacing="50",
    sampler="ddim",
    cfg_scale=1.0,
)

inference = dict(num_frames=num_frames, fps=8)

# What each local file is: the one-line error for a missing file quotes it.
file_notes = {
    "vae.from_pretrained": "the SD VAE stabilityai/sd-vae-ft-ema as a diffusers folder (config.json + "
                           "diffusion_pytorch_model.safetensors), e.g. `huggingface-cli download "
                           "stabilityai/sd-vae-ft-ema --local-dir pretrained_models/sd-vae-ft-ema`",
}
