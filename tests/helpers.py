"""Shared test setups: tiny configs (VAE, inference, training), a latent cache, a training runner, tools."""
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from opensora_lite.training.frame_masks import KINDS

ROOT = Path(__file__).resolve().parents[1]
SHAPES = str(ROOT / "configs" / "shapes" / "stdit_shapes.py")  # the shipped default model


def load_tool(name: str):
    """The command module behind ``tools/<name>.py`` (``opensora_lite.commands.<name>``, with ``main(argv)``)."""
    return importlib.import_module(f"opensora_lite.commands.{name}")


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")  # run_cli's logging format, not an error line


def run(tool, capsys, *argv) -> tuple:
    """Run a command's ``main`` in-process as its console script does: ``(exit code, stdout, error lines)``,
    the error lines being stderr without log lines. A traceback always fails the test."""
    from opensora_lite.cli import run_cli

    code = run_cli(tool.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]

TINY_VAE = """
vae = dict(
    type="VideoAutoencoderPipeline",
    vae_2d=dict(type="VideoAutoencoderKL", micro_batch_size=4, config=dict(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4)),
    vae_temporal=dict(type="TemporalVAE", filters=8, num_res_blocks=1, num_groups=4),
    micro_frame_size=17,
)
"""
TINY_INFERENCE = TINY_VAE + """
num_classes = 3
num_frames = 8
image_size = (16, 16)
model = dict(type="STDiT", input_size=(2, 8, 8), patch_size=(1, 2, 2), in_channels=4, hidden_size=32,
             depth=1, num_heads=2, num_classes=num_classes, learn_sigma=False, class_dropout_prob=0.1)
scheduler = dict(type="rflow", num_sampling_steps=2, cfg_scale=2.0)
inference = dict(num_frames=8, fps=4)
"""


def write_latent_cache(path: Path, n: int = 24, num_classes: int = 3, seed: int = 0,
                       first_k_every: int = 0) -> Path:
    """Latents whose mean depends on the class, so a model can learn something in a few steps; with
    ``first_k_every`` every such clip is one trained only with its first frames given (``frame_masks``)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    latents = torch.randn(n, 4, 2, 4, 4, generator=gen) * 0.5 + labels.view(-1, 1, 1, 1, 1).float() - 1
    tensors = {"latents": latents, "labels": labels}
    if first_k_every:
        tensors["frame_masks"] = torch.where(torch.arange(n) % first_k_every == 0, KINDS.index("first_k"), -1)
    save_file(tensors, str(path), metadata={"meta": json.dumps({})})
    return path


def write_config(tmp_path: Path, outputs: Path, cache: Path, **train) -> Path:
    settings = dict(outputs=str(outputs), plugin="ddp", precision="fp32", seed=0, batch_size=8, max_steps=6,
                    lr=1e-3, warmup_steps=2, grad_clip=1.0, ema_decay=0.9, ckpt_every=2, log_every=2,
                    # frame masks on: exact resume and N-process equality are tested with them drawn
                    frame_mask=dict(none=0.25, first=0.25, first_k=0.25, last_k=0.25))
    settings.update(train)
    text = f"""
num_classes = 3
model = dict(type="STDiT", input_size=(2, 4, 4), patch_size=(1, 2, 2), in_channels=4, hidden_size=32,
             depth=1, num_heads=2, num_classes=num_classes, learn_sigma=False, class_dropout_prob=0.1)
scheduler = dict(type="rflow", sample_method="logit-normal", num_sampling_steps=4, cfg_scale=2.0)
dataset = dict(type="LatentCacheDataset", cache_path={str(cache)!r})
train = {settings!r}
"""
    path = tmp_path / "tiny_train.py"
    path.write_text(text)
    return path


def run_train(config: Path, *args, nproc: int = 1, check: bool = True, **popen):
    """Run tools/train.py (under torchrun when nproc > 1); returns the CompletedProcess or Popen."""
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), str(config), *args]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(ROOT / "tools" / "train.py"), str(config), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    if popen:
        return subprocess.Popen(cmd, env=env, **popen)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"training failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-5000:]}")
    return result


def losses(run_dir: Path) -> dict:
    """step -> loss from the run's loss log (the last record of a step wins, as after a resume)."""
    out = {}
    for line in (run_dir / "loss.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[record["step"]] = record["loss"]
    return out


def write_clip_csv(root: Path, clips: int = 4) -> Path:
    """A ``path,label`` CSV of small 8-frame 16x16 moving-square MP4 clips (2 classes)."""
    import numpy as np

    from opensora_lite.data.video_write import write_video

    rows = ["path,label"]
    for k in range(clips):
        frames = np.zeros((8, 16, 16, 3), np.uint8)
        for t in range(8):
            frames[t, 4:10, 2 + t:8 + t, k % 3] = 255
        write_video(root / "clips" / f"{k}.mp4", frames, fps=4)
        rows.append(f"clips/{k}.mp4,{k % 2}")
    (root / "clips.csv").write_text("\n".join(rows) + "\n")
    return root / "clips.csv"
