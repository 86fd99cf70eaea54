"""STDiT: a class-conditional spatial-temporal diffusion transformer for video latents.

It is DiT (Peebles & Xie, 2023) with every block split in two: a **spatial** block (attention within a
frame) followed by a **temporal** block (attention across frames at one patch position). The spatial
half keeps DiT's parameter names, so an image DiT checkpoint loads into ``spatial_blocks``; temporal
blocks are adaLN-Zero initialized, so such a model reproduces DiT exactly on every frame of a clip.

Positions are computed, never stored: DiT's 2-D sin-cos table for the actual (H', W') patch grid is
added to the tokens. Frame order never enters the residual stream (that keeps the image-DiT equivalence):
each temporal block adds a 1-D sin-cos table of the frame index to its own attention input (the
normalized, modulated tokens, so values know which frame they come from) and rotates q/k (rotary).
Rotary alone is relative: the absolute term is what tells the frames of a still clip apart.

``temporal_position="absolute-once"`` is Latte's layout instead (Vchitect/Latte ``models/latte.py``): the
same 1-D table is added to the residual stream once, just before the first temporal block, with no rotary
and no per-block term; ``num_classes=0`` (Latte's unconditional models) builds no label embedder.

Shapes: N clips, C latent channels, (T, H, W) latent size, (pt, ph, pw) patch, (T', H', W') patch grid,
S = H' * W' tokens per frame, D hidden size.
"""
import inspect

import torch
import torch.utils.checkpoint
from torch import nn

from ..errors import ConfigError, ShapeError
from ..registry import MODELS
from .layers import (
    LAYER_NORM_EPS,
    Attention,
    LabelEmbedder,
    Mlp,
    PatchEmbed3D,
    TimestepEmbedder,
    get_1d_sincos_pos_embed,
    get_2d_sincos_pos_embed,
    modulate,
    rotary_cos_sin,
)

EMBEDDING_INIT_STD = 0.02  # DiT: normal(0, 0.02) for the class table and the timestep MLP
# How temporal blocks know frame order: "rotary" (STDiT's own: rotary q/k plus a per-block frame-index term
# in the attention input) or "absolute-once" (Latte's: one sin-cos table added to the residual stream
# before the first temporal block).
TEMPORAL_POSITIONS = ("rotary", "absolute-once")

#################################################################################
#                                 Core STDiT model                              #
#################################################################################


class STDiTBlock(nn.Module):
    """A DiT block with adaLN-Zero conditioning; its attention runs over space or over time."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, axis: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYER_NORM_EPS)
        self.attn = Attention(hidden_size, num_heads, axis)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope=None, frame_pos=None) -> torch.Tensor:
        """x (N, T', S, D), c (N, D) or per frame (N, T', D); temporal blocks get rope (cos, sin) and
        frame_pos (T', 1, D)."""
        mod = per_token(self.adaLN_modulation(c))  # (N, 1 or T', 1, 6D): per clip or frame, broadcast to tokens
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)  # each (N, ., 1, D)
        h = modulate(self.norm1(x), shift_msa, scale_msa)  # (N, T', S, D)
        if frame_pos is not None:
            h = h + frame_pos  # (N, T', S, D): the frame index, inside this branch only
        # Gated residuals as one fused multiply-add each: x + gate * f(x)
        x = torch.addcmul(x, gate_msa, self.attn(h, rope))  # (N, T', S, D)
        x = torch.addcmul(x, gate_mlp, self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp)))  # (N, T', S, D)
        return x


def per_token(mod: torch.Tensor) -> torch.Tensor:
    """adaLN parameters (N, k) per clip or (N, T', k) per frame -> (N, 1 or T', 1, k), broadcast over tokens."""
    return mod[:, None, None, :] if mod.ndim == 2 else mod[:, :, None, :]


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm, then a linear map from each token to its patch of output pixels."""

    def __init__(self, hidden_size: int, patch_volume: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYER_NORM_EPS)
        self.linear = nn.Linear(hidden_size, patch_volume * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = per_token(self.adaLN_modulation(c)).chunk(2, dim=-1)  # each (N, 1 or T', 1, D)
        return self.linear(modulate(self.norm_final(x), shift, scale))  # (N, T', S, pt*ph*pw*C_out)


@MODELS.register_module()
class STDiT(nn.Module):
    """Spatial-temporal DiT. ``forward(x, t, y)``: (N, C, T, H, W) latents -> (N, C_out, T, H, W).

    ``input_size`` is the nominal latent (T, H, W) (stored in the config for samplers); any T, H, W
    divisible by ``patch_size`` works. C_out = 2C when ``learn_sigma`` (the second half is the
    variance for IDDPM; rectified flow and DDIM use the first half).
    """

    def __init__(
        self,
        input_size=(16, 32, 32),
        patch_size=(1, 2, 2),
        in_channels: int = 4,
        hidden_size: int = 1152,
        depth: int = 28,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        class_dropout_prob: float = 0.1,
        num_classes: int = 1000,
        learn_sigma: bool = True,
        grad_checkpointing: bool = False,
        temporal_position: str = "rotary",
    ):
        super().__init__()
        input_size, patch_size = _check_config(input_size, patch_size, hidden_size, num_heads, temporal_position,
                                               num_classes)
        self.config = dict(
            type="STDiT", input_size=list(input_size), patch_size=list(patch_size), in_channels=in_channels,
            hidden_size=hidden_size, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
            class_dropout_prob=class_dropout_prob, num_classes=num_classes, learn_sigma=learn_sigma,
            grad_checkpointing=grad_checkpointing, temporal_position=temporal_position,
        )  # JSON-ready constructor kwargs: stored in checkpoints, rebuilt by registry.build_module
        self.input_size = input_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.num_classes = num_classes
        self.learn_sigma = learn_sigma
        self.grad_checkpointing = grad_checkpointing
        self.temporal_position = temporal_position

        self.x_embedder = PatchEmbed3D(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        # num_classes=0: an unconditional model (no label embedder, no guidance)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob) if num_classes else None
        self.spatial_blocks = nn.ModuleList(
            [STDiTBlock(hidden_size, num_heads, mlp_ratio, axis="space") for _ in range(depth)]
        )
        self.temporal_blocks = nn.ModuleList(
            [STDiTBlock(hidden_size, num_heads, mlp_ratio, axis="time") for _ in range(depth)]
        )
        self.final_layer = FinalLayer(hidden_size, patch_size[0] * patch_size[1] * patch_size[2], self.out_channels)
        self._position_cache = {}  # computed position tables, keyed by shape/device/dtype: never in state_dict
        self.initialize_weights()

    def initialize_weights(self):
        """Every init decision, as DiT: xavier Linear, adaLN-Zero, and a zero final layer (output starts at 0)."""

        def _basic_init(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

        self.apply(_basic_init)

        # Patch embedding: initialize like a Linear on the flattened patch.
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj.bias, 0)

        # Class table and timestep MLP.
        if self.y_embedder is not None:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=EMBEDDING_INIT_STD)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=EMBEDDING_INIT_STD)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=EMBEDDING_INIT_STD)

        # adaLN-Zero: every block starts as the identity (gates are 0), spatial and temporal alike.
        for block in [*self.spatial_blocks, *self.temporal_blocks]:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)

        # Zero final layer: an untrained model predicts exactly 0.
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    #############################################################################
    #                                 Positions                                 #
    #############################################################################

    def _cached(self, key, make):
        """Memoize a computed table; inference-mode tensors are kept apart (autograd may not save them).

        Under torch.compile the table is computed in the graph instead (constants that inductor folds):
        a dict lookup keyed by device and dtype would break the graph and recompile for every key.
        """
        if torch.compiler.is_compiling():
            return make()
        key = (*key, torch.is_inference_mode_enabled())
        if key not in self._position_cache:
            self._position_cache[key] = make()
        return self._position_cache[key]

    def spatial_positions(self, grid_h: int, grid_w: int, ref: torch.Tensor) -> torch.Tensor:
        """DiT's 2-D sin-cos table for the (grid_h, grid_w) patch grid -> (S, D), on ref's device and dtype."""
        return self._cached(
            ("space", grid_h, grid_w, ref.device, ref.dtype),
            lambda: get_2d_sincos_pos_embed(self.hidden_size, grid_h, grid_w).to(ref.device, ref.dtype),
        )

    def frame_positions(self, length: int, ref: torch.Tensor) -> torch.Tensor:
        """1-D sin-cos table of frame indices 0..length-1 -> (length, 1, D), on ref's device and dtype."""
        return self._cached(
            ("frame", length, ref.device, ref.dtype),
            lambda: get_1d_sincos_pos_embed(self.hidden_size, torch.arange(length))[:, None, :].to(
                ref.device, ref.dtype),
        )

    def temporal_positions(self, length: int, ref: torch.Tensor):
        """What the temporal blocks get for ``length`` frames: ``(rope, block_frame_pos, once_frame_pos)``.

        "rotary": rotary (cos, sin) and the (T', 1, D) table for every temporal block, nothing once.
        "absolute-once" (Latte): no rotary, nothing per block, the (T', 1, D) table once before block 0.
        """
        frame_pos = self.frame_positions(length, ref)  # (T', 1, D)
        if self.temporal_position == "absolute-once":
            return None, None, frame_pos
        return self.temporal_rope(length, ref.device), frame_pos, None

    def temporal_rope(self, length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary (cos, sin) tables for ``length`` frames, each (length, D / num_heads) float32."""
        return self._cached(
            ("time", length, device),
            lambda: rotary_cos_sin(length, self.hidden_size // self.num_heads, device),
        )

    #############################################################################
    #                                  Forward                                  #
    #############################################################################

    def _check_input(self, x: torch.Tensor, t: torch.Tensor, y, frame_mask) -> tuple[int, int, int]:
        """Raise ValueError on a malformed input; return the patch grid (T', H', W')."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"STDiT expects x of shape (N, {self.in_channels}, T, H, W), got {tuple(x.shape)}"
            )
        size = tuple(x.shape[2:])
        if any(s % p for s, p in zip(size, self.patch_size)):
            raise ShapeError(
                f"latent size (T, H, W) = {size} is not divisible by patch_size {self.patch_size}; "
                f"choose frames and resolution so that each is a multiple of the patch"
            )
        n = x.shape[0]
        if t.shape != (n,):
            raise ShapeError(f"t must have shape ({n},), got {tuple(t.shape)}")
        if self.y_embedder is not None and (y is None or y.shape != (n,)):
            raise ShapeError(f"this class-conditional model needs y of shape ({n},) (class ids), got "
                             f"{None if y is None else tuple(y.shape)}")
        if frame_mask is not None and frame_mask.shape != (n, size[0]):
            raise ShapeError(f"frame_mask must be (N, T) = {(n, size[0])} (True = noised frame), "
                             f"got {tuple(frame_mask.shape)}")
        return tuple(s // p for s, p in zip(size, self.patch_size))

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(N, T', S, pt*ph*pw*C_out) tokens -> (N, C_out, T, H, W); pt = 1 gives DiT's ``nhwpqc->nchpwq``."""
        (gt, gh, gw), (pt, ph, pw) = grid, self.patch_size
        x = x.reshape(x.shape[0], gt, gh, gw, pt, ph, pw, self.out_channels)  # (N, T', H', W', pt, ph, pw, C)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (N, C, T', pt, H', ph, W', pw)
        return x.reshape(x.shape[0], self.out_channels, gt * pt, gh * ph, gw * pw)  # (N, C, T, H, W)

    def _run_block(self, block: STDiTBlock, *args) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y=None, frame_mask=None) -> torch.Tensor:
        """x (N, C, T, H, W) latents, t (N,) timesteps, y (N,) class ids (``num_classes`` = null class).

        ``frame_mask`` (N, T) bool marks the noised latent frames; where it is False the frame is given
        (clean) and is modulated with the embedding of t = 0 instead of t, in every block and the final
        layer (Open-Sora 1.2's scheme). None, or all True, is exactly the unconditioned model.
        """
        gt, gh, gw = self._check_input(x, t, y, frame_mask)  # patch grid (T', H', W')
        x = self.x_embedder(x)  # (N, T', S, D), S = H' * W'
        x = x + self.spatial_positions(gh, gw, x)  # (N, T', S, D): the same 2-D table on every frame
        c = self.condition(t, y, frame_mask)  # (N, D) once per clip, or (N, T', D) once per frame
        rope, block_frame_pos, once_frame_pos = self.temporal_positions(gt, x)
        for i, (spatial, temporal) in enumerate(zip(self.spatial_blocks, self.temporal_blocks)):
            x = self._run_block(spatial, x, c)  # (N, T', S, D): attention within each frame
            if i == 0 and once_frame_pos is not None:
                x = x + once_frame_pos  # (N, T', S, D): Latte's temp_embed, once, in the residual stream
            x = self._run_block(temporal, x, c, rope, block_frame_pos)  # (N, T', S, D): attention across frames
        x = self.final_layer(x, c)  # (N, T', S, pt*ph*pw*C_out)
        return self.unpatchify(x, (gt, gh, gw))  # (N, C_out, T, H, W)

    def condition(self, t: torch.Tensor, y, frame_mask) -> torch.Tensor:
        """The adaLN condition: t (N,) and class (N,) embeddings summed -> (N, D), or (N, T', D) when
        ``frame_mask`` (N, T) marks given frames, which get the embedding of t = 0."""
        t_emb = self.t_embedder(t)  # (N, D)
        if frame_mask is not None and not bool(frame_mask.all()):
            noised = frame_mask[:, :: self.patch_size[0]]  # (N, T'): a temporal patch follows its first frame
            clean = self.t_embedder(torch.zeros_like(t))  # (N, D): the embedding of t = 0
            t_emb = torch.where(noised[:, :, None], t_emb[:, None], clean[:, None])  # (N, T', D)
        if self.y_embedder is None:
            return t_emb
        y_emb = self.y_embedder(y)  # (N, D)
        return t_emb + (y_emb if t_emb.ndim == 2 else y_emb[:, None])  # (N, D) or (N, T', D)

    #############################################################################
    #                                Conditions                                 #
    #############################################################################
    # A condition travels as a dict of (N, ...) tensors, here {"y": class ids}, passed as ``model(x, t,
    # **cond)``. The objectives and guidance never look inside: they ask the model for the null condition
    # of guidance and for the training-time dropout of classifier-free guidance.

    def null_cond(self, cond: dict) -> dict:
        """The unconditional counterpart of ``cond``: every class id replaced by the null class."""
        if self.y_embedder is None:
            raise ConfigError("this model is unconditional (num_classes=0): it has no null condition and "
                              "no guidance; sample with cfg_scale 1")
        if self.y_embedder.dropout_prob <= 0:
            raise ConfigError("this model was built with class_dropout_prob=0: it has no null class, so no "
                              "classifier-free guidance; sample with cfg_scale 1")
        return {**cond, "y": self.y_embedder.null(cond["y"])}

    def drop_cond(self, cond: dict, uniforms: torch.Tensor) -> dict:
        """Label dropout for training: rows whose ``uniforms`` (N,) fall below class_dropout_prob get the null class."""
        if self.y_embedder is None or self.y_embedder.dropout_prob <= 0:
            return cond
        return {**cond, "y": self.y_embedder.drop(cond["y"], uniforms)}


def _check_config(input_size, patch_size, hidden_size: int, num_heads: int, temporal_position: str,
                  num_classes: int):
    """Validate constructor arguments; return (input_size, patch_size) as int 3-tuples."""
    if temporal_position not in TEMPORAL_POSITIONS:
        raise ConfigError(f"STDiT temporal_position must be one of {TEMPORAL_POSITIONS}, got {temporal_position!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"STDiT num_classes must be an int >= 0 (0: unconditional), got {num_classes!r}")
    sizes = []
    for name, value in (("input_size", input_size), ("patch_size", patch_size)):
        if isinstance(value, int) or len(value) != 3 or any(int(v) != v or v < 1 for v in value):
            raise ConfigError(f"STDiT {name} must be three positive ints (T, H, W), got {value!r}")
        sizes.append(tuple(int(v) for v in value))
    if any(s % p for s, p in zip(*sizes)):
        raise ConfigError(f"STDiT input_size {sizes[0]} is not divisible by patch_size {sizes[1]}")
    rotary = temporal_position == "rotary"  # rotary pairs channels: heads of even size
    if hidden_size % num_heads or (rotary and (hidden_size // num_heads) % 2):
        raise ConfigError(
            f"STDiT hidden_size {hidden_size} must split into num_heads {num_heads} heads of even size (rotary)"
        )
    if hidden_size % 4:
        raise ConfigError(f"STDiT hidden_size must be divisible by 4 (2-D sin-cos positions), got {hidden_size}")
    return sizes[0], sizes[1]


#################################################################################
#                                 STDiT configs                                 #
#################################################################################

# DiT's model sizes (Peebles & Xie, Table 1), all with 2x2 spatial patches and no temporal patching.
VARIANTS = {
    "STDiT-S/2": dict(depth=12, hidden_size=384, num_heads=6, patch_size=(1, 2, 2)),
    "STDiT-B/2": dict(depth=12, hidden_size=768, num_heads=12, patch_size=(1, 2, 2)),
    "STDiT-L/2": dict(depth=24, hidden_size=1024, num_heads=16, patch_size=(1, 2, 2)),
    "STDiT-XL/2": dict(depth=28, hidden_size=1152, num_heads=16, patch_size=(1, 2, 2)),
    # Latte-XL/2 (Vchitect/Latte models/latte.py): its depth 28 alternates spatial and temporal blocks, so it is
    # 14 of our spatial-temporal pairs, in Latte's temporal layout.
    "Latte-XL/2": dict(depth=14, hidden_size=1152, num_heads=16, patch_size=(1, 2, 2),
                       temporal_position="absolute-once"),
}
_STDIT_KWARGS = frozenset(inspect.signature(STDiT).parameters)


def _build_variant(name: str, kwargs: dict) -> STDiT:
    unknown = sorted(set(kwargs) - _STDIT_KWARGS)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} for model '{name}'; it accepts: "
                          f"{', '.join(sorted(_STDIT_KWARGS))}")
    return STDiT(**{**VARIANTS[name], **kwargs})


def STDiT_S_2(**kwargs) -> STDiT:
    """STDiT-S/2: depth 12, hidden 384, 6 heads; keyword arguments override."""
    return _build_variant("STDiT-S/2", kwargs)


def STDiT_B_2(**kwargs) -> STDiT:
    """STDiT-B/2: depth 12, hidden 768, 12 heads; keyword arguments override."""
    return _build_variant("STDiT-B/2", kwargs)


def STDiT_L_2(**kwargs) -> STDiT:
    """STDiT-L/2: depth 24, hidden 1024, 16 heads; keyword arguments override."""
    return _build_variant("STDiT-L/2", kwargs)


def STDiT_XL_2(**kwargs) -> STDiT:
    """STDiT-XL/2: depth 28, hidden 1152, 16 heads; keyword arguments override."""
    return _build_variant("STDiT-XL/2", kwargs)


def Latte_XL_2(**kwargs) -> STDiT:
    """Latte-XL/2: 14 spatial + 14 temporal blocks, hidden 1152, 16 heads, Latte's layout; keywords override."""
    return _build_variant("Latte-XL/2", kwargs)


for _name, _builder in zip(VARIANTS, (STDiT_S_2, STDiT_B_2, STDiT_L_2, STDiT_XL_2, Latte_XL_2)):
    MODELS.register_module(name=_name, module=_builder)
