# Open-Sora v1.2's video VAE ("OpenSoraVAE_V1_2"): the SDXL 2-D VAE per frame, then the causal temporal VAE
# on 17-frame chunks, then (z - shift) / scale. 8x8 spatial and 4x temporal compression, 4 latent channels.
#
# Weights: this config builds random weights. Load the released ones (a single safetensors file with
# keys spatial_vae.module.*, temporal_vae.*, scale, shift, e.g. hpcai-tech/OpenSora-VAE-v1.2 downloaded by
# hand) with --ckpt, or point vae_2d.from_pretrained at a local diffusers VAE folder (then drop `config`).
vae = dict(
    type="VideoAutoencoderPipeline",
    vae_2d=dict(
        type="VideoAutoencoderKL",
        from_pretrained=None,
        # the SDXL VAE (PixArt-Sigma's "sdxlvae"); 0.13025 is its own factor, which Open-Sora does not use
        config=dict(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            act_fn="silu",
            latent_channels=4,
            norm_num_groups=32,
            sample_size=1024,
            scaling_factor=0.13025,
            force_upcast=True,
        ),
        micro_batch_size=4,
        scaling_factor=0.18215,  # Open-Sora v1.2 hard-codes SD 1.x's latent scale, even on the SDXL VAE
        patch_size=(1, 8, 8),
    ),
    vae_temporal=dict(  # = Open-Sora's VAE_Temporal_SD
        type="TemporalVAE",
        in_out_channels=4,
        latent_embed_dim=4,
        embed_dim=4,
        filters=128,
        num_res_blocks=4,
        channel_multipliers=(1, 2, 2, 4),
        temporal_downsample=(False, True, True),
        num_groups=32,
        activation_fn="swish",
    ),
    micro_frame_size=17,
    # per-channel latent statistics of Open-Sora v1.2 (OpenSoraVAE_V1_2)
    shift=(-0.10, 0.34, 0.27, 0.98),
    scale=(3.85, 2.32, 2.33, 3.06),
    freeze_vae_2d=False,
)
