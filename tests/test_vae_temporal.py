"""TemporalVAE: Open-Sora v1.2's causal temporal VAE against fixture vae_temporal_tiny, and chunked == whole."""
import inspect
import math

import pytest
import torch
from safetensors.torch import save_file

from opensora_lite.errors import DataError
from opensora_lite.models.vae import CausalConv3d, DiagonalGaussian, TemporalVAE
from opensora_lite.registry import MODELS, build_module

from conftest import fixture_atol, load_fixture

SD, INPUTS, OUTPUTS, META = load_fixture("vae_temporal_tiny")
TINY = META["constructor"]["kwargs"]  # filters=8, num_res_blocks=1, num_groups=4
CASES = (8, 7, 1)


def assert_fixture(actual, name):
    torch.testing.assert_close(actual, OUTPUTS[name], atol=fixture_atol(META, name), rtol=1e-5, equal_nan=True)


@pytest.fixture(scope="module")
def vae():
    model = TemporalVAE(**TINY).eval()
    model.load_state_dict(SD, strict=True)
    return model


@pytest.fixture(scope="module")
def random_vae():
    torch.manual_seed(1)
    return TemporalVAE(**TINY).eval()


#################################################################################
#                          Structure and checkpoints                            #
#################################################################################


def test_state_dict_has_open_soras_keys_and_shapes():
    ours = {k: tuple(v.shape) for k, v in TemporalVAE(**TINY).state_dict().items()}
    assert len(SD) == 87
    assert ours == {k: tuple(v.shape) for k, v in SD.items()}


def test_defaults_are_vae_temporal_sd():
    params = inspect.signature(TemporalVAE).parameters
    for name, value in META["VAE_Temporal_SD_kwargs_for_reference"].items():
        default = params[name].default
        assert (list(default) if isinstance(default, tuple) else default) == value, name


def test_registry_names_build_the_same_class():
    for name in ("TemporalVAE", "VAE_Temporal_SD"):
        assert isinstance(build_module(dict(type=name, **TINY), MODELS), TemporalVAE)


def test_loads_through_load_checkpoint(tmp_path):
    checkpoint = pytest.importorskip("opensora_lite.models.convert")
    path = tmp_path / "temporal.safetensors"
    save_file({k: v.contiguous() for k, v in SD.items()}, str(path))
    model = TemporalVAE(**TINY).eval()
    checkpoint.load_checkpoint(model, str(path), strict=True)
    with torch.no_grad():
        assert_fixture(model.encode(INPUTS["T8.x"]).mean, "T8.encode_mean")


#################################################################################
#                                 Fixture outputs                               #
#################################################################################


@pytest.mark.parametrize("T", CASES)
@torch.no_grad()
def test_encode_matches_open_sora(vae, T):
    posterior = vae.encode(INPUTS[f"T{T}.x"])
    assert_fixture(posterior.moments, f"T{T}.encode_moments")
    assert_fixture(posterior.mean, f"T{T}.encode_mean")
    assert_fixture(posterior.logvar, f"T{T}.encode_logvar")
    assert_fixture(posterior.kl(), f"T{T}.encode_kl")


@pytest.mark.parametrize("T", CASES)
@torch.no_grad()
def test_decode_matches_open_sora(vae, T):
    assert_fixture(vae.decode(OUTPUTS[f"T{T}.encode_mean"], num_frames=T), f"T{T}.decode")


@pytest.mark.parametrize("T", CASES)
@torch.no_grad()
def test_forward_with_recorded_posterior_noise(vae, T, monkeypatch):
    noise = INPUTS[f"T{T}.posterior_noise"]
    monkeypatch.setattr(DiagonalGaussian, "draw_noise", lambda self, generator=None: noise)
    recon, posterior, z = vae(INPUTS[f"T{T}.x"])
    assert_fixture(z, f"T{T}.forward_sample_z")
    assert_fixture(recon, f"T{T}.forward_sample_recon")
    assert_fixture(posterior.mean, f"T{T}.encode_mean")


@torch.no_grad()
def test_forward_without_sampling_is_decode_of_mean(vae):
    recon, _, z = vae(INPUTS["T7.x"], sample_posterior=False)
    assert_fixture(z, "T7.encode_mean")
    assert_fixture(recon, "T7.decode")


@torch.no_grad()
def test_encoder_and_decoder_internals(vae):
    x = INPUTS["T7.x"]
    front_padded = torch.cat([torch.zeros_like(x[:, :, :1])] + [x], dim=2)  # 7 -> 8 frames
    assert_fixture(vae.encoder(front_padded), "T7.debug_encoder_out")
    assert_fixture(vae.decoder(vae.post_quant_conv(OUTPUTS["T7.encode_mean"])), "T7.debug_decoder_out_uncropped")


def test_get_latent_size_table(vae):
    for key, expected in META["get_latent_size"].items():
        size = [None if s.strip() == "None" else int(s) for s in key.strip("[]").split(",")]
        assert vae.get_latent_size(size) == expected, key
    for name, value in OUTPUTS.items():
        if name.startswith("latent_size_T"):
            T = int(name[len("latent_size_T"):])
            assert vae.get_latent_size([T, 16, 16]) == value.tolist(), name


#################################################################################
#                         Posterior, shapes and errors                          #
#################################################################################


def test_sample_is_mean_plus_std_times_seeded_noise(vae):
    posterior = DiagonalGaussian(OUTPUTS["T8.encode_moments"])
    draw = posterior.sample(torch.Generator().manual_seed(3))
    noise = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(draw, posterior.mean + posterior.std * noise)
    assert not torch.equal(draw, posterior.sample(torch.Generator().manual_seed(4)))
    assert torch.equal(posterior.mode(), posterior.mean)


def test_logvar_is_clamped():
    moments = torch.tensor([0.0, 0.0, -100.0, 100.0]).view(1, 4, 1, 1, 1)  # mean (0, 0), logvar (-100, 100)
    assert DiagonalGaussian(moments).logvar.flatten().tolist() == [-30.0, 20.0]


@pytest.mark.parametrize("T", [1, 2, 3, 5, 6, 13])
@torch.no_grad()
def test_round_trip_shapes_for_any_length(random_vae, T):
    x = torch.randn(2, 4, T, 6, 5)
    posterior = random_vae.encode(x)
    assert posterior.mean.shape == (2, 4, math.ceil(T / 4), 6, 5)
    assert random_vae.decode(posterior.mean, num_frames=T).shape == x.shape


def test_bad_shapes_raise_data_error(random_vae):
    with pytest.raises(DataError, match="expects"):
        random_vae.encode(torch.randn(1, 3, 4, 8, 8))  # 3 channels, not 4
    with pytest.raises(DataError, match="expects"):
        random_vae.encode(torch.randn(4, 4, 8))  # not 5-D
    with pytest.raises(DataError, match="not 9"):
        random_vae.decode(torch.randn(1, 4, 2, 8, 8), num_frames=9)  # 2 latent frames decode to 5..8
    with pytest.raises(DataError, match="expects"):
        random_vae.decode(torch.randn(1, 8, 2, 8, 8))  # 8 latent channels, not 4


def test_causal_conv_pads_only_the_front_of_time():
    conv = CausalConv3d(1, 1, 3)
    with torch.no_grad():
        conv.conv.weight.zero_()
        conv.conv.weight[0, 0, 0, 1, 1] = 1.0  # output t = input t - 2 (the oldest tap)
        conv.conv.bias.zero_()
    x = torch.arange(1.0, 5.0).view(1, 1, 4, 1, 1)
    assert conv(x).flatten().tolist() == [0.0, 0.0, 1.0, 2.0]
    assert CausalConv3d(1, 1, 3, stride=2).time_pad == 1
