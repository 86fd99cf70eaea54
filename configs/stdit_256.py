# STDiT-XL/2 at 256x256, 16 frames, with Open-Sora v1.2's video VAE (SDXL 2-D VAE + temporal VAE) and
# rectified flow (30 steps, guidance 7.0 as Open-Sora v1.2's inference config), 1000 classes.
#   python tools/generate.py configs/stdit_256.py --class 207 --frames 16 --ckpt PATH --vae-ckpt PATH
#   python tools/generate.py configs/stdit_256.py --random-init --frames 16     # smoke run, no weights
# No weights for this config ship with the project (none can be downloaded here): train them with
# tools/train.py, or initialise the spatial blocks from an ImageNet DiT-XL/2 checkpoint (ckpt.init).
_base_ = ["./vae/opensora_v1_2.py"]

num_frames = 16
image_size = (256, 256)
num_classes = 1000
class_names = "imagenet"  # --class takes these names (opensora_lite/data/class_names.py)

model = dict(
    type="STDiT-XL/2",
    input_size=(4, 32, 32),  # latent (T', H', W') of 16 frames at 256x256
    in_channels=4,
    num_classes=num_classes,
    learn_sigma=True,
)

scheduler = dict(
    type="rflow",
    num_sampling_steps=30,
    cfg_scale=7.0,
    sample_method="logit-normal",
    use_timestep_transform=True,
)

dataset = dict(
    type="VideoClipDataset",
    source="data/videos/train.csv",  # path,label CSV of your clips
    num_frames=num_frames,
    size=image_size,
)

train = dict(outputs="runs/stdit_256", batch_size=8, lr=1e-4, warmup_steps=1000, ema_decay=0.9999,
             precision="bf16", plugin="zero2")

ckpt = dict(
    model="pretrained_models/stdit_xl2_256.safetensors",
    vae="pretrained_models/opensora_vae_v1_2.safetensors",
)

inference = dict(num_frames=num_frames, fps=8)
