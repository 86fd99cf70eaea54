"""Open-Sora 1.2's STDiT3 as STDiT options: parity with the original (fixture ``stdit3_tiny``, made by running
hpcaitech/Open-Sora v1.2.0's code; see tests/fixtures/README.md or ../shared/fixtures/README.md, section 7)."""
from pathlib import Path

import pytest
import torch

from opensora_lite.errors import CheckpointError, ConfigError, ShapeError
from opensora_lite.models import STDiT
from opensora_lite.models.convert import load_checkpoint
from opensora_lite.models.layers import (
    TimestepEmbedder,
    apply_rotary,
    get_2d_sincos_pos_embed_scaled,
    rotary_cos_sin,
)
from opensora_lite.models.stdit import OPENSORA_V1_2

from conftest import fixture_atol, load_fixture

TINY = dict(OPENSORA_V1_2, input_size=(5, 8, 12), patch_size=(1, 2, 2), in_channels=4, hidden_size=64, depth=2,
            num_heads=4, mlp_ratio=4.0, caption_channels=32, model_max_length=8)


@pytest.fixture(scope="module")
def fixture():
    sd, inp, out, meta = load_fixture("stdit3_tiny")
    model = STDiT(**TINY).eval()
    report = load_checkpoint(model, sd)
    assert report.converted_from == "opensora" and not report.missing and not report.unexpected
    return model, inp, out, meta


def close(actual, expected, meta, name):
    torch.testing.assert_close(actual, expected.float(), atol=fixture_atol(meta, name), rtol=1e-5)


def text_args(inp, mask=True):
    return dict(y=inp["y"], y_mask=inp["mask"].bool() if mask else None, fps=inp["fps"], height=inp["height"],
                width=inp["width"])


@torch.no_grad()
def test_forward_matches_opensora(fixture):
    model, inp, out, meta = fixture
    close(model(inp["x"], inp["timestep"], **text_args(inp)), out["forward"], meta, "forward")


@torch.no_grad()
def test_forward_without_text_mask_uses_every_token(fixture):
    model, inp, out, meta = fixture
    close(model(inp["x"], inp["timestep"], **text_args(inp, mask=False)), out["forward_no_mask"], meta,
          "forward_no_mask")


@torch.no_grad()
def test_given_frames_match_opensora_x_mask(fixture):
    """x_mask (True = noised) is the project's frame_mask; the final layer's double modulation is kept."""
    model, inp, out, meta = fixture
    got = model(inp["x"], inp["timestep"], frame_mask=inp["x_mask"].bool(), **text_args(inp))
    close(got, out["forward_x_mask"], meta, "forward_x_mask")


@torch.no_grad()
def test_null_caption_and_guidance_batch(fixture):
    model, inp, out, meta = fixture
    args = text_args(inp)
    null = model.null_cond(args)
    torch.testing.assert_close(null["y_mask"], args["y_mask"])  # upstream keeps the prompts' token masks
    close(model(inp["x"], inp["timestep"], **null), out["forward_null"], meta, "forward_null")
    both = {k: torch.cat([args[k], null[k]]) for k in args}
    got = model(torch.cat([inp["x"]] * 2), torch.cat([inp["timestep"]] * 2), **both)
    close(got, out["forward_cfg_batch"], meta, "forward_cfg_batch")


@torch.no_grad()
def test_embedding_pieces(fixture):
    model, inp, out, meta = fixture
    freq = TimestepEmbedder.timestep_embedding(inp["timestep"], 256)
    close(freq, out["t_embedder_freq"], meta, "t_embedder_freq")
    close(model.t_embedder(inp["timestep"]), out["t_emb"], meta, "t_emb")
    close(model.fps_embedder(inp["fps"]), out["fps_emb"], meta, "fps_emb")
    close(model.y_embedder(inp["y"]), out["y_emb"], meta, "y_emb")
    close(model.y_embedder.y_embedding, out["y_null_table"], meta, "y_null_table")
    close(model.y_embedder(model.y_embedder.null(inp["y"])), out["y_null_emb"], meta, "y_null_emb")
    close(model.t_block(out["t_emb"] + out["fps_emb"]), out["debug.t_mlp"], meta, "debug.t_mlp")


def test_scaled_positions_match_opensora(fixture):
    _, _, out, meta = fixture
    scale = (64 * 96) ** 0.5 / 512  # batch element 0's height and width
    close(get_2d_sincos_pos_embed_scaled(64, 4, 6, scale, round(24**0.5))[None], out["pos_embed"], meta,
          "pos_embed")
    close(get_2d_sincos_pos_embed_scaled(64, 5, 7)[None], out["pos_embed_5x7_plain"], meta, "pos_embed_5x7_plain")


def test_interleaved_rotary_matches_rotary_embedding_torch(fixture):
    _, inp, out, meta = fixture
    probe = inp["rope_probe"]  # (1, 2, T, Dh): positions along T
    cos, sin = rotary_cos_sin(probe.shape[-2], probe.shape[-1], interleaved=True)
    close(apply_rotary(probe, cos, sin, interleaved=True), out["rope_probe"], meta, "rope_probe")


##################################################################################
#                  Open-Sora 1.2 sampling (RFLOW.sample) with STDiT3                #
##################################################################################


class Recorder(torch.nn.Module):
    """The fixture's model, recording each call's timesteps, latents and frame mask."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def null_cond(self, cond):
        return self.model.null_cond(cond)

    def forward(self, x, t, frame_mask=None, **cond):
        self.calls.append((t, x, frame_mask))
        return self.model(x, t, frame_mask=frame_mask, **cond)


def sample_cond(inp):
    return dict(y=inp["rflow.y"], y_mask=inp["rflow.mask"].bool(), fps=torch.tensor([24.0, 24.0]),
                height=torch.tensor([64.0, 64.0]), width=torch.tensor([96.0, 96.0]))


def opensora_rflow():
    from opensora_lite.schedulers.rectified_flow import RectifiedFlow

    return RectifiedFlow(num_sampling_steps=4, num_timesteps=1000, cfg_scale=7.0, use_timestep_transform=True)


# 64x96 pixels, 17 frames: 5 latent frames with Open-Sora 1.2's VAE (upstream: num_frames // 17 * 5)
def opensora_size():
    from opensora_lite.schedulers.settings import VideoSize

    return VideoSize(64, 96, 5)


@torch.no_grad()
def test_guided_sample_matches_opensora_rflow(fixture):
    """4 Euler steps, guidance 7, the resolution- and length-dependent time shift (64x96, 17 frames)."""
    model, inp, out, meta = fixture
    recorder = Recorder(model)
    z = opensora_rflow().sample(recorder, inp["rflow.z"], sample_cond(inp), size=opensora_size())
    close(z, out["rflow.z"], meta, "rflow.z")
    close(torch.stack([t for t, _, _ in recorder.calls]), out["rflow.model_t"], meta, "rflow.model_t")
    close(torch.stack([x[:2] for _, x, _ in recorder.calls]), out["rflow.z_before_step"], meta,
          "rflow.z_before_step")


@torch.no_grad()
def test_frame_conditioned_sample_matches_opensora(fixture, monkeypatch):
    """Open-Sora's mask [[0,1,1,1,1], [0,0,1,1,0.4]]: frames 0 (and 1) given, and sample 1's last frame given
    until t = 400, then re-noised and generated. Upstream's four noise draws are injected in order."""
    from opensora_lite.schedulers import rectified_flow
    from opensora_lite.schedulers.guidance import GivenFrames

    model, inp, out, meta = fixture
    draws = list(inp["rflow_mask.randn_like_draws"])
    monkeypatch.setattr(rectified_flow, "renoise_draw", lambda like, generator: draws.pop(0))
    mask = out["rflow_mask.mask"]  # (2, 5): 0 given, 1 generated, 0.4 given until t = 400
    given = GivenFrames(out["rflow_mask.z_init"], mask >= 1, strength=mask)
    recorder = Recorder(model)
    z = opensora_rflow().sample(recorder, out["rflow_mask.z_init"], sample_cond(inp), size=opensora_size(),
                                given=given)
    assert not draws  # one draw per step
    close(z, out["rflow_mask.z"], meta, "rflow_mask.z")
    close(torch.stack([t for t, _, _ in recorder.calls]), out["rflow_mask.model_t"], meta, "rflow_mask.model_t")
    close(torch.stack([x[:2] for _, x, _ in recorder.calls]), out["rflow_mask.z_model_in"], meta,
          "rflow_mask.z_model_in")
    assert torch.equal(torch.stack([m for _, _, m in recorder.calls]), out["rflow_mask.x_mask_per_step"])


def test_released_key_set_loads_with_nothing_missing_or_unexpected():
    """Every key of Open-Sora's STDiT3-XL/2 at full size (tests/fixtures/make_stdit3_xl2_keys.py ran upstream's
    code) is one of ours with the same shape, and nothing else: rope.freqs is checked and dropped."""
    import json
    from pathlib import Path

    from opensora_lite.models.stdit import STDiT3_XL_2

    released = json.loads((Path(__file__).parent / "fixtures/stdit3_xl2_keys.json").read_text())["keys"]
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in STDiT3_XL_2().state_dict().items()}
    assert released.pop("rope.freqs") == [36]  # head_dim 72: 36 rotary frequencies
    assert ours == released


def test_a_misfit_checkpoint_is_one_line(fixture):
    sd = load_fixture("stdit3_tiny")[0]
    del sd["temporal_blocks.1.attn.q_norm.weight"]
    sd["final_layer.linear.weight"] = sd["final_layer.linear.weight"][:4]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(STDiT(**TINY), sd)
    message = str(err.value)
    assert "\n" not in message and "temporal_blocks.1.attn.q_norm.weight" in message
    assert "final_layer.linear.weight: expected (32, 64) found (4, 64)" in message
    sd = load_fixture("stdit3_tiny")[0]
    sd["rope.freqs"] = sd["rope.freqs"] * 2
    with pytest.raises(CheckpointError, match="rope.freqs differs from the fixed rotary"):
        load_checkpoint(STDiT(**TINY), sd)


def test_text_models_refuse_bad_inputs(fixture):
    model, inp, _, _ = fixture
    args = text_args(inp)
    with pytest.raises(ShapeError, match=r"needs y of shape \(2, \[1,\] L, 32\)"):
        model(inp["x"], inp["timestep"], **{**args, "y": torch.zeros(2, 5)})
    with pytest.raises(ShapeError, match="at least one text token"):
        model(inp["x"], inp["timestep"], **{**args, "y_mask": torch.zeros(2, 8, dtype=torch.bool)})
    with pytest.raises(ShapeError, match="padded to the model's model_max_length 8"):
        model(inp["x"], inp["timestep"], **{**args, "y": torch.zeros(2, 1, 5, 32), "y_mask": None})
    with pytest.raises(ShapeError, match="pass fps"):
        model(inp["x"], inp["timestep"], **{**args, "fps": None})
    with pytest.raises(ShapeError, match="pass height and width"):
        model(inp["x"], inp["timestep"], **{**args, "height": None})
    with pytest.raises(ConfigError, match="not both"):
        STDiT(**{**TINY, "num_classes": 10})


@pytest.mark.parametrize("case", ["odd", "image", "grid_x_mask"])
@torch.no_grad()
def test_other_sizes_match_opensora(fixture, case):
    """Our own checks against Open-Sora v1.2.0's STDiT3 (tests/fixtures/make_stdit3_extra.py ran its code with the
    stdit3_tiny weights; the same harness gives the shared fixture's forward within 2.3e-6): 3 frames of 7x9
    latents (padded to the patch, then cropped), a single frame (an image), a 6x10 grid with a given frame, and
    prompts of 5 and 8 tokens in one batch."""
    from safetensors.torch import load_file

    model = fixture[0]
    ref = load_file(str(Path(__file__).parent / "fixtures" / "stdit3_extra.safetensors"))
    get = {k[len(case) + 1:]: v for k, v in ref.items() if k.startswith(case + ".")}
    frame_mask = get["x_mask"].bool() if "x_mask" in get else None
    out = model(get["x"], get["t"], y=get["y"], y_mask=get["mask"].bool(), fps=torch.full((len(get["t"]),), 24.0),
                height=get["height"], width=get["width"], frame_mask=frame_mask)
    assert out.shape == get["out"].shape
    torch.testing.assert_close(out, get["out"], atol=3e-5, rtol=1e-5)
