# Issue #25, third stage: one STDiT for every job (class, image-to-video, continuation, long videos), trained from
# the start with frame masks on the 9x16x16x4 latents of 17-frame clips; patch 4x4 keeps 16 tokens a frame.
#   python tools/train.py configs/shapes/stdit_shapes4x.py
_base_ = ["./stdit_shapes.py"]

num_frames = 17
vae = dict(vae_2d=dict(config=dict(  # the 4x 2-D VAE of configs/shapes/vae_shapes4x_2d.py
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 64),
)))
model = dict(input_size=(9, 16, 16), patch_size=(1, 4, 4))
dataset = dict(source="data/shapes_frames/train.csv", num_frames=num_frames)
train = dict(
    outputs="runs/stdit_shapes4x",
    latent_cache="data/shapes_frames/latents4x.safetensors",
    frame_mask=dict(none=0.4, first=0.25, first_k=0.25, last_k=0.1, max_k=7),
)
# The weights this recipe made (the VAE after its decoder stage, configs/shapes/vae_shapes4x_decoder.py, whose
# frozen encoders give the latents the STDiT was trained on): a candidate, not shipped (docs/shapes_model.md,
# "The one-model candidate").
ckpt = dict(model="weights/shapes/candidate4x/stdit.safetensors", vae="weights/shapes/candidate4x/vae.safetensors")
inference = dict(num_frames=16, fps=8, window=dict(frames=17, overlap=9, aligned=True))
