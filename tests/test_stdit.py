"""STDiT: parity with facebookresearch DiT (fixture dit_tiny), shapes, positions, guidance and variants."""
import math

import pytest
import torch
import torch.nn.functional as F

from opensora_lite.errors import ConfigError
from opensora_lite.models import STDiT
from opensora_lite.models.convert import load_checkpoint
from opensora_lite.models.layers import PatchEmbed3D, TimestepEmbedder, get_2d_sincos_pos_embed
from opensora_lite.registry import MODELS, build_module

from conftest import fixture_atol, forward_with_cfg, load_fixture

RTOL = 1e-5
FRAMES = 5  # clip length of the video parity tests (odd on purpose)


def tiny(**overrides) -> STDiT:
    """The dit_tiny constructor as an STDiT (overrides change it)."""
    kwargs = dict(input_size=(1, 8, 8), patch_size=(1, 2, 2), in_channels=4, hidden_size=64, depth=2,
                  num_heads=4, num_classes=10, learn_sigma=True)
    kwargs.update(overrides)
    return STDiT(**kwargs)


@pytest.fixture(scope="module")
def dit():
    return load_fixture("dit_tiny")


@pytest.fixture(scope="module")
def dit_model(dit):
    model = tiny(input_size=(FRAMES, 8, 8))
    load_checkpoint(model, dit[0])
    return model.eval()


def randomize(model: torch.nn.Module, prefix: str = "", seed: int = 0) -> None:
    """Fan-in scaled normal weights, small biases, for parameters whose name starts with ``prefix``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(prefix):
                scale = 1 / math.sqrt(p[0].numel()) if p.ndim > 1 else 0.05
                p.copy_(torch.randn(p.shape, generator=gen) * scale)


def frames_of(images: torch.Tensor, frames: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, frames, H, W), the image repeated on every frame."""
    return images[:, :, None].expand(-1, -1, frames, -1, -1).contiguous()


#################################################################################
#                          Parity with DiT (dit_tiny)                           #
#################################################################################


def test_forward_matches_dit_on_a_single_frame(dit, dit_model):
    _, inp, out, meta = dit
    with torch.no_grad():
        actual = dit_model(inp["x"][:, :, None], inp["t"], inp["y"])  # (4, 8, 1, 8, 8)
    torch.testing.assert_close(actual[:, :, 0], out["forward"], atol=fixture_atol(meta, "forward"), rtol=RTOL)


def test_forward_matches_dit_on_every_frame_of_a_clip(dit, dit_model):
    # Clip n shows fixture image n on every frame (t and y are per clip); each frame must equal DiT.
    # The batch is reordered so that a mix-up of the clip and frame axes would pair images with wrong t/y.
    _, inp, out, meta = dit
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        actual = dit_model(frames_of(inp["x"][order], FRAMES), inp["t"][order], inp["y"][order])
    expected = frames_of(out["forward"][order], FRAMES)
    torch.testing.assert_close(actual, expected, atol=fixture_atol(meta, "forward"), rtol=RTOL)


def test_distinct_frames_each_match_their_single_frame_output(dit, dit_model):
    # With DiT weights (zero temporal blocks) frame f of a clip is DiT's output on frame f alone,
    # which the single-frame test ties to the fixture: so every frame of a varied clip matches DiT.
    _, inp, _, _ = dit
    clip = torch.randn(2, 4, FRAMES, 8, 8)
    t, y = inp["t"][:2], inp["y"][:2]
    with torch.no_grad():
        actual = dit_model(clip, t, y)
        for f in range(FRAMES):
            alone = dit_model(clip[:, :, f : f + 1], t, y)
            torch.testing.assert_close(actual[:, :, f : f + 1], alone, atol=1e-6, rtol=RTOL)


def test_forward_with_cfg_matches_dit_with_three_guided_channels(dit, dit_model):
    _, inp, out, meta = dit
    for frames in (1, FRAMES):
        with torch.no_grad():
            actual = forward_with_cfg(dit_model,
                frames_of(inp["x_cfg"], frames), inp["t_cfg"], inp["y_cfg"], cfg_scale=4.0, cfg_channels=3
            )
        expected = frames_of(out["forward_with_cfg"], frames)
        torch.testing.assert_close(actual, expected, atol=fixture_atol(meta, "forward_with_cfg"), rtol=RTOL)


def test_embedders_match_dit(dit, dit_model):
    _, inp, out, meta = dit
    with torch.no_grad():
        freq = TimestepEmbedder.timestep_embedding(inp["t"], 256)
        t_emb = dit_model.t_embedder(inp["t"])
        y_emb = dit_model.y_embedder(inp["y"])
    torch.testing.assert_close(freq, out["t_embedder_freq"], atol=fixture_atol(meta, "t_embedder_freq"), rtol=RTOL)
    torch.testing.assert_close(t_emb, out["t_emb"], atol=fixture_atol(meta, "t_emb"), rtol=RTOL)
    torch.testing.assert_close(y_emb, out["y_emb"], atol=fixture_atol(meta, "y_emb"), rtol=RTOL)


def test_timestep_frequencies_use_dits_float32_formula(dit):
    # The fixture alone cannot pin the formula on every torch build: float32 exp differs by 1 ulp between
    # torch 2.13 and the fixture's 2.14 (3 of 128 frequencies), which moves t_embedder_freq by 2.9e-5,
    # while the 10000 ** (-i / half) variant moves it by 5.6e-5; both are under the 1e-4 fixture atol.
    _, inp, _, _ = dit
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = inp["t"][:, None].float() * freqs[None]
    assert torch.equal(TimestepEmbedder.timestep_embedding(inp["t"], 2 * half), torch.cat([args.cos(), args.sin()], -1))


def test_float_timesteps_embed_like_integer_ones(dit, dit_model):
    _, inp, _, _ = dit
    with torch.no_grad():
        as_float = dit_model.t_embedder(inp["t"].float())
        torch.testing.assert_close(as_float, dit_model.t_embedder(inp["t"]), atol=0, rtol=0)


def test_pos_embed_matches_dit(dit):
    _, _, out, meta = dit
    table = get_2d_sincos_pos_embed(64, 4, 4)
    torch.testing.assert_close(table, out["pos_embed_sincos"], atol=fixture_atol(meta, "pos_embed_sincos"), rtol=RTOL)


@pytest.mark.parametrize("grid_h, grid_w", [(2, 3), (4, 1), (3, 4)])
def test_non_square_pos_embed_agrees_with_dit_position_by_position(dit, grid_h, grid_w):
    # A position's features depend on its (row, column) only, so every cell of a non-square grid must
    # equal the same cell of DiT's square 4x4 table (first half of the channels = the column).
    _, _, out, meta = dit
    reference = out["pos_embed_sincos"].reshape(4, 4, 64)[:grid_h, :grid_w].reshape(-1, 64)
    table = get_2d_sincos_pos_embed(64, grid_h, grid_w)
    torch.testing.assert_close(table, reference, atol=fixture_atol(meta, "pos_embed_sincos"), rtol=RTOL)


#################################################################################
#                             Initialization and CFG                            #
#################################################################################


def test_untrained_model_outputs_exactly_zero():
    model = tiny().eval()
    out = model(torch.randn(2, 4, 3, 8, 8), torch.tensor([1, 900]), torch.tensor([0, 10]))
    assert out.shape == (2, 8, 3, 8, 8)
    assert torch.equal(out, torch.zeros_like(out))


def test_temporal_blocks_start_as_identity_but_are_trainable():
    model = tiny()
    for block in model.temporal_blocks:
        assert torch.count_nonzero(block.adaLN_modulation[-1].weight) == 0
        assert torch.count_nonzero(block.attn.qkv.weight) > 0  # xavier, so training can open the gate
        assert all(p.requires_grad for p in block.parameters())


def test_cfg_scale_one_equals_conditional_output():
    model = tiny().eval()
    randomize(model)
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([3, 700, 3, 700])
    y = torch.tensor([4, 2, 10, 10])
    with torch.no_grad():
        raw = model(torch.cat([x, x]), t, y)  # (4, 8, 3, 8, 8): conditional half, then null half
        guided = forward_with_cfg(model, torch.cat([x, x]), t, y, 1.0)
        alone = model(x, t[:2], y[:2])  # the conditional batch on its own (other matmul blocking)
    assert not torch.allclose(raw[:2, :4], raw[2:, :4], atol=1e-3)  # the null class does change the output
    assert torch.equal(guided[:2], raw[:2])  # bit for bit, not merely uncond + 1 * (cond - uncond)
    assert torch.equal(guided[2:, :4], raw[:2, :4])
    torch.testing.assert_close(guided[:2], alone, atol=1e-5, rtol=RTOL)


def test_cfg_guides_every_latent_channel_by_default_and_never_sigma():
    model = tiny().eval()
    randomize(model)
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([3, 700, 3, 700])
    y = torch.tensor([4, 2, 10, 10])
    scale = 3.0
    with torch.no_grad():
        raw = model(torch.cat([x, x]), t, y)  # (4, 8, 3, 8, 8)
        guided = forward_with_cfg(model, torch.cat([x, x]), t, y, scale)
        dit_style = forward_with_cfg(model, torch.cat([x, x]), t, y, scale, cfg_channels=3)
    cond, uncond = raw.chunk(2)
    expected = uncond[:, :4] + scale * (cond[:, :4] - uncond[:, :4])
    torch.testing.assert_close(guided[:2, :4], expected, atol=1e-5, rtol=RTOL)
    torch.testing.assert_close(guided[2:, :4], expected, atol=1e-5, rtol=RTOL)
    assert torch.equal(guided[:, 4:], raw[:, 4:])  # learned sigma comes back unguided
    assert torch.equal(dit_style[:, 3], raw[:, 3])  # cfg_channels=3 leaves channel 3 alone ...
    assert not torch.allclose(guided[:, 3], raw[:, 3])  # ... the default does not


#################################################################################
#                           Shapes, patches, positions                          #
#################################################################################


@pytest.mark.parametrize(
    "patch, size",
    [((1, 2, 2), (3, 6, 10)), ((1, 4, 4), (3, 8, 12)), ((2, 2, 2), (4, 6, 10)), ((1, 2, 2), (1, 10, 4))],
)
def test_any_divisible_shape_runs(patch, size):
    model = tiny(patch_size=patch, input_size=patch).eval()
    randomize(model)
    x = torch.randn(2, 4, *size)
    with torch.no_grad():
        out = model(x, torch.tensor([5, 500]), torch.tensor([1, 10]))
    assert out.shape == (2, 8, *size)
    assert torch.isfinite(out).all() and out.abs().amax() > 0


@pytest.mark.parametrize("patch", [(1, 2, 2), (1, 4, 4), (2, 2, 2)])
def test_patch_embedding_equals_the_patch_conv(patch):
    embed = PatchEmbed3D(patch, in_channels=3, hidden_size=16)
    x = torch.randn(2, 3, 4, 8, 12)
    conv = F.conv3d(x, embed.proj.weight, embed.proj.bias, stride=patch)  # (N, D, T', H', W')
    expected = conv.flatten(3).permute(0, 2, 3, 1)  # (N, T', S, D), tokens row-major per frame
    torch.testing.assert_close(embed(x), expected, atol=1e-5, rtol=RTOL)


@pytest.mark.parametrize("patch", [(1, 2, 2), (1, 4, 4), (2, 2, 2)])
def test_unpatchify_places_every_value(patch):
    model = tiny(patch_size=patch, input_size=patch)
    pt, ph, pw = patch
    grid = (2, 3, 2)  # (T', H', W'), non-square
    c = model.out_channels
    tokens = torch.randn(1, grid[0], grid[1] * grid[2], pt * ph * pw * c)
    out = model.unpatchify(tokens, grid)
    assert out.shape == (1, c, grid[0] * pt, grid[1] * ph, grid[2] * pw)
    for t in range(out.shape[2]):
        for h in range(out.shape[3]):
            for w in range(out.shape[4]):
                token = tokens[0, t // pt, (h // ph) * grid[2] + w // pw]
                offset = ((t % pt) * ph + h % ph) * pw + w % pw  # (pt, ph, pw, C) order, DiT's for pt = 1
                assert torch.equal(out[0, :, t, h, w], token[offset * c : (offset + 1) * c])


def test_positions_are_not_in_the_state_dict(dit):
    model = tiny(input_size=(FRAMES, 8, 8))
    model(torch.randn(1, 4, FRAMES, 8, 8), torch.tensor([1]), torch.tensor([1]))  # fills the position cache
    dit_keys = {k.replace("blocks.", "spatial_blocks.", 1) if k.startswith("blocks.") else k for k in dit[0]}
    dit_keys.discard("pos_embed")
    keys = set(model.state_dict())
    assert keys - dit_keys == {k for k in keys if k.startswith("temporal_blocks.")}
    assert dit_keys <= keys
    assert list(model.buffers()) == []


@torch.no_grad()
def test_sizes_not_divisible_by_the_patch_are_padded_then_cropped():
    """Open-Sora's rule: zero-pad T, H, W at the end to the patch, run, crop the output back."""
    torch.manual_seed(0)
    model = tiny(patch_size=(2, 2, 2), input_size=(2, 8, 8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)  # leave the zero init: a zero final layer would hide the padding
    t, y = torch.tensor([500]), torch.tensor([1])
    x = torch.randn(1, 4, 3, 8, 7)
    out = model(x, t, y)
    assert out.shape[2:] == x.shape[2:]
    padded = torch.nn.functional.pad(x, (0, 1, 0, 0, 0, 1))  # (1, 4, 4, 8, 8)
    torch.testing.assert_close(out, model(padded, t, y)[:, :, :3, :, :7], atol=0, rtol=0)


def test_invalid_inputs_raise_clear_errors():
    model = tiny()
    t, y = torch.tensor([1]), torch.tensor([1])
    with pytest.raises(ValueError, match=r"\(N, 4, T, H, W\)"):
        model(torch.randn(1, 3, 1, 8, 8), t, y)
    with pytest.raises(ValueError, match="t must have shape"):
        model(torch.randn(2, 4, 1, 8, 8), t, y)
    with pytest.raises(ValueError, match="even batch"):
        forward_with_cfg(model, torch.randn(3, 4, 1, 8, 8), torch.ones(3), torch.ones(3, dtype=torch.long), 2.0)
    with pytest.raises(ConfigError, match="heads of even size"):
        tiny(hidden_size=60)


#################################################################################
#                               Temporal attention                              #
#################################################################################


def test_temporal_blocks_mix_frames_once_trained():
    model = tiny(input_size=(FRAMES, 8, 8)).eval()
    randomize(model, prefix="final_layer")  # a non-zero readout; temporal blocks still at their zero init
    x = torch.randn(1, 4, FRAMES, 8, 8)
    x_changed = x.clone()
    x_changed[:, :, 0] += 1.0  # perturb the first frame only
    t, y = torch.tensor([10]), torch.tensor([3])
    with torch.no_grad():
        assert torch.equal(model(x, t, y)[:, :, -1], model(x_changed, t, y)[:, :, -1])  # control: frames independent
        randomize(model, prefix="temporal_blocks")
        assert not torch.allclose(model(x, t, y)[:, :, -1], model(x_changed, t, y)[:, :, -1], atol=1e-4)


def test_temporal_attention_knows_frame_order():
    # Without positions, attention across frames is permutation-equivariant: reversing the clip would
    # just reverse the output. Rotary q/k positions must break that symmetry.
    model = tiny(input_size=(FRAMES, 8, 8)).eval()
    randomize(model)
    x, t, y = torch.randn(1, 4, FRAMES, 8, 8), torch.tensor([10]), torch.tensor([3])
    with torch.no_grad():
        reversed_out = model(x.flip(2), t, y).flip(2)
        out = model(x, t, y)
    assert not torch.allclose(out, reversed_out, atol=1e-4)



def test_temporal_blocks_know_the_absolute_frame_index():
    # A still clip (every frame the same): relative positions alone (rotary) give every frame the same
    # output, since every value is the same. The frame-index term on the temporal attention input must
    # tell the frames apart, or a model cannot learn which way a class moves.
    model = tiny(input_size=(FRAMES, 8, 8)).eval()
    randomize(model)
    x = frames_of(torch.randn(1, 4, 8, 8), FRAMES)
    with torch.no_grad():
        out = model(x, torch.tensor([10]), torch.tensor([3]))  # (1, C, T, H, W)
    differences = (out[:, :, 1:] - out[:, :, :1]).abs().amax(dim=(0, 1, 3, 4))  # (T - 1,)
    assert (differences > 1e-3).all(), differences

def test_label_dropout_lives_with_the_embedder_and_follows_the_given_draws():
    model = tiny(class_dropout_prob=0.25)
    labels = torch.tensor([1, 2, 3, 4])
    uniforms = torch.tensor([0.1, 0.3, 0.24, 0.9])  # below 0.25: dropped
    assert model.drop_cond(dict(y=labels), uniforms)["y"].tolist() == [10, 2, 10, 4]
    assert model.null_cond(dict(y=labels))["y"].tolist() == [10] * 4
    # The forward pass never drops labels by itself, in training mode too.
    model.train()
    table = model.y_embedder.embedding_table.weight
    assert torch.equal(model.y_embedder(labels), table[1:5])


def test_a_model_without_a_null_class_refuses_guidance():
    model = tiny(class_dropout_prob=0.0, num_classes=11)
    with pytest.raises(ConfigError, match="no null class"):
        model.null_cond(dict(y=torch.tensor([1])))
    assert model.drop_cond(dict(y=torch.tensor([1])), torch.zeros(1))["y"].tolist() == [1]


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for checkpointing in (False, True):
        model = tiny(grad_checkpointing=checkpointing, class_dropout_prob=0.0, num_classes=11)
        randomize(model)
        x = torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        model(x, torch.tensor([1, 2]), torch.tensor([3, 4])).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert grads[0].abs().amax() > 0
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=RTOL)


#################################################################################
#                              Variants and configs                             #
#################################################################################

# DiT Table 1 (Peebles & Xie 2023), millions of parameters at 256x256 (32x32 latents), 1000 classes.
# They are the learned parameters, without the frozen pos_embed: B/2 is 130.32M without it, 130.51M with.
DIT_PUBLISHED_MILLIONS = {"STDiT-S/2": 33, "STDiT-B/2": 130, "STDiT-L/2": 458, "STDiT-XL/2": 675}
# DiT-XL/2 as DiT's train.py logs it: sum(p.numel() for p in model.parameters()). That sum INCLUDES
# DiT's frozen pos_embed Parameter (1 x 256 x 1152 = 294,912 values), which STDiT computes instead.
DIT_XL_2_PARAMETERS = 675_129_632
DIT_TOKENS_256PX = 256  # (32 / 2) ** 2 patches per frame


@pytest.mark.parametrize("name", list(DIT_PUBLISHED_MILLIONS))
def test_variant_spatial_part_has_dits_parameter_count(name):
    with torch.device("meta"):  # no memory, no init cost
        model = build_module(dict(type=name, input_size=(1, 32, 32)), MODELS)
    named = dict(model.named_parameters())
    spatial = sum(p.numel() for k, p in named.items() if not k.startswith("temporal_blocks."))
    temporal = sum(p.numel() for k, p in named.items() if k.startswith("temporal_blocks."))
    # STDiT without its temporal blocks == DiT's learned parameters (the published, rounded count) ...
    assert round(spatial / 1e6) == DIT_PUBLISHED_MILLIONS[name]
    # ... and, with DiT's stored pos_embed added back, exactly what DiT's train.py reports for XL/2.
    if name == "STDiT-XL/2":
        assert spatial + DIT_TOKENS_256PX * model.hidden_size == DIT_XL_2_PARAMETERS
    # Each temporal block has exactly a spatial block's parameters (rotary positions have none).
    assert temporal == sum(p.numel() for p in model.spatial_blocks.parameters())


def test_variants_take_overrides_and_reject_unknown_keys():
    model = build_module(dict(type="STDiT-S/2", depth=1, input_size=(2, 8, 8), num_classes=5), MODELS)
    assert (model.hidden_size, model.num_heads, len(model.spatial_blocks), model.num_classes) == (384, 6, 1, 5)
    assert model.config["type"] == "STDiT" and model.config["depth"] == 1
    with pytest.raises(ConfigError, match="deepth"):
        build_module(dict(type="STDiT-S/2", deepth=1), MODELS)


def test_config_rebuilds_the_same_architecture():
    model = tiny(patch_size=(2, 2, 2), input_size=(4, 8, 8))
    rebuilt = build_module(dict(model.config), MODELS)
    assert rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
