"""How much of the shapes benchmark a video VAE keeps (issue #25): the 48 val_long clips through it, judged for
consistency, and 120 held-out 16-frame clips judged and their PSNR. With `2d`, only the 2-D VAE (each frame
encoded and decoded alone); else the whole VAE, window by window as the pipeline makes long clips.

    python benchmarks/shapes_vae_ceiling.py configs/shapes/stdit_shapes4x.py runs/vae_shapes4x_2d/vae.safetensors 2d
    python benchmarks/shapes_vae_ceiling.py configs/shapes/stdit_shapes4x.py weights/shapes/candidate4x/vae.safetensors

Reads data/shapes_frames (make-shapes with --frames 17 --val-long-clips-per-class 4, docs/shapes_model.md).
"""

import argparse
import json
import time
from types import SimpleNamespace

import torch

from opensora_lite.commands.eval import _dataset, _first_frames, _rate, _reasons, _reconstruct_in_windows, _spread
from opensora_lite.config import load_config
from opensora_lite.eval.metrics import psnr
from opensora_lite.eval.shapes_judge import judge_accuracy, judge_consistency
from opensora_lite.inference.pipeline import VideoPipeline
from opensora_lite.models.convert import load_checkpoint

DATA = SimpleNamespace(data="data/shapes_frames")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("vae")
    p.add_argument("only_2d", nargs="?", choices=["2d"])
    args = p.parse_args()
    torch.manual_seed(0)
    pipe = VideoPipeline.from_loaded_config(load_config(args.config), args.config, random_init=True)  # the VAE only
    load_checkpoint(pipe.vae, args.vae)
    pipe.vae.eval()
    t0 = time.time()
    val_long = _dataset(DATA, "val_long", 48, pipe.image_size)
    verdicts = []
    with torch.no_grad():
        for i in range(len(val_long)):
            real, label = _first_frames(val_long, i, 48, pipe.image_size)  # (3, 48, H, W)
            if args.only_2d:
                rec = pipe.vae.image_decode(pipe.vae.image_encode(real[None]))[0]
            else:
                rec = _reconstruct_in_windows(pipe, real)
            verdicts.append(judge_consistency(rec, label))
    val = _dataset(DATA, "val", 16, pipe.image_size)
    clips = [_first_frames(val, i, 16, pipe.image_size) for i in _spread(len(val), 120)]
    real = torch.stack([c for c, _ in clips])  # (120, 3, 16, H, W)
    labels = [label for _, label in clips]
    with torch.no_grad():
        if args.only_2d:
            recon = torch.cat([pipe.vae.image_decode(pipe.vae.image_encode(real[i:i + 8])) for i in range(0, 120, 8)])
        else:
            recon = torch.cat([pipe.decode(pipe.encode(real[i:i + 8]), 16) for i in range(0, 120, 8)])
    recon = recon.clamp(-1, 1)
    print(json.dumps(dict(vae=args.vae, val_long_consistent=_rate(verdicts), failures=_reasons(verdicts),
                          val16_judged=judge_accuracy(recon, labels), real_judged=judge_accuracy(real, labels),
                          psnr_db=psnr((recon + 1) / 2, (real + 1) / 2).mean().item(), seconds=time.time() - t0)))


if __name__ == "__main__":
    main()
