"""The VAE training stages behind the shipped VAE, through tools/train_vae.py: what each stage trains and freezes,
the shift/scale calibration, and resume."""
import pytest
import torch
from safetensors.torch import load_file

from opensora_lite.config import load_config
from opensora_lite.data.datasets import VideoClipDataset
from opensora_lite.models.convert import load_checkpoint
from opensora_lite.registry import MODELS, build_module
from opensora_lite.storage import save_checkpoint

from helpers import TINY_VAE, load_tool, write_clip_csv

TRAIN_VAE = load_tool("train_vae")
ENCODERS = ("spatial_vae.module.encoder.", "spatial_vae.module.quant_conv.", "temporal_vae.encoder.",
            "temporal_vae.quant_conv.")
DECODERS = ("spatial_vae.module.decoder.", "spatial_vae.module.post_quant_conv.", "temporal_vae.decoder.",
            "temporal_vae.post_quant_conv.")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """The tiny VAE on 4 clips of 8 frames at 16x16; every stage runs 2 steps and calibrates on all 4 clips."""
    root = tmp_path_factory.mktemp("vae_stages")
    path = root / "vae_train.py"
    path.write_text(TINY_VAE + f"""
dataset = dict(type="VideoClipDataset", source={str(write_clip_csv(root))!r}, num_frames=8, size=(16, 16))
vae_train = dict(outputs="unused", stage="2d", batch_size=2, frames_per_clip=2, max_steps=2, lr=1e-2,
                 warmup_steps=0, log_every=1, ckpt_every=1, sample_every=0, calibrate_clips=4, ema_decay=0.5,
                 keep_last=0)
""")
    return path


def train(config, out, *args):
    TRAIN_VAE.main([str(config), "--outputs", str(out), *args])
    return load_file(str(out / "vae.safetensors"))


def changed(before: dict, after: dict, prefixes) -> set:
    """The prefixes under which at least one tensor differs."""
    return {p for p in prefixes for k in before if k.startswith(p) and not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def stage_2d(config, tmp_path_factory):
    """(run folder, random initial weights, exported weights) of a 2-D stage started from saved random weights."""
    root = tmp_path_factory.mktemp("runs")
    vae = build_module(load_config(str(config)).vae, MODELS)
    save_checkpoint(vae, root / "init.safetensors")
    return root / "2d", load_file(str(root / "init.safetensors")), train(config, root / "2d", "--vae_init",
                                                                          str(root / "init.safetensors"))


def test_the_2d_stage_trains_only_the_2d_vae(stage_2d):
    _, init, weights = stage_2d
    assert changed(init, weights, ENCODERS + DECODERS) == {p for p in ENCODERS + DECODERS if "spatial" in p}
    assert torch.equal(init["shift"], weights["shift"]) and torch.equal(init["scale"], weights["scale"])


@pytest.fixture(scope="module")
def stages(config, stage_2d):
    """stage -> (run folder, exported weights) of each later stage, started from the 2-D stage's export."""
    runs = {}

    def run(stage):
        if stage not in runs:
            out = stage_2d[0].parent / stage
            runs[stage] = out, train(config, out, "--vae_train.stage", stage, "--vae_init",
                                     str(stage_2d[0] / "vae.safetensors"))
        return runs[stage]
    return run


@pytest.mark.parametrize("stage, trained", [
    ("temporal", {p for p in ENCODERS + DECODERS if "temporal" in p}),
    ("both", set(ENCODERS + DECODERS)),
    ("decoder", set(DECODERS)),
])
def test_each_stage_trains_its_part_and_freezes_the_rest(stage_2d, stages, stage, trained):
    init, weights = stage_2d[2], stages(stage)[1]
    assert changed(init, weights, ENCODERS + DECODERS) == trained
    kept = [torch.equal(init[k], weights[k]) for k in ("shift", "scale")]
    assert kept == ([True, True] if stage == "decoder" else [False, False])  # decoder: the latent space stays


def test_calibration_gives_zero_mean_unit_std_latents(config, stages):
    # shift/scale are measured on the clips after the temporal stage (calibrate_clips covers all 4): the
    # exported VAE's latents of those clips have per-channel mean 0 and std 1.
    cfg = load_config(str(config))
    vae = build_module(cfg.vae, MODELS)
    load_checkpoint(vae, stages("temporal")[1])
    dataset = VideoClipDataset(**{k: v for k, v in cfg.dataset.items() if k != "type"})
    clips = torch.stack([dataset[i]["video"] for i in range(len(dataset))])
    with torch.no_grad():
        z = vae.encode(clips).transpose(0, 1).flatten(1)  # (C, N*T'*h*w)
    torch.testing.assert_close(z.mean(1), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(1), torch.ones(4), atol=1e-4, rtol=0)


def test_resume_from_a_checkpoint_ends_with_the_same_weights(config, stage_2d, stages, tmp_path):
    # The temporal run saved a checkpoint after each of its 2 steps; resuming a new run from step 1 must
    # replay step 2 exactly (data order, draws, optimizer, LR schedule, EMA) and export the same weights.
    run, whole = stages("temporal")
    resumed = train(config, tmp_path / "resumed", "--vae_train.stage", "temporal", "--vae_init",
                    str(stage_2d[0] / "vae.safetensors"), "--resume", str(run / "checkpoints" / "step_00000001"))
    assert whole.keys() == resumed.keys()
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], atol=0, rtol=0)
