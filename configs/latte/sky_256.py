# Latte-XL/2 trained on SkyTimelapse (256x256, 16 frames), unconditional: no classes, no guidance, --class is refused.
#   python tools/generate.py configs/latte/sky_256.py --frames 16 --num-samples 4
#   python tools/generate.py configs/latte/sky_256.py --steps 250 --sampler ddpm   # Latte's own setting
# Needs pretrained_models/Latte/skytimelapse.pt and pretrained_models/sd-vae-ft-ema/ (nothing is downloaded).
_base_ = ["./_latte_base.py"]

num_classes = 0

model = dict(num_classes=num_classes)

ckpt = dict(model="pretrained_models/Latte/skytimelapse.pt")
file_notes = {
    "ckpt.model": "Latte's released SkyTimelapse Latte-XL/2 weights, skytimelapse.pt "
                  "from huggingface.co/maxin-cn/Latte",
}
