"""VideoAutoencoderKL and VideoAutoencoderPipeline against fixture vae_pipeline_tiny (Open-Sora v1.2)."""
import math
from pathlib import Path

import diffusers
import pytest
import torch
from safetensors.torch import save_file

from opensora_lite.config import load_config
from opensora_lite.errors import CheckpointError, ConfigError, DataError
from opensora_lite.models.vae import DiagonalGaussian, TemporalVAE, VideoAutoencoderKL, VideoAutoencoderPipeline
from opensora_lite.registry import MODELS, build_module

from conftest import fixture_atol, load_fixture

SD, INPUTS, OUTPUTS, META = load_fixture("vae_pipeline_tiny")
CONSTRUCTOR = META["constructor"]
TINY_KL = CONSTRUCTOR["vae_2d"]["AutoencoderKL_config"]  # 2 levels: downsamples space by 2
TINY_TEMPORAL = dict(type="TemporalVAE", **CONSTRUCTOR["vae_temporal"]["kwargs"])
CASES = ("T17", "T16", "T20_16px")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vae" / "opensora_v1_2.py"


def assert_fixture(actual, name):
    torch.testing.assert_close(actual, OUTPUTS[name], atol=fixture_atol(META, name), rtol=1e-5, equal_nan=True)


def make_pipeline(**overrides) -> VideoAutoencoderPipeline:
    kwargs = dict(vae_2d=dict(type="VideoAutoencoderKL", config=TINY_KL, micro_batch_size=4),
                  vae_temporal=TINY_TEMPORAL, micro_frame_size=17, shift=CONSTRUCTOR["shift"],
                  scale=CONSTRUCTOR["scale"])
    kwargs.update(overrides)
    return VideoAutoencoderPipeline(**kwargs).eval()


@pytest.fixture(scope="module")
def pipe():
    model = make_pipeline()
    model.load_state_dict(SD, strict=True)
    return model


def recorded_draws(case):
    """The fixture's torch.randn draws of one stochastic encode, in call order."""
    names = sorted(k for k in INPUTS if k.startswith(f"{case}.encode_noise_draw"))
    return [INPUTS[k] for k in names]


#################################################################################
#                                 Fixture outputs                               #
#################################################################################


def test_state_dict_has_open_soras_keys_and_shapes(pipe):
    assert {k: tuple(v.shape) for k, v in pipe.state_dict().items()} == {k: tuple(v.shape) for k, v in SD.items()}
    assert pipe.scale.shape == pipe.shift.shape == (1, 4, 1, 1, 1)


def test_loads_through_load_checkpoint(tmp_path):
    checkpoint = pytest.importorskip("opensora_lite.models.convert")
    path = tmp_path / "pipeline.safetensors"
    save_file({k: v.contiguous() for k, v in SD.items()}, str(path))
    model = make_pipeline(shift=0.0, scale=1.0)
    checkpoint.load_checkpoint(model, str(path), strict=True)
    torch.testing.assert_close(model.scale.flatten(), torch.tensor(CONSTRUCTOR["scale"]))
    with torch.no_grad():
        assert_fixture(model.encode(INPUTS["T16.x"]), "T16.encode_mode")


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_encode_mode_matches_open_sora(pipe, case):
    assert_fixture(pipe.encode(INPUTS[f"{case}.x"]), f"{case}.encode_mode")


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_stochastic_encode_with_recorded_draws(pipe, case, monkeypatch):
    """Open-Sora samples both posteriors: 2-D draws per micro-batch of 4 frames, then one per 17-frame chunk."""
    draws = recorded_draws(case)
    shapes = []

    def replay(self, generator=None):
        shapes.append(tuple(self.mean.shape))
        return draws[len(shapes) - 1]

    monkeypatch.setattr(DiagonalGaussian, "draw_noise", replay)
    assert_fixture(pipe.encode(INPUTS[f"{case}.x"], sample_posterior=True), f"{case}.encode")
    assert shapes == [tuple(d.shape) for d in draws]


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_decode_matches_open_sora(pipe, case):
    x = INPUTS[f"{case}.x"]
    assert_fixture(pipe.decode(OUTPUTS[f"{case}.encode_mode"], num_frames=x.shape[2]), f"{case}.decode")


@torch.no_grad()
def test_spatial_vae_alone(pipe):
    latent = pipe.spatial_vae.encode(INPUTS["T20_16px.x"])
    assert_fixture(latent, "T20_16px.spatial_latent_mode")
    assert_fixture(pipe.spatial_vae.decode(OUTPUTS["T20_16px.spatial_latent_mode"]),
                   "T20_16px.spatial_decode_of_spatial_latent")


def test_get_latent_size_table():
    """Open-Sora hard-codes patch_size (1, 8, 8); the fixture's table was made with it."""
    pipe = make_pipeline(vae_2d=dict(type="VideoAutoencoderKL", config=TINY_KL, patch_size=(1, 8, 8)))
    for key, expected in META["pipeline_get_latent_size"].items():
        size = [int(s) for s in key.strip("()").split(",")]
        assert pipe.get_latent_size(size) == expected, key
    assert pipe.get_latent_size([None, 64, 64]) == [None, 8, 8]


def test_latent_length_formula(pipe):
    for T in range(1, 60):
        assert pipe.get_latent_size([T, 32, 32])[0] == 5 * (T // 17) + math.ceil((T % 17) / 4), T
    assert pipe.get_latent_size([17, 32, 32]) == [5, 16, 16]  # default patch size: the real factor 2


#################################################################################
#                               VideoAutoencoderKL                              #
#################################################################################


@torch.no_grad()
def test_kl_runs_frames_in_micro_batches_in_order(pipe):
    spatial = pipe.spatial_vae
    x = torch.rand(2, 3, 5, 8, 8) * 2 - 1
    latents = spatial.encode(x)  # micro-batches of 4 over 10 frames
    frame = spatial.module.encode(x[1:2, :, 3])[:, :4] * spatial.scaling_factor  # mean; sample 1, frame 3
    torch.testing.assert_close(latents[1:2, :, 3], frame, atol=1e-5, rtol=1e-5)
    spatial.micro_batch_size = None
    try:
        torch.testing.assert_close(spatial.encode(x), latents, atol=1e-5, rtol=1e-5)
    finally:
        spatial.micro_batch_size = 4


@torch.no_grad()
def test_kl_scaling_factor_is_a_config_value(pipe):
    x = torch.rand(1, 3, 2, 8, 8) * 2 - 1
    scaled = VideoAutoencoderKL(config=TINY_KL, scaling_factor=1.0).eval()
    scaled.load_state_dict(pipe.spatial_vae.state_dict())
    torch.testing.assert_close(scaled.encode(x) * 0.18215, pipe.spatial_vae.encode(x))
    z = torch.randn(1, 4, 2, 4, 4)
    torch.testing.assert_close(scaled.decode(z / 0.18215), pipe.spatial_vae.decode(z), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_kl_loads_a_local_diffusers_folder_and_a_single_file(pipe, tmp_path):
    x = torch.rand(1, 3, 2, 8, 8) * 2 - 1
    expected = pipe.spatial_vae.encode(x)
    reference = diffusers.AutoencoderKL(**TINY_KL)  # a folder as diffusers writes it
    reference.load_state_dict(pipe.spatial_vae.module.state_dict())
    reference.save_pretrained(tmp_path / "vae")
    from_folder = VideoAutoencoderKL(from_pretrained=str(tmp_path), subfolder="vae").eval()
    torch.testing.assert_close(from_folder.encode(x), expected)
    save_file(pipe.spatial_vae.module.state_dict(), str(tmp_path / "vae.safetensors"))
    from_file = VideoAutoencoderKL(from_pretrained=str(tmp_path / "vae.safetensors"), config=TINY_KL).eval()
    torch.testing.assert_close(from_file.encode(x), expected)
    with pytest.raises(CheckpointError, match="do not fit"):
        VideoAutoencoderKL(from_pretrained=str(tmp_path / "vae.safetensors"), config=dict(TINY_KL, latent_channels=8))


def test_kl_never_goes_to_the_hub(tmp_path):
    with pytest.raises(CheckpointError, match="nothing is downloaded"):
        VideoAutoencoderKL(from_pretrained="PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers")
    with pytest.raises(CheckpointError, match="cannot load"):
        VideoAutoencoderKL(from_pretrained=str(tmp_path))  # a folder without config.json
    with pytest.raises(ConfigError, match="unexpected keyword"):
        VideoAutoencoderKL(config=dict(TINY_KL, no_such_key=1))


def test_kl_default_patch_size_is_the_real_factor():
    kl = VideoAutoencoderKL(config=dict(TINY_KL, block_out_channels=(8, 8, 8, 8), norm_num_groups=4,
                                        down_block_types=("DownEncoderBlock2D",) * 4,
                                        up_block_types=("UpDecoderBlock2D",) * 4))
    assert kl.patch_size == (1, 8, 8)
    assert kl.get_latent_size([5, 64, 48]) == [5, 8, 6]
    with pytest.raises(DataError, match="multiples of 8"):
        kl.encode(torch.zeros(1, 3, 1, 20, 16))  # H=20 is not a multiple of 8


def test_bad_shapes_raise_data_error(pipe):
    with pytest.raises(DataError, match="multiples of 2"):
        pipe.encode(torch.zeros(1, 3, 4, 9, 8))
    with pytest.raises(DataError, match="expects"):
        pipe.encode(torch.zeros(1, 4, 4, 8, 8))  # 4 channels, not RGB
    with pytest.raises(DataError, match="need 5 latent frames"):
        pipe.decode(torch.zeros(1, 4, 4, 4, 4), num_frames=17)


#################################################################################
#                         Pipeline: shapes and config                           #
#################################################################################


@pytest.mark.parametrize("micro_frame_size", [None, 17])
@torch.no_grad()
def test_long_clip_round_trip_shapes(pipe, micro_frame_size):
    model = make_pipeline(micro_frame_size=micro_frame_size)
    model.load_state_dict(pipe.state_dict())
    x = torch.rand(1, 3, 40, 8, 8) * 2 - 1
    z = model.encode(x)
    assert z.shape == (1, 4, model.get_latent_size([40, 8, 8])[0], 4, 4)
    assert model.decode(z, num_frames=40).shape == x.shape


@pytest.mark.parametrize("T", [1, 3, 18, 23])
@torch.no_grad()
def test_round_trip_shapes_for_odd_lengths(pipe, T):
    x = torch.rand(1, 3, T, 8, 6) * 2 - 1
    z = pipe.encode(x)
    assert list(z.shape[2:]) == pipe.get_latent_size([T, 8, 6])
    assert pipe.decode(z, num_frames=T).shape == x.shape


def test_shift_and_scale_accept_scalars_and_check_channels():
    model = make_pipeline(shift=0.5, scale=2.0)
    assert model.shift.flatten().tolist() == [0.5] * 4 and model.scale.flatten().tolist() == [2.0] * 4
    with pytest.raises(ConfigError, match="needs 1 or 4 values"):
        make_pipeline(shift=(0.1, 0.2))


def test_freeze_vae_2d_only_freezes_the_spatial_vae():
    model = make_pipeline(freeze_vae_2d=True)
    assert not any(p.requires_grad for p in model.spatial_vae.parameters())
    assert all(p.requires_grad for p in model.temporal_vae.parameters())


def test_opensora_config_builds_with_small_widths():
    """The v1.2 config: its constants, and every key accepted by the constructors (built at a tiny width)."""
    vae = load_config(str(CONFIG)).vae
    assert vae.type == "VideoAutoencoderPipeline" and vae.micro_frame_size == 17
    assert tuple(vae.shift) == (-0.10, 0.34, 0.27, 0.98) and tuple(vae.scale) == (3.85, 2.32, 2.33, 3.06)
    assert vae.vae_2d.scaling_factor == 0.18215 and tuple(vae.vae_2d.config.block_out_channels) == (128, 256, 512, 512)
    assert vae.vae_temporal.filters == 128 and vae.vae_temporal.num_res_blocks == 4
    small_2d = dict(vae.vae_2d, config=dict(vae.vae_2d.config, block_out_channels=(8, 8, 8, 8), norm_num_groups=4,
                                             layers_per_block=1))
    small_temporal = dict(vae.vae_temporal, filters=8, num_res_blocks=1, num_groups=4)
    model = build_module(dict(vae, vae_2d=small_2d, vae_temporal=small_temporal), MODELS)
    assert isinstance(model.temporal_vae, TemporalVAE) and model.spatial_vae.patch_size == (1, 8, 8)
    assert model.get_latent_size([51, 256, 256]) == [15, 32, 32]
