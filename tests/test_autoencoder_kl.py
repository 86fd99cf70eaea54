"""Our AutoencoderKL against diffusers' own: same parameter names, same outputs, same checkpoints."""
import diffusers  # the reference: a test dependency, never imported on the inference path
import pytest
import torch

from opensora_lite.errors import ConfigError
from opensora_lite.models.vae.autoencoder_kl import AutoencoderKL

CONFIGS = {
    "three levels": dict(down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                         block_out_channels=(8, 16, 16), layers_per_block=2, norm_num_groups=4, latent_channels=4),
    "no attention, no quant convs": dict(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=8, latent_channels=3,
        mid_block_add_attention=False, use_quant_conv=False, use_post_quant_conv=False),
    "one level": dict(block_out_channels=(16,), layers_per_block=1, norm_num_groups=4, latent_channels=2),
}


def _pair(config):
    torch.manual_seed(0)
    theirs = diffusers.AutoencoderKL(**config).eval()
    with torch.no_grad():  # diffusers zero-initialises nothing here, but make every parameter matter
        for p in theirs.parameters():
            p.normal_(0, 0.2)
    ours = AutoencoderKL(**config).eval()
    ours.load_state_dict(theirs.state_dict())  # strict: the same names and shapes
    return ours, theirs


@pytest.mark.parametrize("name", list(CONFIGS))
@torch.no_grad()
def test_matches_diffusers(name):
    ours, theirs = _pair(CONFIGS[name])
    x = torch.rand(2, 3, 16, 12) * 2 - 1  # not square: catches a transposed reshape
    moments = ours.encode(x)
    torch.testing.assert_close(moments, theirs.encode(x).latent_dist.parameters, atol=1e-5, rtol=1e-5)
    z = torch.randn(2, CONFIGS[name]["latent_channels"], *moments.shape[2:])
    torch.testing.assert_close(ours.decode(z), theirs.decode(z).sample, atol=1e-5, rtol=1e-5)
    assert ours.decode(z).shape == x.shape


def test_refuses_what_it_does_not_build():
    with pytest.raises(ConfigError, match="unexpected keyword"):
        AutoencoderKL(no_such_key=1)
    with pytest.raises(ConfigError, match="down_block_types"):
        AutoencoderKL(down_block_types=("AttnDownEncoderBlock2D",))
    with pytest.raises(ConfigError, match="act_fn"):
        AutoencoderKL(act_fn="gelu")
    with pytest.raises(ConfigError, match="multiples of norm_num_groups"):
        AutoencoderKL(block_out_channels=(12,), norm_num_groups=8)


def test_deep_copies_and_keeps_its_config():
    import copy

    model = AutoencoderKL(**CONFIGS["one level"])
    clone = copy.deepcopy(model)  # EMA and the VAE stage tests copy whole pipelines
    assert clone.config.block_out_channels == (16,) and clone.config == model.config
