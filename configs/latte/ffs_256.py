# Latte-XL/2 trained on FaceForensics (256x256, 16 frames), unconditional: no classes, no guidance, --class is refused.
#   python tools/generate.py configs/latte/ffs_256.py --frames 16 --num-samples 4
#   python tools/generate.py configs/latte/ffs_256.py --steps 250 --sampler ddpm   # Latte's own setting
# Needs pretrained_models/Latte/ffs.pt and pretrained_models/sd-vae-ft-ema/ (nothing is downloaded).
_base_ = ["./_latte_base.py"]

num_classes = 0

model = dict(num_classes=num_classes)

ckpt = dict(model="pretrained_models/Latte/ffs.pt")
file_notes = {
    "ckpt.model": "Latte's released FaceForensics Latte-XL/2 weights, ffs.pt from huggingface.co/maxin-cn/Latte",
}
