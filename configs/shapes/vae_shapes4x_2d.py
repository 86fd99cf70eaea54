# Issue #25, first stage of a benchmark VAE that keeps a shape crossing the border: the 2-D VAE at 4x instead of
# 8x (64x64 frames -> 16x16x4 latents), trained from the start on single frames of border-crossing and exit
# windows. Not yet a shipped model: the temporal VAE and the STDiT (patch 2x2 or 4x4 on 16x16 latents) follow.
#   python tools/make_shapes.py --out data/shapes_frames --clips-per-class 300 --val-clips-per-class 30 \
#       --frames 17 --long-fraction 0.3 --exit-fraction 0.1 --val-long-clips-per-class 4 --long-frames 48 --seed 0
#   python tools/train_vae.py configs/shapes/vae_shapes4x_2d.py
_base_ = ["./vae_shapes_2d.py"]

num_frames = 17
vae = dict(vae_2d=dict(config=dict(
    down_block_types=("DownEncoderBlock2D",) * 3,  # two downsamplings: 4x
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 64),
)))
dataset = dict(source="data/shapes_frames/train.csv", num_frames=num_frames)
vae_train = dict(outputs="runs/vae_shapes4x_2d", max_steps=1500, warmup_steps=50, ema_decay=0.995, ckpt_every=500,
                 sample_every=500)
