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

Open-Sora 1.2's STDiT3 is this model with its options (``OPENSORA_V1_2``, the ``STDiT3-XL/2`` variant):
text tokens (``caption_channels``) read by a cross-attention in every block, PixArt's modulation (one shared
``t_block`` and a ``scale_shift_table`` per block, ``modulation="t2i"``), qk-norm, interleaved rotary
positions alone in temporal attention (``"rotary-interleaved"``), an fps embedding added to t, and a 2-D table
scaled to the resolution (``spatial_position="scaled"``). Sizes not divisible by the patch are zero-padded at
the end and the output cropped, as Open-Sora does.

Shapes: N clips, C latent channels, (T, H, W) latent size, (pt, ph, pw) patch, (T', H', W') patch grid,
S = H' * W' tokens per frame, D hidden size.
"""
import inspect

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from ..errors import ConfigError, ShapeError
from ..registry import MODELS
from .layers import (
    LAYER_NORM_EPS,
    Attention,
    CaptionEmbedder,
    CrossAttention,
    LabelEmbedder,
    Mlp,
    PatchEmbed3D,
    TimestepEmbedder,
    get_1d_sincos_pos_embed,
    get_2d_sincos_pos_embed,
    get_2d_sincos_pos_embed_scaled,
    modulate,
    rotary_cos_sin,
)

EMBEDDING_INIT_STD = 0.02  # DiT: normal(0, 0.02) for the class table and the timestep MLP
# How temporal blocks know frame order: "rotary" (STDiT's own: rotary q/k plus a per-block frame-index term
# in the attention input) or "absolute-once" (Latte's: one sin-cos table added to the residual stream
# before the first temporal block).
# "rotary-interleaved" is Open-Sora 1.2's: rotary q/k alone, channels paired (2i, 2i+1).
TEMPORAL_POSITIONS = ("rotary", "absolute-once", "rotary-interleaved")
# Spatial positions: DiT's fixed 2-D table ("dit") or Open-Sora 1.2's, scaled to the pixel resolution ("scaled").
SPATIAL_POSITIONS = ("dit", "scaled")
# How t (and the class) modulate the blocks: DiT's adaLN-Zero MLP per block ("adaln"), or PixArt's shared
# t_block plus a learned scale_shift_table per block ("t2i", Open-Sora 1.2).
MODULATIONS = ("adaln", "t2i")

#################################################################################
#                                 Core STDiT model                              #
#################################################################################


class STDiTBlock(nn.Module):
    """A DiT block with adaLN conditioning; its attention runs over space or over time.

    ``modulation="adaln"``: its own adaLN-Zero MLP maps the condition c to the six shifts, scales and gates;
    ``"t2i"``: c is already the shared ``t_block`` output (6D) and the block adds its ``scale_shift_table``.
    ``cross_attention``: the tokens then read the text (after self-attention, before the MLP; ungated).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, axis: str, modulation: str = "adaln",
                 qk_norm: bool = False, cross_attention: bool = False, interleaved_rope: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYER_NORM_EPS)
        self.attn = Attention(hidden_size, num_heads, axis, qk_norm=qk_norm, interleaved_rope=interleaved_rope)
        self.cross_attn = CrossAttention(hidden_size, num_heads) if cross_attention else None
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        if modulation == "t2i":
            self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size**0.5)
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def modulation(self, c: torch.Tensor) -> torch.Tensor:
        """c (N, [T',] D) or, for "t2i", the shared t_block output (N, [T',] 6D) -> (N, 1 or T', 1, 6D)."""
        if hasattr(self, "scale_shift_table"):
            return per_token(c + self.scale_shift_table.flatten())
        return per_token(self.adaLN_modulation(c))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope=None, frame_pos=None, text=None) -> torch.Tensor:
        """x (N, T', S, D), c (N, .) or per frame (N, T', .); temporal blocks get rope (cos, sin) and
        frame_pos (T', 1, D); text = (tokens (N, L, D), mask (N, L) bool or None) for the cross-attention."""
        mod = self.modulation(c)  # (N, 1 or T', 1, 6D): per clip or frame, broadcast to tokens
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)  # each (N, ., 1, D)
        h = modulate(self.norm1(x), shift_msa, scale_msa)  # (N, T', S, D)
        if frame_pos is not None:
            h = h + frame_pos  # (N, T', S, D): the frame index, inside this branch only
        # Gated residuals as one fused multiply-add each: x + gate * f(x)
        x = torch.addcmul(x, gate_msa, self.attn(h, rope))  # (N, T', S, D)
        if self.cross_attn is not None:
            x = x + self.cross_attn(x, *text)  # (N, T', S, D)
        x = torch.addcmul(x, gate_mlp, self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp)))  # (N, T', S, D)
        return x


def per_token(mod: torch.Tensor) -> torch.Tensor:
    """adaLN parameters (N, k) per clip or (N, T', k) per frame -> (N, 1 or T', 1, k), broadcast over tokens."""
    return mod[:, None, None, :] if mod.ndim == 2 else mod[:, :, None, :]


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm, then a linear map from each token to its patch of output pixels.

    ``modulation="t2i"`` (PixArt's T2IFinalLayer): shift and scale are a learned (2, D) table plus the raw
    condition, with no MLP. There, given frames follow Open-Sora 1.2 exactly, quirk included: their tokens,
    already modulated with the noised clip's t, are normalized and modulated again with the t = 0 condition.
    """

    def __init__(self, hidden_size: int, patch_volume: int, out_channels: int, modulation: str = "adaln"):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=LAYER_NORM_EPS)
        self.linear = nn.Linear(hidden_size, patch_volume * out_channels)
        if modulation == "t2i":
            self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor, c_noised=None, noised=None) -> torch.Tensor:
        """x (N, T', S, D); c (N, D) or per frame (N, T', D); for "t2i" with given frames also the
        condition of the noised frames c_noised (N, D) and noised (N, T') bool."""
        if not hasattr(self, "scale_shift_table"):
            shift, scale = per_token(self.adaLN_modulation(c)).chunk(2, dim=-1)  # each (N, 1 or T', 1, D)
            return self.linear(modulate(self.norm_final(x), shift, scale))  # (N, T', S, pt*ph*pw*C_out)
        table = self.scale_shift_table.flatten()  # (2D,)
        if noised is None:
            shift, scale = per_token(torch.cat([c, c], dim=-1) + table).chunk(2, dim=-1)  # each (N, 1 or T', 1, D)
            return self.linear(modulate(self.norm_final(x), shift, scale))  # (N, T', S, pt*ph*pw*C_out)
        shift, scale = per_token(torch.cat([c_noised, c_noised], dim=-1) + table).chunk(2, dim=-1)  # (N, 1, 1, D)
        h = modulate(self.norm_final(x), shift, scale)  # (N, T', S, D)
        shift0, scale0 = per_token(torch.cat([c, c], dim=-1) + table).chunk(2, dim=-1)  # (N, T', 1, D)
        h = torch.where(noised[:, :, None, None], h, modulate(self.norm_final(h), shift0, scale0))
        return self.linear(h)  # (N, T', S, pt*ph*pw*C_out)


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
        caption_channels: int = 0,
        model_max_length: int = 300,
        modulation: str = "adaln",
        qk_norm: bool = False,
        spatial_position: str = "dit",
        input_sq_size: int = 512,
        fps_conditioning: bool = False,
    ):
        super().__init__()
        input_size, patch_size = _check_config(input_size, patch_size, hidden_size, num_heads, temporal_position,
                                               num_classes, caption_channels, modulation, spatial_position)
        self.config = dict(
            type="STDiT", input_size=list(input_size), patch_size=list(patch_size), in_channels=in_channels,
            hidden_size=hidden_size, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
            class_dropout_prob=class_dropout_prob, num_classes=num_classes, learn_sigma=learn_sigma,
            grad_checkpointing=grad_checkpointing, temporal_position=temporal_position,
            caption_channels=caption_channels, model_max_length=model_max_length, modulation=modulation,
            qk_norm=qk_norm, spatial_position=spatial_position, input_sq_size=input_sq_size,
            fps_conditioning=fps_conditioning,
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
        self.caption_channels = caption_channels
        self.modulation = modulation
        self.spatial_position = spatial_position
        self.input_sq_size = input_sq_size

        self.x_embedder = PatchEmbed3D(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.fps_embedder = TimestepEmbedder(hidden_size) if fps_conditioning else None
        # t2i: one SiLU + Linear shared by all blocks maps t to their six modulations (PixArt)
        self.t_block = None
        if modulation == "t2i":
            self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))
        if caption_channels:  # text tokens, read by cross-attention
            self.y_embedder = CaptionEmbedder(caption_channels, hidden_size, model_max_length, class_dropout_prob)
        else:  # class ids; num_classes=0: an unconditional model (no label embedder, no guidance)
            self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob) if num_classes else None
        block = dict(modulation=modulation, qk_norm=qk_norm, cross_attention=bool(caption_channels))
        self.spatial_blocks = nn.ModuleList(
            [STDiTBlock(hidden_size, num_heads, mlp_ratio, axis="space", **block) for _ in range(depth)]
        )
        self.temporal_blocks = nn.ModuleList(
            [STDiTBlock(hidden_size, num_heads, mlp_ratio, axis="time", **block,
                        interleaved_rope=temporal_position == "rotary-interleaved") for _ in range(depth)]
        )
        self.final_layer = FinalLayer(hidden_size, patch_size[0] * patch_size[1] * patch_size[2], self.out_channels,
                                      modulation)
        self._position_cache = {}  # computed position tables, keyed by shape/device/dtype: never in state_dict
        self.initialize_weights()

    def initialize_weights(self):
        """Every init decision, as DiT: xavier Linear, adaLN-Zero, and a zero final layer (output starts at 0).

        "t2i" models start as Open-Sora 1.2's STDiT3: xavier Linear, a zero fps MLP output, temporal blocks
        whose attention, cross-attention and MLP outputs are 0, and no zero final layer."""
        if self.modulation == "t2i":
            return self._initialize_t2i()

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
        for block in [*self.spatial_blocks, *self.temporal_blocks]:
            if block.cross_attn is not None:  # text read through an ungated residual: it starts silent
                nn.init.constant_(block.cross_attn.proj.weight, 0)
        if self.fps_embedder is not None:
            nn.init.constant_(self.fps_embedder.mlp[2].weight, 0)
            nn.init.constant_(self.fps_embedder.mlp[2].bias, 0)

    def _initialize_t2i(self):
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
        if self.fps_embedder is not None:
            nn.init.normal_(self.fps_embedder.mlp[0].weight, std=EMBEDDING_INIT_STD)
            nn.init.constant_(self.fps_embedder.mlp[2].weight, 0)
            nn.init.constant_(self.fps_embedder.mlp[2].bias, 0)
        for block in self.temporal_blocks:
            nn.init.constant_(block.attn.proj.weight, 0)
            if block.cross_attn is not None:
                nn.init.constant_(block.cross_attn.proj.weight, 0)
            nn.init.constant_(block.mlp.fc2.weight, 0)

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

    def spatial_positions(self, grid_h: int, grid_w: int, ref: torch.Tensor, height=None, width=None) -> torch.Tensor:
        """The 2-D sin-cos table for the (grid_h, grid_w) patch grid -> (S, D), on ref's device and dtype.

        "dit": DiT's table. "scaled": Open-Sora 1.2's, spread over round(sqrt(S)) units and scaled by the
        pixel size of the video, sqrt(height * width) / input_sq_size (only the first row of the (N,)
        ``height`` and ``width`` is read, as upstream does).
        """
        if self.spatial_position == "dit":
            return self._cached(
                ("space", grid_h, grid_w, ref.device, ref.dtype),
                lambda: get_2d_sincos_pos_embed(self.hidden_size, grid_h, grid_w).to(ref.device, ref.dtype),
            )
        if height is None or width is None:
            raise ShapeError("this model's positions follow the video's pixel size: pass height and width (N,) "
                             "(the pipeline does)")
        scale = (float(height[0]) * float(width[0])) ** 0.5 / self.input_sq_size
        base_size = round((grid_h * grid_w) ** 0.5)
        return self._cached(
            ("scaled", grid_h, grid_w, scale, ref.device, ref.dtype),
            lambda: get_2d_sincos_pos_embed_scaled(self.hidden_size, grid_h, grid_w, scale, base_size).to(
                ref.device, ref.dtype),
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
        if self.temporal_position == "rotary-interleaved":  # Open-Sora 1.2: rotary alone
            return self.temporal_rope(length, ref.device), None, None
        frame_pos = self.frame_positions(length, ref)  # (T', 1, D)
        if self.temporal_position == "absolute-once":
            return None, None, frame_pos
        return self.temporal_rope(length, ref.device), frame_pos, None

    def temporal_rope(self, length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary (cos, sin) tables for ``length`` frames, each (length, D / num_heads) float32."""
        interleaved = self.temporal_position == "rotary-interleaved"
        return self._cached(
            ("time", length, device, interleaved),
            lambda: rotary_cos_sin(length, self.hidden_size // self.num_heads, device, interleaved),
        )

    #############################################################################
    #                                  Forward                                  #
    #############################################################################

    def _check_input(self, x: torch.Tensor, t: torch.Tensor, y, frame_mask, y_mask) -> tuple[int, int, int]:
        """Raise ShapeError on a malformed input; return the patch grid (T', H', W') (sizes rounded up)."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"STDiT expects x of shape (N, {self.in_channels}, T, H, W), got {tuple(x.shape)}"
            )
        n, size = x.shape[0], tuple(x.shape[2:])
        if t.shape != (n,):
            raise ShapeError(f"t must have shape ({n},), got {tuple(t.shape)}")
        if self.caption_channels:
            self._check_text(n, y, y_mask)
        elif self.y_embedder is not None and (y is None or y.shape != (n,)):
            raise ShapeError(f"this class-conditional model needs y of shape ({n},) (class ids), got "
                             f"{None if y is None else tuple(y.shape)}")
        if frame_mask is not None and frame_mask.shape != (n, size[0]):
            raise ShapeError(f"frame_mask must be (N, T) = {(n, size[0])} (True = noised frame), "
                             f"got {tuple(frame_mask.shape)}")
        return tuple(-(-s // p) for s, p in zip(size, self.patch_size))

    def _check_text(self, n: int, y, y_mask) -> None:
        c = self.caption_channels
        if y is None or y.ndim not in (3, 4) or y.shape[0] != n or y.shape[-1] != c or \
                (y.ndim == 4 and y.shape[1] != 1):
            raise ShapeError(f"this text-conditional model needs y of shape ({n}, [1,] L, {c}) (text-encoder "
                             f"tokens), got {None if y is None else tuple(y.shape)}")
        length = self.y_embedder.y_embedding.shape[0]
        if y.shape[-2] != length:
            raise ShapeError(f"text tokens must be padded to the model's model_max_length {length} (its null caption "
                             f"has that many), got {y.shape[-2]}: set text_encoder.model_max_length to {length}")
        if y_mask is not None:
            if y_mask.shape != (n, y.shape[-2]):
                raise ShapeError(f"y_mask must be (N, L) = {(n, y.shape[-2])}, got {tuple(y_mask.shape)}")
            if not bool(y_mask.any(dim=1).all()):
                raise ShapeError("every prompt needs at least one text token in y_mask (the tokenizer's end token)")

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int], size=None) -> torch.Tensor:
        """(N, T', S, pt*ph*pw*C_out) tokens -> (N, C_out, T, H, W), cropped to ``size`` (T, H, W) if given;
        pt = 1 gives DiT's ``nhwpqc->nchpwq``."""
        (gt, gh, gw), (pt, ph, pw) = grid, self.patch_size
        x = x.reshape(x.shape[0], gt, gh, gw, pt, ph, pw, self.out_channels)  # (N, T', H', W', pt, ph, pw, C)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (N, C, T', pt, H', ph, W', pw)
        x = x.reshape(x.shape[0], self.out_channels, gt * pt, gh * ph, gw * pw)  # (N, C, T'pt, H'ph, W'pw)
        if size is None:
            return x
        return x[:, :, : size[0], : size[1], : size[2]]  # (N, C, T, H, W): the patch padding cropped

    def _run_block(self, block: STDiTBlock, *args) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y=None, frame_mask=None, y_mask=None, fps=None,
                height=None, width=None) -> torch.Tensor:
        """x (N, C, T, H, W) latents, t (N,) timesteps, y (N,) class ids (``num_classes`` = null class) or, for
        a text model, (N, [1,] L, caption_channels) text-encoder tokens with their mask y_mask (N, L) bool
        (None: every token counts). fps (N,) for an fps-conditioned model; height, width (N,) the pixel size,
        for "scaled" positions.

        ``frame_mask`` (N, T) bool marks the noised latent frames; where it is False the frame is given
        (clean) and is modulated with the embedding of t = 0 instead of t, in every block and the final
        layer (Open-Sora 1.2's scheme). None, or all True, is exactly the unconditioned model.
        Sizes not divisible by the patch are zero-padded at the end; the output has x's size.
        """
        size = tuple(x.shape[2:])
        gt, gh, gw = self._check_input(x, t, y, frame_mask, y_mask)  # patch grid (T', H', W')
        pads = [g * p - s for g, p, s in zip((gt, gh, gw), self.patch_size, size)]  # (T, H, W) padding
        if any(pads):
            x = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]))  # (N, C, T'pt, H'ph, W'pw)
            if frame_mask is not None and pads[0]:
                frame_mask = F.pad(frame_mask, (0, pads[0]), value=True)  # (N, T'pt): padding counts as noised
        x = self.x_embedder(x)  # (N, T', S, D), S = H' * W'
        x = x + self.spatial_positions(gh, gw, x, height, width)  # (N, T', S, D): the same table on every frame
        c, final = self.condition(t, y, frame_mask, fps)  # (N, .) once per clip, or (N, T', .) once per frame
        text = self.text_tokens(y, y_mask) if self.caption_channels else None
        rope, block_frame_pos, once_frame_pos = self.temporal_positions(gt, x)
        for i, (spatial, temporal) in enumerate(zip(self.spatial_blocks, self.temporal_blocks)):
            x = self._run_block(spatial, x, c, None, None, text)  # (N, T', S, D): attention within each frame
            if i == 0 and once_frame_pos is not None:
                x = x + once_frame_pos  # (N, T', S, D): Latte's temp_embed, once, in the residual stream
            x = self._run_block(temporal, x, c, rope, block_frame_pos, text)  # (N, T', S, D): across frames
        x = self.final_layer(x, *final)  # (N, T', S, pt*ph*pw*C_out)
        return self.unpatchify(x, (gt, gh, gw), size)  # (N, C_out, T, H, W)

    def condition(self, t: torch.Tensor, y, frame_mask, fps=None) -> tuple:
        """The conditions of the blocks and of the final layer: ``(c, final_layer_args)``.

        "adaln": t (N,) and class (N,) embeddings summed -> (N, D), or (N, T', D) when ``frame_mask`` (N, T)
        marks given frames, which get the embedding of t = 0; the final layer reads the same. "t2i": the
        blocks get the shared ``t_block`` of that (6D), the final layer the raw embedding, and with given
        frames also the noised frames' condition and the (N, T') noised mask (its Open-Sora quirk).
        """
        fps_emb = None if self.fps_embedder is None else self._fps_embedding(fps, t.shape[0])  # (N, D), once
        t_emb = self.t_embedder(t)  # (N, D)
        if fps_emb is not None:
            t_emb = t_emb + fps_emb
        t_noised, noised = t_emb, None
        if frame_mask is not None and not bool(frame_mask.all()):
            noised = frame_mask[:, :: self.patch_size[0]]  # (N, T'): a temporal patch follows its first frame
            clean = self.t_embedder(torch.zeros_like(t))  # (N, D): the embedding of t = 0
            if fps_emb is not None:
                clean = clean + fps_emb
            t_emb = torch.where(noised[:, :, None], t_emb[:, None], clean[:, None])  # (N, T', D)
        if self.modulation == "t2i":
            return self.t_block(t_emb), (t_emb,) if noised is None else (t_emb, t_noised, noised)
        if self.y_embedder is None or self.caption_channels:
            return t_emb, (t_emb,)
        y_emb = self.y_embedder(y)  # (N, D)
        c = t_emb + (y_emb if t_emb.ndim == 2 else y_emb[:, None])  # (N, D) or (N, T', D)
        return c, (c,)

    def _fps_embedding(self, fps, n: int) -> torch.Tensor:
        """fps (N,), or fewer values tiled over the batch as upstream does in a guidance batch -> (N, D)."""
        if fps is None:
            raise ShapeError("this model is fps-conditioned: pass fps (N,), the frame rate of the video")
        fps = torch.as_tensor(fps, dtype=torch.float32, device=self.t_embedder.mlp[0].weight.device).reshape(-1)
        if n % fps.shape[0]:
            raise ShapeError(f"fps has {fps.shape[0]} values for a batch of {n}")
        return self.fps_embedder(fps.repeat(n // fps.shape[0]))  # (N, D)

    def text_tokens(self, y: torch.Tensor, y_mask) -> tuple:
        """Text-encoder tokens (N, [1,] L, C) -> ((N, L, D) projected tokens, (N, L) bool mask or None)."""
        tokens = self.y_embedder(y.flatten(1, 2) if y.ndim == 4 else y)  # (N, L, D)
        return tokens, None if y_mask is None else y_mask.bool()

    #############################################################################
    #                                Conditions                                 #
    #############################################################################
    # A condition travels as a dict of (N, ...) tensors passed as ``model(x, t, **cond)``: {"y": class ids},
    # or for a text model {"y": text tokens, "y_mask": their mask, "fps", "height", "width"}. The objectives
    # and guidance never look inside: they ask the model for the null condition of guidance and for the
    # training-time dropout of classifier-free guidance.

    def null_cond(self, cond: dict) -> dict:
        """The unconditional counterpart of ``cond``: every class id replaced by the null class, or every
        caption by the learned null caption (its token mask kept: Open-Sora 1.2 truncates the null caption
        to each prompt's length)."""
        if self.y_embedder is None:
            raise ConfigError("this model is unconditional (num_classes=0): it has no null condition and "
                              "no guidance; sample with cfg_scale 1")
        if self.y_embedder.dropout_prob <= 0:
            raise ConfigError("this model was built with class_dropout_prob=0: it has no null class, so no "
                              "classifier-free guidance; sample with cfg_scale 1")
        return {**cond, "y": self.y_embedder.null(cond["y"])}  # class ids or text tokens

    def drop_cond(self, cond: dict, uniforms: torch.Tensor) -> dict:
        """Label dropout for training: rows whose ``uniforms`` (N,) fall below class_dropout_prob get the null class."""
        if self.y_embedder is None or self.y_embedder.dropout_prob <= 0:
            return cond
        return {**cond, "y": self.y_embedder.drop(cond["y"], uniforms)}


def _check_config(input_size, patch_size, hidden_size: int, num_heads: int, temporal_position: str,
                  num_classes: int, caption_channels: int = 0, modulation: str = "adaln",
                  spatial_position: str = "dit"):
    """Validate constructor arguments; return (input_size, patch_size) as int 3-tuples."""
    for name, value, choices in (("temporal_position", temporal_position, TEMPORAL_POSITIONS),
                                 ("spatial_position", spatial_position, SPATIAL_POSITIONS),
                                 ("modulation", modulation, MODULATIONS)):
        if value not in choices:
            raise ConfigError(f"STDiT {name} must be one of {choices}, got {value!r}")
    for name, value in (("num_classes", num_classes), ("caption_channels", caption_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"STDiT {name} must be an int >= 0 (0: none), got {value!r}")
    if num_classes and caption_channels:
        raise ConfigError("STDiT takes class ids (num_classes) or text (caption_channels), not both: set one to 0")
    if modulation == "t2i" and num_classes:
        raise ConfigError("STDiT modulation='t2i' (PixArt, Open-Sora 1.2) is for text or unconditional models; "
                          "class models use 'adaln'")
    sizes = []
    for name, value in (("input_size", input_size), ("patch_size", patch_size)):
        if isinstance(value, int) or len(value) != 3 or any(int(v) != v or v < 1 for v in value):
            raise ConfigError(f"STDiT {name} must be three positive ints (T, H, W), got {value!r}")
        sizes.append(tuple(int(v) for v in value))
    rotary = temporal_position != "absolute-once"  # rotary pairs channels: heads of even size
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

# The options that make an STDiT Open-Sora 1.2's STDiT3 (caption_channels: T5-XXL's width).
OPENSORA_V1_2 = dict(num_classes=0, caption_channels=4096, model_max_length=300, modulation="t2i", qk_norm=True,
                     temporal_position="rotary-interleaved", spatial_position="scaled", input_sq_size=512,
                     fps_conditioning=True, learn_sigma=True, class_dropout_prob=0.1)

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
    # Open-Sora 1.2 (hpcaitech/Open-Sora v1.2.0, opensora/models/stdit/stdit3.py): text from T5-XXL.
    "STDiT3-XL/2": dict(depth=28, hidden_size=1152, num_heads=16, patch_size=(1, 2, 2), **OPENSORA_V1_2),
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


def STDiT3_XL_2(**kwargs) -> STDiT:
    """Open-Sora 1.2's STDiT3-XL/2: depth 28, hidden 1152, 16 heads, text from T5-XXL; keywords override."""
    return _build_variant("STDiT3-XL/2", kwargs)


for _name, _builder in zip(VARIANTS, (STDiT_S_2, STDiT_B_2, STDiT_L_2, STDiT_XL_2, Latte_XL_2, STDiT3_XL_2)):
    MODELS.register_module(name=_name, module=_builder)
