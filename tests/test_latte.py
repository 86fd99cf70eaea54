"""Latte (Vchitect/Latte) in STDiT's ``temporal_position="absolute-once"`` layout: fixture parity through
load_checkpoint, other sizes against a transcription of Latte's forward, the unconditional path, the key
map's refusals, the released UCF-101 key set, and tools/generate.py on the Latte configs.

Latte's tensors are (N, F, C, H, W); STDiT's are (N, C, T, H, W): the tests transpose at the boundary.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from opensora_lite.config import load_config
from opensora_lite.errors import CheckpointError
from opensora_lite.models.convert import load_checkpoint
from opensora_lite.models.layers import get_1d_sincos_pos_embed, get_2d_sincos_pos_embed
from opensora_lite.models.stdit import STDiT
from opensora_lite.registry import MODELS, SCHEDULERS, build_module
from opensora_lite.schedulers.settings import SamplingSettings

from conftest import fixture_atol, forward_with_cfg, load_fixture
from helpers import ROOT, run

TOOL = "generate"  # the command the tool fixture runs

UCF101 = str(ROOT / "configs" / "latte" / "ucf101_256.py")
SKY = str(ROOT / "configs" / "latte" / "sky_256.py")
RTOL = 1e-5


def stdit_like_latte(input_size, patch_size, hidden_size, depth, num_heads, num_frames, num_classes, learn_sigma,
                     extras, mlp_ratio=4.0, in_channels=4, **_):
    """The STDiT that holds a ``Latte(**kwargs)``: Latte's depth counts spatial and temporal blocks."""
    return STDiT(input_size=(num_frames, input_size, input_size), patch_size=(1, patch_size, patch_size),
                 in_channels=in_channels, hidden_size=hidden_size, depth=depth // 2, num_heads=num_heads,
                 mlp_ratio=mlp_ratio, num_classes=num_classes if extras == 2 else 0, learn_sigma=learn_sigma,
                 temporal_position="absolute-once").eval()


def to_stdit(x):
    return x.transpose(1, 2)  # (N, F, C, H, W) <-> (N, C, F, H, W)


@pytest.fixture(scope="module")
def latte():
    sd, inp, out, meta = load_fixture("latte_tiny")
    model = stdit_like_latte(**meta["constructor"]["kwargs"])
    report = load_checkpoint(model, {"ema": sd})  # Latte's train.py wrapper
    assert report.converted_from == "latte" and not report.missing and not report.unexpected
    return model, sd, inp, out, meta


def close(actual, out, meta, name):
    torch.testing.assert_close(actual, out[name], atol=fixture_atol(meta, name), rtol=RTOL)


##################################################################################
#                                latte_tiny parity                               #
##################################################################################

@torch.no_grad()
def test_forward_and_every_stage_match_latte(latte):
    model, _, inp, out, meta = latte
    seen = {}

    def keep(name):
        def hook(module, args):
            seen[name] = args[0]
        return hook

    hooks = [module.register_forward_pre_hook(keep(name))
             for name, module in (("spatial0", model.spatial_blocks[0]), ("temporal1", model.temporal_blocks[0]),
                                  ("final", model.final_layer))]
    try:
        close(to_stdit(model(to_stdit(inp["x"]), inp["t"], inp["y"])), out, meta, "forward")
    finally:
        for hook in hooks:
            hook.remove()
    n, f, s, d = seen["spatial0"].shape  # (N, F, S, D) tokens
    close(seen["spatial0"].reshape(n * f, s, d), out, meta, "debug.spatial0_in")  # Latte's (b f) rows
    close(seen["temporal1"].transpose(1, 2).reshape(n * s, f, d), out, meta, "debug.temporal1_in")  # (b t) rows
    close(seen["final"].reshape(n * f, s, d), out, meta, "debug.final_in")


@torch.no_grad()
def test_forward_with_cfg_and_embeddings_match_latte(latte):
    model, _, inp, out, meta = latte
    guided = forward_with_cfg(model, to_stdit(inp["x_cfg"]), inp["t_cfg"], inp["y_cfg"], 3.0)
    close(to_stdit(guided), out, meta, "forward_with_cfg")
    close(model.t_embedder.timestep_embedding(inp["t"], 256), out, meta, "t_embedder_freq")
    close(model.t_embedder(inp["t"]), out, meta, "t_emb")
    close(model.y_embedder(inp["y"]), out, meta, "y_emb")
    close(model.frame_positions(4, inp["x"])[:, 0], out, meta, "temp_embed_sincos")
    close(model.spatial_positions(4, 4, inp["x"]), out, meta, "pos_embed_sincos")


@torch.no_grad()
def test_latte_iddpm_training_loss_and_cfg_ddpm_sample(latte):
    model, _, inp, out, meta = latte
    iddpm = build_module(dict(type="iddpm"), SCHEDULERS)
    terms = iddpm.training_losses(model, to_stdit(inp["iddpm.x_start"]), dict(y=inp["iddpm.y_train"]),
                                  t=inp["iddpm.t_train"], noise=to_stdit(inp["iddpm.noise_train"]))
    for name in ("loss", "mse", "vb"):
        close(terms[name], out, meta, f"iddpm.train_{name}")
    # sample.py's p_sample_loop over cat([z1, z1]) with y = [0, null]: row 0 is our one conditional clip.
    noise = inp["iddpm.psample_noise_per_step"]  # (5, 2, F, C, H, W)
    y = inp["iddpm.y_sample_cfg"][:1]
    sample = iddpm.sample(model, to_stdit(inp["iddpm.z_sample"][:1]), dict(y=y), SamplingSettings(cfg_scale=3.0,
                          steps=5, progress=False, sampler="ddpm"), noise_fn=lambda step, shape: to_stdit(noise[step,
                                                                                                          :1]))
    name = "iddpm.psample5_cfg_sample"
    torch.testing.assert_close(to_stdit(sample), out[name][:1], atol=fixture_atol(meta, name), rtol=RTOL)


##################################################################################
#                 Other sizes: a transcription of Latte's forward                #
##################################################################################

def latte_reference(sd, x, t, y, num_heads, patch, learn_sigma_channels):
    """Vchitect/Latte models/latte.py ``Latte.forward`` transcribed (math attention, (b f) / (b t) rows)."""
    n, f, c, h, w = x.shape
    hidden = sd["t_embedder.mlp.2.weight"].shape[0]

    def linear(v, name):
        return F.linear(v, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def block(v, cond, name):
        mod = linear(F.silu(cond), f"{name}.adaLN_modulation.1").chunk(6, dim=1)
        shift1, scale1, gate1, shift2, scale2, gate2 = (m.unsqueeze(1) for m in mod)
        hdn = F.layer_norm(v, (hidden,), eps=1e-6) * (1 + scale1) + shift1
        b, length, _ = hdn.shape
        q, k, vv = linear(hdn, f"{name}.attn.qkv").reshape(b, length, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1)
        v = v + gate1 * linear((attn @ vv).transpose(1, 2).reshape(b, length, hidden), f"{name}.attn.proj")
        hdn = F.layer_norm(v, (hidden,), eps=1e-6) * (1 + scale2) + shift2
        return v + gate2 * linear(F.gelu(linear(hdn, f"{name}.mlp.fc1"), approximate="tanh"), f"{name}.mlp.fc2")

    tokens = F.conv2d(x.reshape(n * f, c, h, w), sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"],
                      stride=patch).flatten(2).transpose(1, 2) + sd["pos_embed"]  # (b f, T, D)
    t_freq = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float32) / 128)
    args = t[:, None].float() * t_freq[None]
    cond = linear(F.silu(linear(torch.cat([args.cos(), args.sin()], -1), "t_embedder.mlp.0")), "t_embedder.mlp.2")
    if y is not None:
        cond = cond + sd["y_embedder.embedding_table.weight"][y]
    spatial_c, temporal_c = cond.repeat_interleave(f, 0), cond.repeat_interleave(tokens.shape[1], 0)
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    for i in range(0, depth, 2):
        tokens = block(tokens, spatial_c, f"blocks.{i}")
        s = tokens.shape[1]
        tokens = tokens.reshape(n, f, s, hidden).transpose(1, 2).reshape(n * s, f, hidden)  # (b t) f d
        if i == 0:
            tokens = tokens + sd["temp_embed"]
        tokens = block(tokens, temporal_c, f"blocks.{i + 1}")
        tokens = tokens.reshape(n, s, f, hidden).transpose(1, 2).reshape(n * f, s, hidden)  # (b f) t d
        assert s == tokens.shape[1]
    shift, scale = linear(F.silu(spatial_c), "final_layer.adaLN_modulation.1").chunk(2, dim=1)
    tokens = linear(F.layer_norm(tokens, (hidden,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None],
                    "final_layer.linear")
    g = h // patch
    out = tokens.reshape(n * f, g, g, patch, patch, learn_sigma_channels)
    return torch.einsum("nhwpqc->nchpwq", out).reshape(n, f, learn_sigma_channels, h, w)


def random_latte_state_dict(kwargs, seed):
    """A Latte-named state dict for ``kwargs`` with random weights and the two frozen sin-cos tables."""
    gen = torch.Generator().manual_seed(seed)
    model = stdit_like_latte(**kwargs)
    d, size, p = kwargs["hidden_size"], kwargs["input_size"], kwargs["patch_size"]
    sd = {"pos_embed": get_2d_sincos_pos_embed(d, size // p, size // p)[None],
          "temp_embed": get_1d_sincos_pos_embed(d, torch.arange(kwargs["num_frames"])).float()[None]}
    for key, value in model.state_dict().items():
        for kind, offset in (("spatial_blocks.", 0), ("temporal_blocks.", 1)):
            if key.startswith(kind):
                index, rest = key[len(kind):].split(".", 1)
                key = f"blocks.{2 * int(index) + offset}.{rest}"
        if key == "x_embedder.proj.weight":
            value = value[:, :, 0]  # Latte's Conv2d
        scale = value[0].numel() ** -0.5 if value.ndim > 1 else 0.05
        sd[key] = torch.randn(value.shape, generator=gen) * scale
    return sd


OTHER_CONFIGS = {  # Latte(**kwargs): odd head size, patch 4, one frame, many frames, no learned sigma, unconditional
    "S-odd-heads": dict(input_size=8, patch_size=2, hidden_size=36, depth=4, num_heads=4, num_frames=3,
                        num_classes=7, learn_sigma=True, extras=2),
    "patch4-no-sigma": dict(input_size=16, patch_size=4, hidden_size=48, depth=2, num_heads=3, num_frames=5,
                            num_classes=2, learn_sigma=False, extras=2, mlp_ratio=2.0),
    "uncond-16-frames": dict(input_size=8, patch_size=2, hidden_size=32, depth=6, num_heads=2, num_frames=16,
                             num_classes=None, learn_sigma=True, extras=1),
    "uncond-1-frame": dict(input_size=8, patch_size=2, hidden_size=32, depth=2, num_heads=2, num_frames=1,
                           num_classes=None, learn_sigma=False, extras=1),
}


@pytest.mark.parametrize("name", list(OTHER_CONFIGS))
@torch.no_grad()
def test_other_latte_configurations_match(name):
    kwargs = OTHER_CONFIGS[name]
    sd = random_latte_state_dict(kwargs, seed=len(name))
    model = stdit_like_latte(**kwargs)
    load_checkpoint(model, {"model": sd})
    gen = torch.Generator().manual_seed(1)
    n, size = 2, kwargs["input_size"]
    x = torch.randn(n, kwargs["num_frames"], 4, size, size, generator=gen)  # (N, F, C, H, W)
    t = torch.tensor([999, 3])
    y = torch.tensor([1, kwargs["num_classes"]]) if kwargs["extras"] == 2 else None
    expected = latte_reference(sd, x, t, y, kwargs["num_heads"], kwargs["patch_size"], model.out_channels)
    torch.testing.assert_close(to_stdit(model(to_stdit(x), t, y)), expected, atol=2e-5, rtol=RTOL)


##################################################################################
#                          Unconditional and refusals                            #
##################################################################################

@torch.no_grad()
def test_unconditional_model_is_the_conditional_one_without_a_label_term(latte):
    model, sd, inp, _, meta = latte
    uncond_sd = {k: v for k, v in sd.items() if not k.startswith("y_embedder.")}
    uncond = stdit_like_latte(**{**meta["constructor"]["kwargs"], "extras": 1})
    assert uncond.y_embedder is None and load_checkpoint(uncond, uncond_sd).converted_from == "latte"
    zero_label = stdit_like_latte(**meta["constructor"]["kwargs"])
    load_checkpoint(zero_label, {**sd, "y_embedder.embedding_table.weight": torch.zeros(6, 64)})
    x = to_stdit(inp["x"])
    torch.testing.assert_close(uncond(x, inp["t"]), zero_label(x, inp["t"], inp["y"]), atol=0, rtol=0)
    with pytest.raises(CheckpointError, match=r"Latte checkpoint \(2 spatial\+temporal block pairs, hidden 64, "
                                              r"no classes.*does not fit the model \(.*5 classes"):
        load_checkpoint(model, uncond_sd)


def test_key_map_refusals(latte):
    model, sd, *_ = latte
    learned = {"temp_embed": sd["temp_embed"] + 0.01, "pos_embed": sd["pos_embed"] + 0.01}
    for key, value in learned.items():
        with pytest.raises(CheckpointError, match=f"Latte {key} differs .* learned position embeddings are not"):
            load_checkpoint(model, {**sd, key: value})
    odd = {k: v for k, v in sd.items() if not k.startswith("blocks.3.")}
    with pytest.raises(CheckpointError, match="3 blocks, an odd number"):
        load_checkpoint(model, odd)
    rotary = STDiT(input_size=(4, 8, 8), hidden_size=64, depth=2, num_heads=4, num_classes=5)
    with pytest.raises(CheckpointError, match="Latte checkpoint but the model has temporal_position='rotary'"):
        load_checkpoint(rotary, sd)
    with pytest.raises(CheckpointError, match=r"does not fit STDiT: .*missing key\(s\)"):  # neither DiT nor Latte
        load_checkpoint(model, {"weight": torch.zeros(1)})


def released_ucf101_shapes() -> dict:
    """Key names and shapes of Latte's released ucf101.pt ``ema`` (Latte-XL/2, 16 frames, 256x256, 101 classes)."""
    d, blocks, frames, grid, classes = 1152, 28, 16, 16, 101
    shapes = {"pos_embed": (1, grid * grid, d), "temp_embed": (1, frames, d),
              "x_embedder.proj.weight": (d, 4, 2, 2), "x_embedder.proj.bias": (d,),
              "t_embedder.mlp.0.weight": (d, 256), "t_embedder.mlp.0.bias": (d,),
              "t_embedder.mlp.2.weight": (d, d), "t_embedder.mlp.2.bias": (d,),
              "y_embedder.embedding_table.weight": (classes + 1, d),
              "final_layer.linear.weight": (2 * 2 * 8, d), "final_layer.linear.bias": (2 * 2 * 8,),
              "final_layer.adaLN_modulation.1.weight": (2 * d, d), "final_layer.adaLN_modulation.1.bias": (2 * d,)}
    for i in range(blocks):
        for name, shape in (("attn.qkv", (3 * d, d)), ("attn.proj", (d, d)), ("mlp.fc1", (4 * d, d)),
                            ("mlp.fc2", (d, 4 * d)), ("adaLN_modulation.1", (6 * d, d))):
            shapes[f"blocks.{i}.{name}.weight"], shapes[f"blocks.{i}.{name}.bias"] = shape, shape[:1]
    return shapes


def test_released_ucf101_key_set_loads_into_its_config_with_nothing_missing():
    cfg = load_config(UCF101)
    with torch.device("meta"):  # 2.7 GB of Latte-XL/2 is never allocated
        model = build_module(cfg.model, MODELS)
        sd = {k: torch.empty(shape) for k, shape in released_ucf101_shapes().items()}
    sd["pos_embed"] = get_2d_sincos_pos_embed(1152, 16, 16)[None]  # the tables are checked: real values
    sd["temp_embed"] = get_1d_sincos_pos_embed(1152, torch.arange(16)).float()[None]
    report = load_checkpoint(model, {"ema": sd, "model": {}})
    assert report.converted_from == "latte" and report.missing == [] and report.unexpected == []
    assert len(sd) == 2 + 2 + 4 + 1 + 4 + 28 * 10  # tables, x/t/y embedders, final layer, 28 blocks


##################################################################################
#                             tools/generate.py                                 #
##################################################################################

TINY = ["--random-init", "--no-progress", "--steps", "2", "--image_size", "(16, 16)", "--model.depth", "2",
        "--model.hidden_size", "32", "--model.num_heads", "2", "--vae.from_pretrained", "None", "--vae.config",
        "{'down_block_types': ('DownEncoderBlock2D', 'DownEncoderBlock2D'), 'up_block_types': ('UpDecoderBlock2D', "
        "'UpDecoderBlock2D'), 'block_out_channels': (8, 16), 'layers_per_block': 1, 'latent_channels': 4, "
        "'norm_num_groups': 4}"]


def test_ucf101_config_runs_end_to_end_with_a_class_name(tool, capsys, tmp_path):
    code, out, err = run(tool, capsys, UCF101, "--class", "PlayingGuitar", "playing_guitar", "--frames", 16,
                         "--save-dir", tmp_path, *TINY)
    assert code == 0, err
    assert (tmp_path / "62-0.mp4").is_file() and (tmp_path / "62-1.mp4").is_file()  # the id names the file
    assert (tmp_path / "grid-0.png").is_file() and "2 video(s) of 16 frames" in out


def test_unconditional_config_runs_with_latte_sampler(tool, capsys, tmp_path):
    code, out, err = run(tool, capsys, SKY, "--frames", 2, "--num-samples", 2, "--sampler", "ddpm",
                         "--save-dir", tmp_path, *TINY)
    assert code == 0, err
    assert (tmp_path / "sample-0.mp4").is_file() and (tmp_path / "sample-1.mp4").is_file()


def test_list_classes(tool, capsys):
    code, out, _ = run(tool, capsys, UCF101, "--list-classes")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 101 and lines[0].split() == ["0", "ApplyEyeMakeup"]
    assert lines[62].split() == ["62", "PlayingGuitar"] and lines[100].split() == ["100", "YoYo"]


@pytest.mark.parametrize("argv,expect", [
    ([UCF101, "--class", "PlayingGuitr"], "unknown class 'PlayingGuitr': closest are PlayingGuitar (62)"),
    ([SKY, "--class", "3"], "is unconditional (num_classes=0): it has no classes, so --class is not accepted"),
    ([SKY, "--cfg-scale", "4"], "it has no guidance"),
    ([UCF101, "--sampler", "euler", *TINY], "unknown sampler 'euler'"),
    ([UCF101, "--save-dir", "{tmp}"],
     "missing pretrained_models/Latte/ucf101.pt (ckpt.model): Latte's released UCF-101"),
    ([SKY, "--random-init", "--save-dir", "{tmp}"],
     "missing pretrained_models/sd-vae-ft-ema (vae.from_pretrained): the SD VAE"),
    ([str(ROOT / "configs" / "shapes" / "stdit_shapes.py"), "--ckpt", "{latte}", "--save-dir", "{tmp}"],
     "is a Latte checkpoint but the model has temporal_position='rotary'"),
    ([UCF101, "--ckpt", "{latte}", *TINY[1:], "--save-dir", "{tmp}"], "latte_tiny.safetensors is a Latte checkpoint ("),
])
def test_bad_inputs_are_one_line_exit_2(tool, capsys, tmp_path, argv, expect):
    latte_file = tmp_path / "latte_tiny.safetensors"
    if "{latte}" in argv:
        from safetensors.torch import save_file
        save_file(load_fixture("latte_tiny")[0], str(latte_file))
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{latte}", str(latte_file)) for a in argv]
    code, _, err = run(tool, capsys, *argv)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err
