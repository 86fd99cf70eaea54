"""Which frames of a request are sampled in which window, and which of them are given: a plain plan.

Frame counts are planned in windows of whole latent frames. A model trained on **aligned** clips
(``inference.window.aligned = True``) plans aligned windows: a causal temporal VAE front-pads a clip to a
multiple of its time factor f, and a clip of 1 + k f frames (per micro chunk) gets f - 1 padding frames, so
latent frame 0 encodes pixel frame 0 alone. Then a given first frame is exactly one latent frame, and a
continuation window conditioned on its first latent frames is exactly a training clip with a ``first_k``
frame mask (``training/frame_masks.py``). Other models get windows of k f frames (latent frame 0 covers f
frames, as in their training clips).

A request for ``num_frames`` frames is made as follows (``docs/conditioning.md``):

1. the first window: ``num_frames`` fitted to whole (aligned) latent frames, at most ``window_frames``;
   its latent frame 0 is the encoded first frame when one is given;
2. while frames are missing: the last ``overlap_frames`` frames made so far (or of the clip to extend)
   are encoded and given as the first latent frames of the next window of ``window_frames`` frames;
   its decoded frames after the overlap are appended;
3. the result is cut to ``num_frames`` (a continuation starts with the real frames of the clip).

The frames a window is given are carried as *per-frame latents* (what the 2-D VAE makes of each frame,
``VideoVAE.image_encode``): a made window is decoded by the temporal half of the VAE, its last frames are
kept there and only go through the temporal encoder again. Decoding them to pixels and encoding them again
would go through the 2-D VAE once per window, and those round trips drift: on the shapes VAE a black frame
came back dim and a second trip turned it into a bright ghost, which a model then continued as a new shape
(docs/conditioning.md).

Every window is decoded on its own, so memory does not grow with the length of the video.

:class:`FramePlan` is only the arithmetic: a list of :class:`Window` computed from the VAE's own
``get_latent_size`` and ``temporal_factor``. ``VideoPipeline`` runs the windows.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ..errors import UserError


def aligned_frames(vae, num_frames: int) -> int:
    """The smallest frame count >= ``num_frames`` whose every temporal-VAE chunk is 1 + k f frames long."""
    f = vae.temporal_factor
    if f == 1:
        return num_frames
    micro = getattr(vae, "micro_frame_size", None)
    frames = num_frames
    while True:
        chunks = [micro] * (frames // micro) + ([frames % micro] if frames % micro else []) if micro else [frames]
        if all(c % f == 1 for c in chunks):
            return frames
        frames += 1


def fitted_frames(vae, num_frames: int, aligned: bool) -> int:
    """``aligned_frames`` for a model trained on aligned clips; else the next whole number of latent frames."""
    if aligned:
        return aligned_frames(vae, num_frames)
    f = vae.temporal_factor
    return -(-num_frames // f) * f


@dataclass(frozen=True)
class Window:
    """One sampled window of ``frames`` pixel frames (aligned): its first ``given`` frames are the last frames
    made so far (or the given image), and its frames from ``keep_from`` on are appended to the output."""

    frames: int
    given: int
    keep_from: int


@dataclass(frozen=True)
class FramePlan:
    """The windows of one request, in the order they are sampled (see the module docstring)."""

    num_frames: int  # output frames
    windows: Tuple[Window, ...]
    window_frames: int  # frames of a full window (aligned)
    overlap_frames: int  # frames each continuation window is given (aligned)
    prefix_frames: int = 0  # frames of the clip being continued, which open the output (0: none)
    first_frame: bool = False  # frame 0 is a given image

    @classmethod
    def build(cls, vae, temporal_patch: int, num_frames: Optional[int], window: dict, first_frame: bool = False,
              prefix_frames: int = 0, window_frames: Optional[int] = None,
              overlap_frames: Optional[int] = None) -> "FramePlan":
        """Plan a request for ``num_frames`` frames (None with a prefix: one window more than the prefix).

        ``window`` is the config's ``inference.window`` (``frames``, ``overlap``, ``aligned``), with
        ``window_frames`` / ``overlap_frames`` overriding it; ``prefix_frames`` is the length of a clip to
        continue. A request the model or the VAE cannot make is a one-line UserError.
        """
        if first_frame and prefix_frames:
            raise UserError("give either a first frame (image-to-video) or a clip to extend, not both")
        window_frames = window_frames or window["frames"]
        overlap_frames = overlap_frames or window.get("overlap") or window_frames // 2
        for name, value in (("window_frames", window_frames), ("overlap_frames", overlap_frames)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        aligned = bool(window.get("aligned", False))
        window_frames = fitted_frames(vae, window_frames, aligned)
        overlap_frames = fitted_frames(vae, overlap_frames, aligned)
        if overlap_frames >= window_frames:
            raise UserError(f"the overlap ({overlap_frames} frames, aligned) must be shorter than the window "
                            f"({window_frames} frames); lower --overlap or raise --window")
        if prefix_frames:
            if prefix_frames < overlap_frames:
                raise UserError(f"the clip to extend has {prefix_frames} frames, fewer than the {overlap_frames} "
                                f"frames of overlap each new window is conditioned on; give a longer clip or a "
                                f"smaller --overlap")
            num_frames = num_frames if num_frames is not None else prefix_frames + window_frames - overlap_frames
            if num_frames <= prefix_frames:
                raise UserError(f"--frames {num_frames} is not longer than the clip to extend ({prefix_frames} "
                                f"frames): ask for the total length you want")
        if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1:
            raise UserError(f"--frames must be a positive integer, got {num_frames!r}")
        windows, made = [], prefix_frames
        if not prefix_frames:
            first = min(fitted_frames(vae, num_frames, aligned), window_frames)
            windows.append(Window(first, given=int(first_frame), keep_from=0))
            made = first
        while made < num_frames:
            windows.append(Window(window_frames, given=overlap_frames, keep_from=overlap_frames))
            made += window_frames - overlap_frames
        for frames in {w.frames for w in windows} | {window_frames, overlap_frames}:
            latent = vae.get_latent_size([frames, None, None])[0]
            if latent % temporal_patch:
                raise UserError(f"{frames} frames give {latent} latent frames, which the model's temporal patch "
                                f"{temporal_patch} does not divide; choose another frame count")
        return cls(num_frames, tuple(windows), window_frames, overlap_frames, prefix_frames, first_frame)

    @property
    def given_pixels(self) -> torch.Tensor:
        """(1, num_frames) bool: the output frames that were given, not generated."""
        given = torch.zeros(1, self.num_frames, dtype=torch.bool)
        given[:, : self.prefix_frames] = True
        if self.first_frame:
            given[:, 0] = True
        return given
