"""tools/train_vae.py's loop: stages run, the optional perceptual term with a local backbone, settings checked."""
import logging

import pytest
import torch

from opensora_lite.config import load_config
from opensora_lite.errors import ConfigError
from opensora_lite.training.vae_train_loop import train_vae, with_perceptual

from helpers import TINY_VAE


@pytest.fixture
def backbone_file(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, stride=2))
    path = tmp_path / "features.pt"
    torch.jit.script(net).save(str(path))
    return path


def test_perceptual_term_adds_to_the_loss_and_reaches_the_reconstruction(backbone_file):
    backbone = torch.jit.load(str(backbone_file))
    recon = torch.rand(2, 3, 4, 16, 16, requires_grad=True)  # clips: frames are compared
    terms = with_perceptual(dict(loss=torch.tensor(0.0)), recon, torch.rand(2, 3, 4, 16, 16),
                            dict(perceptual_weight=0.5), backbone)
    assert terms["perceptual"] > 0 and torch.isclose(terms["loss"], 0.5 * terms["perceptual"])
    terms["loss"].backward()
    assert recon.grad.abs().sum() > 0
    plain = dict(loss=torch.tensor(1.0))
    assert with_perceptual(plain, recon, recon, {}, None) is plain and "perceptual" not in plain


def test_2d_stage_trains_with_a_perceptual_backbone(tmp_path, backbone_file, caplog):
    from helpers import write_clip_csv

    config = tmp_path / "vae_train.py"
    config.write_text(TINY_VAE + f"""
dataset = dict(type="VideoClipDataset", source={str(write_clip_csv(tmp_path))!r}, num_frames=8, size=(16, 16))
vae_train = dict(outputs={str(tmp_path / "run")!r}, stage="2d", batch_size=2, frames_per_clip=2, max_steps=2,
                 log_every=1, ckpt_every=2, sample_every=0, calibrate_clips=2, perceptual_weight=0.1,
                 perceptual_backbone={str(backbone_file)!r})
""")
    with caplog.at_level(logging.INFO):
        summary = train_vae(load_config(str(config)))
    assert summary["step"] == 2 and (tmp_path / "run" / "vae.safetensors").is_file()
    assert "perceptual" in caplog.text


def test_perceptual_weight_without_a_backbone_is_refused(tmp_path):
    config = tmp_path / "vae_train.py"
    config.write_text(TINY_VAE + f"""
dataset = dict(type="VideoClipDataset", source="none.csv")
vae_train = dict(outputs={str(tmp_path / "run")!r}, perceptual_weight=0.1)
""")
    with pytest.raises(ConfigError, match="perceptual_backbone"):
        train_vae(load_config(str(config)))
