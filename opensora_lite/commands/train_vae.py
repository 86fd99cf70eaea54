"""Train the video VAE (2-D per frame, temporal, or both) on clips; exports ``<outputs>/vae.safetensors``.

    python tools/train_vae.py configs/shapes/vae_shapes.py --vae_train.stage 2d
    python tools/train_vae.py configs/shapes/vae_shapes.py --vae_train.stage temporal \
        --vae_init runs/vae_2d/vae.safetensors

Rerunning after a crash resumes from the newest complete checkpoint of the run folder.
"""


from opensora_lite.cli import ArgumentParser
from opensora_lite.config import load_config, parse_overrides


def main(argv):
    parser = ArgumentParser(prog="opensora-lite train-vae", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Python config with `vae`, `dataset` and `vae_train`")
    parser.add_argument("--outputs", help="run folder (config: vae_train.outputs)")
    parser.add_argument("--vae_init", help="initial VAE weights (e.g. the export of the 2-D stage)")
    parser.add_argument("--resume", metavar="CKPT", help="resume from this checkpoint folder")
    parser.add_argument("--overwrite", action="store_true", help="delete the run folder and start again")
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(args.config, parse_overrides(rest))
    cfg.setdefault("vae_train", {})
    if args.outputs:
        cfg.vae_train["outputs"] = args.outputs
    if args.vae_init:
        cfg["vae_init"] = args.vae_init

    from opensora_lite.training.vae_train_loop import train_vae

    summary = train_vae(cfg, config_path=args.config, resume=args.resume, overwrite=args.overwrite)
    print(f"finished at step {summary['step']}; weights: {summary['export']} "
          f"(sample PSNR {summary['sample_psnr']:.2f} dB)")

