# Latte-XL/2 trained on UCF-101 (256x256, 16 frames), class-conditional on the 101 actions.
#   python tools/generate.py configs/latte/ucf101_256.py --class PlayingGuitar --frames 16
#   python tools/generate.py configs/latte/ucf101_256.py --class PlayingGuitar --steps 250 --sampler ddpm  # Latte's
#   python tools/generate.py configs/latte/ucf101_256.py --list-classes
# Needs pretrained_models/Latte/ucf101.pt and pretrained_models/sd-vae-ft-ema/ (nothing is downloaded).
_base_ = ["./_latte_base.py"]

num_classes = 101
class_names = "ucf101"  # Latte's ids: the sorted UCF-101 folder names, ApplyEyeMakeup = 0 ... YoYo = 100

model = dict(num_classes=num_classes)

# Latte's ucf101_sample.yaml: guidance 7.0 on all 4 latent channels, null class 101 (= num_classes).
scheduler = dict(cfg_scale=7.0)

ckpt = dict(model="pretrained_models/Latte/ucf101.pt")
file_notes = {"ckpt.model": "Latte's released UCF-101 Latte-XL/2 weights, ucf101.pt from huggingface.co/maxin-cn/Latte"}
