"""Train STDiT on video clips (or cached latents), on one process or under torchrun.

    python tools/train.py configs/shapes/stdit_shapes.py [--train.max_steps 100 ...]
    torchrun --nproc_per_node 2 tools/train.py configs/shapes/stdit_shapes.py --plugin zero2

Rerunning the same command after a crash resumes from the newest complete checkpoint of the run
folder; a finished run folder is never overwritten without --overwrite.
"""
import os

from opensora_lite.cli import ArgumentParser
from opensora_lite.config import load_config, parse_overrides


def main(argv):
    parser = ArgumentParser(prog="opensora-lite train", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Python config, e.g. configs/shapes/stdit_shapes.py")
    parser.add_argument("--plugin", choices=("ddp", "zero1", "zero2"), help="colossalai plugin (config: train.plugin)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="config: train.precision")
    parser.add_argument("--outputs", help="run folder (config: train.outputs)")
    parser.add_argument("--resume", metavar="CKPT", help="resume from this checkpoint folder "
                        "(default: the newest one in the run folder, if any)")
    parser.add_argument("--overwrite", action="store_true", help="delete the run folder and start again")
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(args.config, parse_overrides(rest))
    cfg.setdefault("train", {})
    for key in ("plugin", "precision", "outputs"):  # named flags may set keys the config leaves at default
        if getattr(args, key):
            cfg.train[key] = getattr(args, key)

    from opensora_lite.training.train_loop import train

    summary = train(cfg, config_path=args.config, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"finished at step {summary['step']} ({summary['skipped_steps']} skipped): {summary['run_dir']}")

