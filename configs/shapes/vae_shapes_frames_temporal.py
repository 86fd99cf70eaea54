# Step 2 of retraining the shapes VAE on shapes that cross the border: the temporal VAE on the latents of
# the 2-D VAE of step 1 (configs/shapes/vae_shapes_frames_2d.py), 17-frame clips of data/shapes_frames; shift
# and scale are measured again at the end.
#   python tools/train_vae.py configs/shapes/vae_shapes_frames_temporal.py \
#       --vae_init runs/vae_shapes_frames_2d/vae.safetensors
_base_ = ["./vae_shapes_temporal.py"]

num_frames = 17
dataset = dict(source="data/shapes_frames/train.csv", num_frames=num_frames)

vae_train = dict(
    outputs="runs/vae_shapes_frames_temporal",
    max_steps=400,
    lr=3e-4,
    warmup_steps=50,
    ckpt_every=200,
    sample_every=400,
)
