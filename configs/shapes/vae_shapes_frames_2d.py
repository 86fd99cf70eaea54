# Step 1 of retraining the shapes VAE on shapes that cross the border (docs/shapes_model.md, frame-masked
# model): the 2-D VAE fine-tuned, encoder included, on single frames of data/shapes_frames (windows and exit
# windows), from the frame-masked model's VAE. Its latents differ from the old ones, so the temporal VAE and
# then the STDiT follow (configs/shapes/vae_shapes_frames_temporal.py).
#   python tools/train_vae.py configs/shapes/vae_shapes_frames_2d.py --vae_init weights/shapes/frames/vae.safetensors
_base_ = ["./vae_shapes_2d.py"]

num_frames = 17
dataset = dict(source="data/shapes_frames/train.csv", num_frames=num_frames)

vae_train = dict(
    outputs="runs/vae_shapes_frames_2d",
    max_steps=800,
    lr=3e-4,
    warmup_steps=50,
    ckpt_every=200,
    sample_every=400,
)
