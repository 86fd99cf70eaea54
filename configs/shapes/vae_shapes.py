# The tiny video VAE of the moving-shapes benchmark (docs/shapes_benchmark.md):
# a small diffusers AutoencoderKL per frame (64x64x3 -> 8x8x4) followed by a small causal temporal VAE
# (2x in time: 16 frames -> 8 latent frames). shift/scale are buffers: tools/train_vae.py measures them
# on the training clips so the latents the diffusion model sees have zero mean and unit variance.
num_frames = 16
image_size = (64, 64)

vae = dict(
    type="VideoAutoencoderPipeline",
    vae_2d=dict(
        type="VideoAutoencoderKL",
        config=dict(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(16, 32, 64, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
        ),
        micro_batch_size=16,
        scaling_factor=1.0,
    ),
    vae_temporal=dict(
        type="TemporalVAE",
        in_out_channels=4,
        latent_embed_dim=4,
        embed_dim=4,
        filters=16,
        num_res_blocks=1,
        channel_multipliers=(1, 2, 2, 4),
        temporal_downsample=(False, True, False),  # 2x in time (Open-Sora: 4x, (False, True, True))
        num_groups=8,
    ),
    micro_frame_size=17,
)

dataset = dict(
    type="VideoClipDataset",
    source="data/shapes/train.csv",
    num_frames=num_frames,
    size=image_size,
    start="center",
)

ckpt = dict(vae="weights/shapes/vae.safetensors")
