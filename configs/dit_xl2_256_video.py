# facebookresearch's ImageNet DiT-XL/2 (256x256) inflated to video: its spatial blocks run on every frame,
# the temporal blocks keep their zero init (so each frame is exactly DiT's output), the SD VAE decodes
# frame by frame (scaling 0.18215, no temporal VAE), and IDDPM samples with 250 DDPM steps as DiT's sample.py.
# Needs two local files (nothing is downloaded):
#   pretrained_models/DiT-XL-2-256x256.pt  (DiT's released checkpoint; read with weights_only=True)
#   pretrained_models/sd-vae-ft-ema/       (diffusers folder of stabilityai/sd-vae-ft-ema)
#   python tools/generate.py configs/dit_xl2_256_video.py --class 207 --frames 16   # golden retriever
num_frames = 16
image_size = (256, 256)
num_classes = 1000
class_names = "imagenet"  # --class takes these names (opensora_lite/data/class_names.py)

model = dict(
    type="STDiT-XL/2",
    input_size=(num_frames, 32, 32),
    in_channels=4,
    num_classes=num_classes,
    learn_sigma=True,
)

vae = dict(
    type="VideoAutoencoderKL",
    from_pretrained="pretrained_models/sd-vae-ft-ema",
    micro_batch_size=4,
    scaling_factor=0.18215,
)

scheduler = dict(
    type="iddpm",
    timestep_respacing="250",
    cfg_scale=4.0,
    cfg_channel=3,  # DiT guides the first 3 latent channels only
)

ckpt = dict(model="pretrained_models/DiT-XL-2-256x256.pt")

inference = dict(num_frames=num_frames, fps=8)
