"""How one clip is made from noise and given frames: image-to-video, continuation and long videos.

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
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..errors import UserError
from ..schedulers.guidance import GivenFrames

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MAX_IMAGE_ASPECT = 8  # a first frame wider or taller than this would be mostly cropped away: refused


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


def encode_given(pipe, given: torch.Tensor, window_frames: int) -> torch.Tensor:
    """Latents (n, C, k', h, w) of the k given frames of a window of ``window_frames`` frames, from their
    per-frame latents (n, c, k, h, w).

    The frames are encoded as a whole window, padded by repeating the last given frame: the temporal VAE
    normalises over the whole clip (GroupNorm), so a frame encoded alone (half of its input the causal zero
    padding) gets other statistics than in the windows the model was trained on. The convolutions are
    causal, so the padding changes nothing else in the first k' latent frames.
    """
    k = given.shape[2]
    padded = torch.cat([given, given[:, :, -1:].expand(-1, -1, window_frames - k, -1, -1)], dim=2)
    latent_frames = pipe.vae.get_latent_size([k, None, None])[0]
    return pipe.time_encode(padded)[:, :, :latent_frames]  # (n, C, k', h, w)


def load_image(path, size) -> torch.Tensor:
    """A PNG or JPEG file -> (3, H, W) in [-1, 1], resized to cover ``size`` and centre-cropped."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from ..data.video_read import resize_crop

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--first-frame {path}: no such file")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise UserError(f"--first-frame {path}: expected a PNG or JPEG image ({', '.join(IMAGE_EXTENSIONS)})")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"--first-frame {path}: cannot read the image ({err})") from None
    height, width = pixels.shape[:2]
    if min(height, width) < 1:
        raise UserError(f"--first-frame {path}: the image is empty")
    aspect, wanted = width / height, size[1] / size[0]
    if max(aspect / wanted, wanted / aspect) > MAX_IMAGE_ASPECT:
        raise UserError(f"--first-frame {path}: a {width}x{height} image cannot be resized to {size[1]}x{size[0]} "
                        f"(its aspect ratio is over {MAX_IMAGE_ASPECT}x off, the crop would drop most of it); "
                        f"crop it to about {size[1]}:{size[0]} first")
    return resize_crop(pixels[None], size)[:, 0]  # (3, H, W)


def load_clip(path, size) -> torch.Tensor:
    """Every frame of a video file -> (3, T, H, W) in [-1, 1], resized to cover ``size`` and centre-cropped."""
    from ..data.video_read import probe_video, read_video

    num_frames = probe_video(path)[0]
    return read_video(path, num_frames, size=size, start=0)


def _as_image(first_frame, size) -> torch.Tensor:
    if isinstance(first_frame, (str, Path)):
        return load_image(first_frame, size)
    image = torch.as_tensor(first_frame, dtype=torch.float32)
    if image.shape != (3, *size):
        raise UserError(f"first_frame must be a (3, {size[0]}, {size[1]}) tensor in [-1, 1] or an image path, "
                        f"got shape {tuple(image.shape)}")
    return image


def _as_clip(extend, size) -> torch.Tensor:
    if isinstance(extend, (str, Path)):
        return load_clip(extend, size)
    clip = torch.as_tensor(extend, dtype=torch.float32)
    if clip.ndim != 4 or clip.shape[0] != 3 or tuple(clip.shape[2:]) != tuple(size):
        raise UserError(f"extend must be a (3, T, {size[0]}, {size[1]}) tensor in [-1, 1] or a video path, "
                        f"got shape {tuple(clip.shape)}")
    return clip


@dataclass
class FramePlan:
    """The windows of one request: see the module docstring."""

    num_frames: int  # output frames
    first_window: int  # frames of the first window (aligned)
    window_frames: int  # frames of every continuation window (aligned)
    overlap_frames: int  # frames each continuation window is given (aligned)
    first_frame: Optional[torch.Tensor]  # (3, H, W) given image, or None
    prefix: Optional[torch.Tensor]  # (3, M, H, W) clip being continued, or None

    @classmethod
    def build(cls, pipe, num_frames: int, first_frame=None, extend=None, window_frames: Optional[int] = None,
              overlap_frames: Optional[int] = None) -> "FramePlan":
        """Check a request against the pipeline's model and VAE and plan its windows."""
        if first_frame is not None and extend is not None:
            raise UserError("give either a first frame (image-to-video) or a clip to extend, not both")
        vae = pipe.vae
        window = {"frames": pipe.num_frames, "overlap": None, "aligned": False, **pipe.window}
        window_frames = window_frames or window["frames"]
        overlap_frames = overlap_frames or window["overlap"] or window_frames // 2
        for name, value in (("window_frames", window_frames), ("overlap_frames", overlap_frames)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        aligned = bool(window["aligned"])
        window_frames = fitted_frames(vae, window_frames, aligned)
        overlap_frames = fitted_frames(vae, overlap_frames, aligned)
        if overlap_frames >= window_frames:
            raise UserError(f"the overlap ({overlap_frames} frames, aligned) must be shorter than the window "
                            f"({window_frames} frames); lower --overlap or raise --window")
        image = None if first_frame is None else _as_image(first_frame, pipe.image_size)
        prefix = None if extend is None else _as_clip(extend, pipe.image_size)
        if prefix is not None:
            if prefix.shape[1] < overlap_frames:
                raise UserError(f"the clip to extend has {prefix.shape[1]} frames, fewer than the {overlap_frames} "
                                f"frames of overlap each new window is conditioned on; give a longer clip or a "
                                f"smaller --overlap")
            num_frames = num_frames if num_frames is not None else prefix.shape[1] + window_frames - overlap_frames
            if num_frames <= prefix.shape[1]:
                raise UserError(f"--frames {num_frames} is not longer than the clip to extend ({prefix.shape[1]} "
                                f"frames): ask for the total length you want")
        if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1:
            raise UserError(f"--frames must be a positive integer, got {num_frames!r}")
        first = min(fitted_frames(vae, num_frames, aligned), window_frames)
        pt = pipe.model.patch_size[0]
        for frames in {first, window_frames, overlap_frames}:
            latent = vae.get_latent_size([frames, None, None])[0]
            if latent % pt:
                raise UserError(f"{frames} frames give {latent} latent frames, which the model's temporal patch "
                                f"{pt} does not divide; choose another frame count")
        return cls(num_frames, first, window_frames, overlap_frames, image, prefix)

    @property
    def given_pixels(self) -> torch.Tensor:
        """(1, num_frames) bool: the output frames that were given, not generated."""
        given = torch.zeros(1, self.num_frames, dtype=torch.bool)
        if self.first_frame is not None:
            given[:, 0] = True
        if self.prefix is not None:
            given[:, : self.prefix.shape[1]] = True
        return given

    # ------------------------------------------------------------------ sampling

    def _window(self, pipe, frames: int, given_frames: Optional[torch.Tensor], cond: dict, noise_gens, steps,
                cfg_scale, sampler, progress, seed: int) -> torch.Tensor:
        """Sample one aligned window of ``frames`` frames whose first frames have the per-frame latents
        ``given_frames`` (n, c, k, h, w) (or None): its latents (n, C, T', h, w)."""
        c, t, h, w = pipe.vae.out_channels, *pipe.vae.get_latent_size([frames, *pipe.image_size])
        z = torch.stack([torch.randn((c, t, h, w), generator=g) for g in noise_gens]).to(pipe.device)
        given = None
        if given_frames is not None:
            known = encode_given(pipe, given_frames, frames)  # (n, C, k', h, w): the given frames' latents
            latents = torch.zeros_like(z)
            latents[:, :, : known.shape[2]] = known
            mask = torch.ones(z.shape[0], t, dtype=torch.bool, device=z.device)  # (n, T'): True = generated
            mask[:, : known.shape[2]] = False
            given = GivenFrames(latents, mask)
        return pipe.sample_latents(z, cond, steps, cfg_scale, sampler, progress, seed, given, frames)

    def generate(self, pipe, cond: dict, seeds: list, steps, cfg_scale, sampler, progress,
                 timings: dict) -> torch.Tensor:
        """The output clips (n, 3, num_frames, H, W) of one batch (one clip per seed, the condition ``cond``);
        sampling and decoding seconds are added to ``timings``."""
        noise_gens = [torch.Generator().manual_seed(s) for s in seeds]  # each sample's noise, window after window
        n = len(seeds)

        def window(frames: int, given_frames, index: int) -> tuple:
            t0 = time.perf_counter()
            latents = self._window(pipe, frames, given_frames, cond, noise_gens, steps, cfg_scale, sampler,
                                   progress, seeds[0] + index)
            t1 = time.perf_counter()
            video, per_frame = pipe.decode_window(latents, frames)  # (n, 3, frames, H, W), (n, c, frames, h, w)
            timings["sampling"] += t1 - t0
            timings["decoding"] += time.perf_counter() - t1
            return video, per_frame

        if self.prefix is None:
            given = None
            if self.first_frame is not None:
                given = pipe.image_encode(self.first_frame[None, :, None]).expand(n, -1, -1, -1, -1)  # (n, c, 1, h, w)
            video, per_frame = window(self.first_window, given, 0)  # (n, 3, first_window, H, W)
        else:
            video = self.prefix[None].expand(n, -1, -1, -1, -1)  # the real frames come first
            per_frame = pipe.image_encode(self.prefix[None, :, -self.overlap_frames:]).expand(n, -1, -1, -1, -1)
        pieces, made = [video], video.shape[2]
        tail = per_frame[:, :, -self.overlap_frames:]  # (n, c, overlap, h, w): the last frames made so far
        while made < self.num_frames:
            video, per_frame = window(self.window_frames, tail, len(pieces))
            pieces.append(video[:, :, self.overlap_frames:])  # (n, 3, w - o, H, W)
            tail = torch.cat([tail, per_frame[:, :, self.overlap_frames:]], dim=2)[:, :, -self.overlap_frames:]
            made += pieces[-1].shape[2]  # a new window adds fewer frames than the overlap when window < 2 x
            # overlap, so the tail spans pieces
        return torch.cat(pieces, dim=2)[:, :, : self.num_frames]  # (n, 3, num_frames, H, W)
