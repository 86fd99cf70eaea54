# The frame-masked shapes model's VAE, decoders fine-tuned on clips whose shape crosses the border
# (docs/shapes_model.md). The 2-D VAE was trained on clips whose shape always stays inside, and decoded a
# shape leaving the frame in the wrong colour (a green circle came back yellow, red, then purple) and size:
# reconstructions of the 48-frame val_long clips failed the consistency judge, 0 of 24. The encoders stay
# frozen, so the latents (and the STDiT trained on them) are unchanged; the decoders learn the windows and
# exit windows of data/shapes_frames (configs/shapes/stdit_shapes_finetune_exit.py says how it is made):
#   python tools/train_vae.py configs/shapes/vae_shapes_frames_decoder.py \
#       --vae_init runs/vae_shapes_temporal_17/vae.safetensors
_base_ = ["./vae_shapes_decoder.py"]

num_frames = 17
dataset = dict(source="data/shapes_frames/train.csv", num_frames=num_frames)

vae_train = dict(
    outputs="runs/vae_shapes_frames_decoder",
    max_steps=600,
)
