# Your own videos (README, "Your own videos"): a folder of clips and stills -> make-csv -> this config -> a model that
# generates at every size it was trained at.
#   opensora-lite make-csv my_clips/ -o data/mine.csv --label-from-folder    # my_clips/<class>/*.mp4, *.png
#   opensora-lite train configs/own_videos.py                                # --dataset.source other.csv
#   opensora-lite generate runs/own_videos --class <folder name> --size 48 96
# The model is the shipped shapes model's size (3.7M parameters, from nothing) on the shapes VAE. That VAE only
# knows the shapes benchmark: the run measures it on your clips at the start and warns below 24 dB. Give `vae`
# and `ckpt.vae` a VAE that keeps your footage: train one on your CSV (opensora-lite train-vae
# configs/shapes/vae_shapes_2d.py --dataset.source data/mine.csv, then the temporal stage), or use Open-Sora's
# (configs/vae/opensora_v1_2.py, with a larger model).
_base_ = ["./shapes/stdit_shapes.py"]

dataset = dict(source="data/mine.csv", start="random")  # classes: the CSV's label column and classes.json
# 64px (a 64x64 pixel count) at the aspect ratio nearest each clip (64x64, 48x96, 96x48, 48x80, ...): clips of 16
# frames, or 8 when shorter, in batches of 4,096 tokens; stills 64 a batch. A small folder needs smaller batches
# (--train.batch_tokens 512). Open-Sora's named resolutions (144p, 240p, ...) work the same.
bucket_config = {"64px": {1: (1.0, 64), 8: (1.0, None), 16: (1.0, None)}}
train = dict(
    outputs="runs/own_videos",
    batch_tokens=4096,
    latent_cache=None,  # or a path: every clip is encoded once, in its bucket (its window then fixed)
    max_steps=3000,
    ckpt_every=500,
    sample_every=500,
)
ckpt = dict(_delete_=True, vae="weights/shapes/vae.safetensors")  # trained from nothing: no model weights
