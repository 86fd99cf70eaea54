"""Building blocks of STDiT: embedders, attention over space or time, MLP, adaLN modulation, positions.

Parameter names follow facebookresearch/DiT (and timm's ``Attention``/``Mlp``) so that DiT checkpoints
load by name. Every token tensor is laid out as ``(N, T, S, D)``: N clips, T frames (after temporal
patching), S = H' * W' patches per frame, D channels.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import cpu_speed

#################################################################################
#                                   Constants                                   #
#################################################################################

TIMESTEP_FREQ_DIM = 256  # sinusoidal timestep features fed to the t-MLP (DiT's frequency_embedding_size)
MAX_PERIOD = 10000  # longest period of the timestep and 2-D sin-cos features (Transformer / DiT)
ROPE_THETA = 10000.0  # base of the rotary frequencies of temporal attention (RoFormer)
LAYER_NORM_EPS = 1e-6  # DiT's LayerNorm eps (no affine: adaLN supplies scale and shift)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift``, with shift/scale already shaped to broadcast over x (one fused pass)."""
    return torch.addcmul(shift, x, 1 + scale)


#################################################################################
#                                   Positions                                   #
#################################################################################


def get_1d_sincos_pos_embed(embed_dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, embed_dim) ``cat([sin, cos])`` features, computed in float64 like DiT's numpy code."""
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)  # (D/2,)
    omega = 1.0 / MAX_PERIOD**omega  # (D/2,)
    angles = pos.to(torch.float64)[:, None] * omega[None, :]  # (M, D/2)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (M, D)


def get_2d_sincos_pos_embed(embed_dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """DiT's fixed 2-D sin-cos table for a (grid_h, grid_w) patch grid -> (grid_h * grid_w, embed_dim) float32.

    Tokens are in row-major order (row i, column j -> i * grid_w + j). DiT's quirk, kept for checkpoint
    compatibility: the FIRST half of the channels encodes the column (w) index, the second half the row.
    """
    if embed_dim % 4:
        raise ConfigError(f"2-D sin-cos positions need embed_dim divisible by 4, got {embed_dim}")
    rows, cols = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64), torch.arange(grid_w, dtype=torch.float64), indexing="ij"
    )  # each (h, w)
    emb_col = get_1d_sincos_pos_embed(embed_dim // 2, cols.reshape(-1))  # (h*w, D/2)
    emb_row = get_1d_sincos_pos_embed(embed_dim // 2, rows.reshape(-1))  # (h*w, D/2)
    return torch.cat([emb_col, emb_row], dim=1).float()  # (h*w, D)


def rotary_cos_sin(length: int, head_dim: int, device=None, interleaved: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary tables for positions 0..length-1 -> (cos, sin), each (length, head_dim) float32.

    Pair i rotates by angle pos / 10000^(2i / Dh). ``interleaved`` pairs channels (2i, 2i+1) as
    rotary_embedding_torch does (Open-Sora 1.2), else (i, i + Dh/2) (GPT-NeoX, STDiT's own).
    """
    if head_dim % 2:
        raise ConfigError(f"rotary positions need an even head dim, got {head_dim}")
    inv_freq = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * inv_freq[None]  # (L, Dh/2)
    if interleaved:
        angles = angles.repeat_interleave(2, dim=-1)  # (L, Dh): [a0, a0, a1, a1, ...]
    else:
        angles = torch.cat([angles, angles], dim=-1)  # (L, Dh): the two halves rotate together
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool = False) -> torch.Tensor:
    """Rotate the channel pairs of x (..., Dh) by position-dependent angles (pairs as in :func:`rotary_cos_sin`).

    cos/sin (..., Dh) broadcast against x (e.g. (L, Dh) for x (..., L, Dh)). Three passes over x:
    ``x * cos + partner(x) * [-sin, sin]`` (the sign lives in the small table, not in a negated copy of x).
    """
    if interleaved:
        pairs = x.unflatten(-1, (-1, 2))  # (..., Dh/2, 2)
        swapped = pairs.flip(-1).flatten(-2)  # (..., Dh): [x1, x0, x3, x2, ...]
        signed_sin = (sin.unflatten(-1, (-1, 2)) * sin.new_tensor([-1.0, 1.0])).flatten(-2)  # (..., Dh), small
    else:
        half = x.shape[-1] // 2
        swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)  # (..., Dh): [x2, x1]
        signed_sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)  # (..., Dh), small
    return torch.addcmul(x * cos, swapped, signed_sin)  # (..., Dh)


def get_2d_sincos_pos_embed_scaled(embed_dim: int, grid_h: int, grid_w: int, scale: float = 1.0,
                                   base_size: int | None = None) -> torch.Tensor:
    """Open-Sora 1.2's 2-D sin-cos table (``PositionEmbedding2D``) for any resolution -> (h*w, D) float32.

    The grid is ``arange(n) / scale * (base_size / n)`` along each axis (no ``base_size``: ``arange(n) /
    scale``), so every aspect ratio spans ``base_size`` units and larger videos (``scale`` = sqrt(H W) / 512
    in pixels) are spread finer.
    Computed in float32 in upstream's order of operations (parity); the first half of the channels encodes
    the column, as in :func:`get_2d_sincos_pos_embed`, but each half is ``cat([sin, cos])`` of D/4
    frequencies ``1 / 10000^(2i / (D/2))``.
    """
    if embed_dim % 4:
        raise ConfigError(f"2-D sin-cos positions need embed_dim divisible by 4, got {embed_dim}")
    half = embed_dim // 2
    inv_freq = 1.0 / (MAX_PERIOD ** (torch.arange(0, half, 2).float() / half))  # (D/4,)

    def axis(n: int) -> torch.Tensor:  # (n, D/2) features of one axis
        coords = torch.arange(n) / scale  # (n,) float32
        if base_size is not None:
            coords = coords * (base_size / n)
        angles = coords[:, None] * inv_freq[None]  # (n, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    rows, cols = axis(grid_h), axis(grid_w)  # (h, D/2), (w, D/2)
    table = torch.cat([cols[None, :, :].expand(grid_h, -1, -1), rows[:, None, :].expand(-1, grid_w, -1)], dim=-1)
    return table.reshape(grid_h * grid_w, embed_dim)  # (h*w, D), row-major tokens


#################################################################################
#                                   Embedders                                   #
#################################################################################


class PatchEmbed3D(nn.Module):
    """Cut a clip into (pt, ph, pw) patches and project each to D channels.

    The weight is stored as DiT's patch conv (``proj``, a Conv3d with kernel = stride = patch), but the
    projection runs as one matmul on the gathered patches: this writes the (N, T', S, D) token grid
    directly in its final layout instead of transposing the much larger conv output.
    """

    def __init__(self, patch_size: tuple[int, int, int], in_channels: int, hidden_size: int):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, T, H, W = x.shape
        pt, ph, pw = self.patch_size
        x = x.reshape(N, C, T // pt, pt, H // ph, ph, W // pw, pw)  # (N, C, T', pt, H', ph, W', pw)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (N, T', H', W', C, pt, ph, pw)
        x = x.reshape(N, T // pt, (H // ph) * (W // pw), C * pt * ph * pw)  # (N, T', S, C*pt*ph*pw)
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)  # (N, T', S, D)


class TimestepEmbedder(nn.Module):
    """Scalar timesteps -> (N, D): sinusoidal features then a SiLU MLP (DiT's TimestepEmbedder)."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = TIMESTEP_FREQ_DIM):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    @staticmethod
    def timestep_embedding(t: torch.Tensor, dim: int, max_period: int = MAX_PERIOD) -> torch.Tensor:
        """(N,) timesteps (int or float) -> (N, dim) ``cat([cos, sin])`` features.

        The frequencies are computed in float32 exactly as DiT does: other formulas (float64, or
        ``max_period ** (-i / half)``) differ by up to 6e-5 and break checkpoint parity.
        """
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32, device=t.device) / half
        )  # (half,)
        args = t[:, None].float() * freqs[None]  # (N, half)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (N, 2*half)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)  # (N, dim)
        return emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t_freq = self.timestep_embedding(t, self.frequency_embedding_size)  # (N, 256)
        return self.mlp(t_freq.to(self.mlp[0].weight.dtype))  # (N, D)


class LabelEmbedder(nn.Module):
    """Class ids -> (N, D), and the label dropout of classifier-free guidance (DiT's LabelEmbedder).

    Id ``num_classes`` is the null class; its row exists only when ``dropout_prob > 0``. The forward pass
    never drops labels: training drops them explicitly with :meth:`drop` on uniform draws the trainer
    makes from its per-step generator, so a step's randomness depends only on (seed, step).
    """

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float):
        super().__init__()
        use_cfg_embedding = int(dropout_prob > 0)
        self.embedding_table = nn.Embedding(num_classes + use_cfg_embedding, hidden_size)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def drop(self, labels: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Replace labels (N,) by the null id where ``uniforms`` (N,) in [0, 1) fall below ``dropout_prob``."""
        return torch.where(uniforms.to(labels.device) < self.dropout_prob, self.num_classes, labels)  # (N,)

    def null(self, labels: torch.Tensor) -> torch.Tensor:
        """The null class id for every row of labels (N,): guidance's unconditional branch."""
        return torch.full_like(labels, self.num_classes)  # (N,)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)  # (N, D)


class CaptionEmbedder(nn.Module):
    """Text-encoder tokens (N, L, C_text) -> (N, L, D) through a tanh-GELU MLP (Open-Sora's ``y_proj``), and the
    learned null caption (``y_embedding``, (L, C_text)) that guidance and caption dropout put in a prompt's place.

    Like :class:`LabelEmbedder`, the forward pass never drops captions: training calls :meth:`drop` with
    uniform draws from its per-step generator.
    """

    def __init__(self, caption_channels: int, hidden_size: int, num_tokens: int, dropout_prob: float):
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden_size, hidden_size)
        self.register_buffer("y_embedding", torch.randn(num_tokens, caption_channels) / caption_channels**0.5)
        self.dropout_prob = dropout_prob

    def null(self, y: torch.Tensor) -> torch.Tensor:
        """The null caption in the layout of y (N, [1,] L, C_text)."""
        return self.y_embedding.to(y.dtype).expand(y.shape)

    def drop(self, y: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Replace the captions y (N, [1,] L, C) whose ``uniforms`` (N,) fall below ``dropout_prob`` by the null one."""
        dropped = (uniforms.to(y.device) < self.dropout_prob).view(-1, *([1] * (y.ndim - 1)))  # (N, 1, ...)
        return torch.where(dropped, self.null(y), y)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.y_proj(y)  # (N, [1,] L, D)


#################################################################################
#                              Attention and MLP                                #
#################################################################################


class RMSNorm(nn.Module):
    """Llama's RMSNorm over the last axis, computed in float32: ``weight * x / sqrt(mean(x^2) + eps)``."""

    def __init__(self, dim: int, eps: float = LAYER_NORM_EPS):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * rms_normalize(x, self.eps)


def rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over the last axis, in float32, returned in x's dtype."""
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention along one axis of a (N, T, S, D) token grid.

    ``axis="space"``: tokens of one frame attend to each other (batch N*T, sequence S).
    ``axis="time"``: each patch position attends across frames (batch N*S, sequence T); pass the rotary
    tables so that frame order is known (positions live on q/k only, never in the residual stream).
    ``qk_norm``: q and k are RMS-normalized per head before any rotary (Open-Sora 1.2).

    The residual stream is never rearranged. For ``time`` the qkv projection reads the (N, S, T, D)
    transposed view (the one gather of the block: D channels, where gathering q/k/v would move 3D),
    and the output is returned as a transposed view that the caller's residual update reads in place.
    Everything between (q/k/v split, heads, the attention kernel's output) is a view.
    """

    def __init__(self, dim: int, num_heads: int, axis: str, qk_norm: bool = False, interleaved_rope: bool = False):
        super().__init__()
        if axis not in ("space", "time"):
            raise ConfigError(f"axis must be 'space' or 'time', got {axis!r}")
        if dim % num_heads:
            raise ConfigError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.axis = axis
        self.interleaved_rope = interleaved_rope
        self.qkv = nn.Linear(dim, dim * 3)  # fused q, k, v (DiT / timm layout)
        self.q_norm = RMSNorm(dim // num_heads) if qk_norm else None
        self.k_norm = RMSNorm(dim // num_heads) if qk_norm else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.axis == "time":
            x = x.transpose(1, 2)  # (N, S, T, D) view: sequences run over frames
        A, B, L, D = x.shape  # sequences are x[a, b] (A*B of them), of length L
        H, Dh = self.num_heads, D // self.num_heads
        qkv = self.qkv(x).view(A, B, L, 3, H, Dh)  # (A, B, L, 3, H, Dh), contiguous
        if rope is None and self.q_norm is None:
            q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, A * B, H, L, Dh).unbind(0)  # views (A*B, H, L, Dh)
        else:
            qk = qkv[:, :, :, :2]  # (A, B, L, 2, H, Dh): q and k, normalized and rotated at once
            if self.q_norm is not None:
                weight = torch.stack([self.q_norm.weight, self.k_norm.weight])[:, None, :]  # (2, 1, Dh)
                qk = weight * rms_normalize(qk, self.q_norm.eps)
            if rope is not None:
                cos, sin = (r.to(qkv.dtype)[:, None, None, :] for r in rope)  # each (L, 1, 1, Dh)
                qk = apply_rotary(qk, cos, sin, self.interleaved_rope)
            q, k = qk.permute(3, 0, 1, 4, 2, 5).reshape(2, A * B, H, L, Dh).unbind(0)  # (A*B, H, L, Dh)
            v = qkv[:, :, :, 2].permute(0, 1, 3, 2, 4).reshape(A * B, H, L, Dh)  # view
        out = cpu_speed.attention(q, k, v)  # (A*B, H, L, Dh)
        out = self.proj(out.transpose(1, 2).reshape(A, B, L, D))  # (A, B, L, D)
        return out.transpose(1, 2) if self.axis == "time" else out  # (N, T, S, D)


class CrossAttention(nn.Module):
    """Every token of a clip attends to that clip's text tokens (Open-Sora's ``MultiHeadCrossAttention``).

    x (N, T, S, D) queries, y (N, L, D) text tokens, y_mask (N, L) bool (True = a real token; None: all L).
    Padding tokens are never attended. No modulation, no gate, no positions.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, dim * 2)  # k is the first D features, v the last D
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None = None) -> torch.Tensor:
        N, T, S, D = x.shape
        L, H, Dh = y.shape[1], self.num_heads, D // self.num_heads
        q = self.q_linear(x).view(N, T * S, H, Dh).transpose(1, 2)  # (N, H, T*S, Dh)
        k, v = self.kv_linear(y).view(N, L, 2, H, Dh).permute(2, 0, 3, 1, 4).unbind(0)  # each (N, H, L, Dh)
        keep = None if y_mask is None else y_mask[:, None, None, :]  # (N, 1, 1, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (N, H, T*S, Dh)
        return self.proj(out.transpose(1, 2).reshape(N, T, S, D))  # (N, T, S, D)


class Mlp(nn.Module):
    """Two-layer MLP with tanh-approximated GELU (DiT's choice; timm ``Mlp`` names); out_dim defaults to dim."""

    def __init__(self, dim: int, hidden_dim: int, out_dim: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(cpu_speed.linear_gelu(x, self.fc1, self.act))  # (..., out): fc2(act(fc1(x)))
