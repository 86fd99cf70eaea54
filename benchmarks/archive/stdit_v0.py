"""The STDiT forward as it was before the benchmark-driven optimisations (frozen reference for before/after).

Archived: a frozen copy of old model code, not product; it follows the STDiT interface of its time
(``forward(x, t, y)``) and may not run against a later STDiT.

``forward_v0(model, x, t, y)`` runs the ORIGINAL block/attention code on the weights of a current
:class:`~opensora_lite.models.stdit.STDiT`, so ``bench_stdit.py --models stdit stdit-v0`` times old and new code side
by side in one process, on the same parameters (their outputs agree to float rounding).
"""
import torch
import torch.nn.functional as F

from opensora_lite.models.layers import get_2d_sincos_pos_embed, rotary_cos_sin


def apply_rotary(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def _modulate(x, shift, scale):
    return x * (1 + scale) + shift


def _layer_norm(x, eps):
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def _attention(attn, x, rope=None):
    N, T, S, D = x.shape
    H, Dh = attn.num_heads, D // attn.num_heads
    qkv = attn.qkv(x).view(N, T, S, 3, H, Dh)
    if attn.axis == "space":
        qkv = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, N * T, H, S, Dh)
    else:
        qkv = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, N * S, H, T, Dh)
    q, k, v = qkv.unbind(0)
    if rope is not None:
        cos, sin = (r.to(q.dtype) for r in rope)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    out = F.scaled_dot_product_attention(q, k, v)
    if attn.axis == "space":
        out = out.view(N, T, H, S, Dh).transpose(2, 3)
    else:
        out = out.view(N, S, H, T, Dh).permute(0, 3, 1, 2, 4)
    return attn.proj(out.reshape(N, T, S, D))


def _block(block, x, c, rope=None):
    mod = block.adaLN_modulation(c)[:, None, None, :]
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)
    eps = block.norm1.eps
    x = x + gate_msa * _attention(block.attn, _modulate(_layer_norm(x, eps), shift_msa, scale_msa), rope)
    x = x + gate_mlp * block.mlp.fc2(F.gelu(block.mlp.fc1(_modulate(_layer_norm(x, eps), shift_mlp, scale_mlp)),
                                            approximate="tanh"))
    return x


def _patch_embed(embed, x):
    N, C, T, H, W = x.shape
    pt, ph, pw = embed.patch_size
    x = x.reshape(N, C, T // pt, pt, H // ph, ph, W // pw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
    x = x.reshape(N, T // pt, (H // ph) * (W // pw), C * pt * ph * pw)
    return F.linear(x, embed.proj.weight.flatten(1), embed.proj.bias)


def forward_v0(model, x, t, y):
    gt, gh, gw = model._check_input(x, t, y)
    x = _patch_embed(model.x_embedder, x)
    x = x + get_2d_sincos_pos_embed(model.hidden_size, gh, gw).to(x.device, x.dtype)
    c = model.t_embedder(t) + model.y_embedder(y, model.training)
    rope = rotary_cos_sin(gt, model.hidden_size // model.num_heads, x.device)
    for spatial, temporal in zip(model.spatial_blocks, model.temporal_blocks):
        x = _block(spatial, x, c)
        x = _block(temporal, x, c, rope)
    fl = model.final_layer
    shift, scale = fl.adaLN_modulation(c)[:, None, None, :].chunk(2, dim=-1)
    x = fl.linear(_modulate(_layer_norm(x, fl.norm_final.eps), shift, scale))
    return model.unpatchify(x, (gt, gh, gw))


class STDiTv0(torch.nn.Module):
    """A module view of :func:`forward_v0` sharing ``model``'s parameters."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, t, y):
        return forward_v0(self.model, x, t, y)
