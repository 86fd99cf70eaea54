"""The Python API: a config (or a run folder) in, videos out, in the style of a diffusers pipeline.

    from opensora_lite import VideoPipeline
    pipe = VideoPipeline.from_config("configs/shapes/stdit_shapes.py")   # or a training run folder
    out = pipe(classes=["square-left", 3], num_frames=16, seed=0, steps=25, cfg_scale=3.0)
    out.save("samples/")                                                 # MP4s + a labelled PNG grid

Frames can be given as conditions (``first_frame=`` image-to-video, ``extend=`` continuation), and a
clip longer than the model's window is made window by window (``docs/conditioning.md``): the window plan
is ``frame_plan.FramePlan``, a plain list of windows, and this class runs it. The CLI (``tools/generate.py``,
``opensora-lite generate``), the evaluation tool and the trainer's sample videos all go through this class.
"""
import logging
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from ..config import (
    DEFAULT_FPS,
    DEFAULT_NUM_FRAMES,
    check_required_files,
    check_settings,
    config_image_size,
    config_num_frames,
    load_config,
    resolve_config,
)
from ..errors import CheckpointError, ConfigError, UserError
from ..models.convert import load_checkpoint
from ..registry import MODELS, SCHEDULERS, build_module
from ..schedulers.guidance import GivenFrames
from ..schedulers.settings import SamplingSettings, VideoSize
from .conditions import as_clip, as_image
from .frame_plan import FramePlan
from .output import VideoOutput

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 4  # clips per sampler call


class VideoPipeline:
    """A diffusion model, its VAE and its scheduler, ready to sample.

    Build it with :meth:`from_config`. ``pipe(...)`` returns a :class:`VideoOutput`.
    """

    def __init__(self, model, vae, scheduler, image_size, num_frames: int = DEFAULT_NUM_FRAMES,
                 fps: float = DEFAULT_FPS, class_names=None, window: Optional[dict] = None, name: str = "pipeline"):
        self.model, self.vae, self.scheduler = model.eval(), vae.eval(), scheduler
        self.image_size = tuple(image_size)
        self.num_frames = num_frames
        self.fps = fps
        self.class_names = class_names
        self.window = dict(window or {})
        self.name = name
        self.dtype = torch.float32
        self._check_image_size()

    # ------------------------------------------------------------------ building

    @classmethod
    def from_config(cls, config: Union[str, Path], ckpt=None, vae_ckpt=None, random_init: bool = False,
                    overrides: Optional[dict] = None, device="cpu") -> "VideoPipeline":
        """Build from a Python config (found locally or among the shipped ones) or a training run folder
        (its ``config.py`` and ``model_ema.safetensors``; an unfinished run needs ``ckpt``), and load the
        weights the config names.

        ``random_init`` skips loading (smoke runs and benchmarks), loudly.
        """
        config, run_weights = resolve_config(config, weights_given=bool(ckpt or random_init))
        cfg = load_config(str(config), overrides)
        return cls.from_loaded_config(cfg, str(config), ckpt or run_weights, vae_ckpt, random_init, device)

    @classmethod
    def from_loaded_config(cls, cfg, where: str, ckpt=None, vae_ckpt=None, random_init: bool = False,
                           device="cpu") -> "VideoPipeline":
        """As :meth:`from_config` for a config already loaded (``where`` names it in errors)."""
        from ..data.class_names import config_class_names

        missing = [key for key in ("model", "vae", "scheduler") if cfg.get(key) is None]
        if missing:
            raise ConfigError(f"{where}: the config has no {', '.join(repr(k) for k in missing)} entry")
        check_required_files(cfg, where, skip={"ckpt.model"} if ckpt or random_init else ())
        paths = dict(cfg.get("ckpt", {}))
        model = build_module(cfg.model, MODELS, where=where)
        vae = build_module(cfg.vae, MODELS, where=where)
        scheduler = build_module(cfg.scheduler, SCHEDULERS, where=where)
        if random_init:
            logger.warning("!!! --random-init: %s runs with RANDOM weights; its videos are noise, for smoke "
                           "runs and benchmarks only !!!", where)
        else:
            load_checkpoint(model, _weights(ckpt or paths.get("model"), "model", "model", where))
            vae_path = vae_ckpt or paths.get("vae")
            if vae_path or not cfg.vae.get("vae_2d", cfg.vae).get("from_pretrained"):
                load_checkpoint(vae, _weights(vae_path, "VAE", "vae", where))
        infer = dict(cfg.get("inference", {}))
        fps = infer.get("fps", DEFAULT_FPS)
        check_settings(dict(fps=fps), f"{where}: inference", positive=("fps",))
        num_classes = getattr(model, "num_classes", 0)
        names = config_class_names(cfg, num_classes, where) if num_classes else None
        pipe = cls(model, vae, scheduler, config_image_size(cfg), num_frames=config_num_frames(cfg), fps=fps,
                   class_names=names, window=infer.get("window"), name=where)
        return pipe.to(device)

    def to(self, device=None, dtype: Optional[torch.dtype] = None) -> "VideoPipeline":
        """Move the model and VAE to ``device``; ``dtype`` (e.g. torch.bfloat16) is the compute precision of
        sampling and decoding (autocast over float32 weights)."""
        if device is not None:
            device = torch.device(device)
            if device.type == "cuda" and not torch.cuda.is_available():
                raise UserError("device cuda: no CUDA device is available here; use cpu")
            self.model.to(device)
            self.vae.to(device)
        if dtype is not None:
            if dtype not in (torch.float32, torch.bfloat16, torch.float16):
                raise UserError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
            self.dtype = dtype
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_classes(self) -> int:
        return getattr(self.model, "num_classes", 0)

    # ------------------------------------------------------------------ inputs

    def _check_image_size(self) -> None:
        ph, pw = self.model.patch_size[1:]
        f = self.vae.spatial_factor
        size = self.image_size
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size) or size[0] % (f * ph) \
                or size[1] % (f * pw):
            raise ConfigError(f"image_size {size} is not supported: height and width must be positive multiples "
                              f"of {f * ph} and {f * pw} (VAE downsampling {f} times model patch {ph}x{pw})")

    def class_ids(self, classes) -> list:
        """Class ids of ``classes`` (ids or names); a UserError names an unknown one."""
        from ..data.class_names import resolve_class

        if self.num_classes == 0:
            if classes:
                raise UserError(f"{self.name} is unconditional (num_classes=0): it takes no classes; ask for "
                                f"more videos with num_samples")
            return []
        ids = [resolve_class(str(c), self.class_names, self.num_classes) for c in classes]
        bad = [c for c in ids if not 0 <= c < self.num_classes]
        if bad:
            raise UserError(f"class id(s) {bad} out of range: this model has classes 0..{self.num_classes - 1}")
        return ids

    def label(self, class_id) -> str:
        if class_id is None:
            return "sample"
        return f"{class_id} {self.class_names[class_id]}" if self.class_names else str(class_id)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(self, classes: Optional[Sequence] = None, num_frames: Optional[int] = None, num_samples: int = 1,
                 seed: int = 0, steps: Optional[int] = None, cfg_scale: Optional[float] = None,
                 sampler: Optional[str] = None, first_frame=None, extend=None, window_frames: Optional[int] = None,
                 overlap_frames: Optional[int] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> VideoOutput:
        """Generate ``num_samples`` clips per class of ``classes`` (ids or names; unconditional models: None).

        Sample i starts from noise seeded by ``seed + i`` (the same videos whatever the batch size).
        ``first_frame``: an image ((3, H, W) in [-1, 1], or a PNG/JPEG path) every clip starts from.
        ``extend``: a clip ((3, T, H, W) in [-1, 1], or a video path) every output continues; the output is
        that clip followed by the new frames. Clips longer than the model's window are made window by
        window (``window_frames`` / ``overlap_frames``, default: the config's ``inference.window``).
        ``steps``, ``cfg_scale`` and ``sampler`` default to the scheduler's.
        """
        if num_samples < 1 or batch_size < 1:
            raise UserError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
        settings = SamplingSettings(steps, cfg_scale if self.num_classes else 1.0, sampler, progress)
        settings = settings.resolved(self.scheduler)  # an unknown sampler fails here, before any work
        ids = self.class_ids(list(classes) if classes is not None else ([] if self.num_classes == 0 else [0]))
        rows = [c for c in ids for _ in range(num_samples)] if ids else [None] * num_samples
        if first_frame is not None and extend is not None:
            raise UserError("give either a first frame (image-to-video) or a clip to extend, not both")
        image = None if first_frame is None else as_image(first_frame, self.image_size)  # (3, H, W)
        prefix = None if extend is None else as_clip(extend, self.image_size)  # (3, M, H, W)
        plan = self.frame_plan(num_frames if num_frames is not None or prefix is not None else self.num_frames,
                               first_frame=image is not None, prefix_frames=0 if prefix is None else prefix.shape[1],
                               window_frames=window_frames, overlap_frames=overlap_frames)
        timings = dict(sampling=0.0, decoding=0.0)
        videos = []
        starts = range(0, len(rows), batch_size)
        for start in tqdm(starts, desc="batches", disable=not progress or len(starts) <= 1):
            batch = rows[start:start + batch_size]
            cond = {} if batch[0] is None else dict(y=torch.tensor(batch, device=self.device))
            seeds = [seed + start + i for i in range(len(batch))]
            videos.append(self._run_plan(plan, cond, seeds, settings, image, prefix, timings))
        videos = torch.cat(videos)  # (N, 3, T, H, W)
        given = plan.given_pixels.expand(len(rows), -1)  # (N, T)
        return VideoOutput(videos, given, [self.label(c) for c in rows], rows, self.fps, timings)

    def frame_plan(self, num_frames: Optional[int], first_frame: bool = False, prefix_frames: int = 0,
                   window_frames: Optional[int] = None, overlap_frames: Optional[int] = None) -> FramePlan:
        """The windows a request is made in (``FramePlan.build`` with this model, VAE and config window)."""
        window = {"frames": self.num_frames, **self.window}
        return FramePlan.build(self.vae, self.model.patch_size[0], num_frames, window, first_frame, prefix_frames,
                               window_frames, overlap_frames)

    def _run_plan(self, plan: FramePlan, cond: dict, seeds: list, settings: SamplingSettings,
                  image: Optional[torch.Tensor], prefix: Optional[torch.Tensor], timings: dict) -> torch.Tensor:
        """The output clips (n, 3, num_frames, H, W) of one batch (one clip per seed, the condition ``cond``),
        window after window; sampling and decoding seconds are added to ``timings``."""
        n = len(seeds)
        noise_gens = [torch.Generator().manual_seed(s) for s in seeds]  # each sample's noise, window after window
        pieces, tail = [], None  # tail (n, c, <= overlap, h, w): per-frame latents of the last frames made so far
        if prefix is not None:
            pieces.append(prefix[None].expand(n, -1, -1, -1, -1))  # the real frames come first
            tail = self._vae(self.vae.image_encode, prefix[None, :, -plan.overlap_frames:]).expand(n, -1, -1, -1, -1)
        elif image is not None:
            tail = self._vae(self.vae.image_encode, image[None, :, None]).expand(n, -1, -1, -1, -1)  # (n, c, 1, h, w)
        for window in plan.windows:
            t0 = time.perf_counter()
            given = None if not window.given else tail[:, :, -window.given:]
            latents = self._sample_window(window.frames, given, cond, noise_gens, settings, seeds[0] + len(pieces))
            t1 = time.perf_counter()
            with self._autocast():  # the temporal half once; its per-frame latents are what the next window gets
                per_frame = self.vae.time_decode(latents, num_frames=window.frames).float()  # (n, c, frames, h, w)
                video = self.vae.image_decode(per_frame).float().clamp(-1, 1).cpu()  # (n, 3, frames, H, W)
            timings["sampling"] += t1 - t0
            timings["decoding"] += time.perf_counter() - t1
            pieces.append(video[:, :, window.keep_from:])
            kept = per_frame[:, :, window.keep_from:]
            tail = kept if window.keep_from == 0 else torch.cat([tail, kept], dim=2)
            tail = tail[:, :, -plan.overlap_frames:]  # a window adds fewer frames than the overlap when window <
            # 2 x overlap, so the tail can span windows
        return torch.cat(pieces, dim=2)[:, :, : plan.num_frames]  # (n, 3, num_frames, H, W)

    def _sample_window(self, frames: int, given_frames: Optional[torch.Tensor], cond: dict, noise_gens: list,
                       settings: SamplingSettings, seed: int) -> torch.Tensor:
        """Latents (n, C, T', h, w) of one window of ``frames`` frames whose first frames have the per-frame
        latents ``given_frames`` (n, c, k, h, w), or none."""
        c, t, h, w = self.vae.out_channels, *self.vae.get_latent_size([frames, *self.image_size])
        z = torch.stack([torch.randn((c, t, h, w), generator=g) for g in noise_gens]).to(self.device)  # (n, C, T', ...)
        given = None
        if given_frames is not None:
            known = self._encode_given(given_frames, frames)  # (n, C, k', h, w)
            latents = torch.zeros_like(z)
            latents[:, :, : known.shape[2]] = known
            mask = torch.ones(z.shape[0], t, dtype=torch.bool, device=z.device)  # (n, T'): True = generated
            mask[:, : known.shape[2]] = False
            given = GivenFrames(latents, mask)
        size = VideoSize(*self.image_size, latent_frames=t)
        with self._autocast():
            latents = self.scheduler.sample(self.model, z, cond, settings, size=size, given=given,
                                            generator=torch.Generator(z.device).manual_seed(seed))
        return latents.float()

    def _encode_given(self, given: torch.Tensor, window_frames: int) -> torch.Tensor:
        """Latents (n, C, k', h, w) of the k given frames of a window of ``window_frames`` frames, from their
        per-frame latents (n, c, k, h, w).

        The frames are encoded as a whole window, padded by repeating the last given frame: the temporal VAE
        normalises over the whole clip (GroupNorm), so a frame encoded alone (half of its input the causal zero
        padding) gets other statistics than in the windows the model was trained on. The convolutions are
        causal, so the padding changes nothing else in the first k' latent frames.
        """
        k = given.shape[2]
        padded = torch.cat([given, given[:, :, -1:].expand(-1, -1, window_frames - k, -1, -1)], dim=2)
        latent_frames = self.vae.get_latent_size([k, None, None])[0]
        return self._vae(self.vae.time_encode, padded)[:, :, :latent_frames]  # (n, C, k', h, w)

    # ------------------------------------------------------------------ the VAE alone

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _vae(self, fn, x: torch.Tensor) -> torch.Tensor:
        """``fn(x)`` of a VAE method on the device, in the pipeline's dtype: a float32 result."""
        with self._autocast():
            return fn(x.to(self.device, torch.float32)).float()

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, T', H', W') of clips (N, 3, T, H, W) in [-1, 1] (posterior means), float32."""
        return self._vae(self.vae.encode, video)

    def decode(self, latents: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Clips (N, 3, num_frames, H, W) in [-1, 1] from latents (N, C, T', H', W'), float32 on the CPU."""
        return self._vae(lambda z: self.vae.decode(z, num_frames=num_frames), latents).clamp(-1, 1).cpu()


def _weights(path, what: str, key: str, where: str):
    if not path:
        raise CheckpointError(f"{where}: no {what} weights: set ckpt.{key} in the config or pass the path "
                              f"(or --random-init for a smoke run with random weights)")
    if Path(path).is_dir():
        raise CheckpointError(f"{what} weights {path} is a directory (expected by {where}: ckpt.{key}); "
                              f"pass a .safetensors file")
    if not Path(path).is_file():
        raise CheckpointError(f"{what} weights not found: {path} (expected by {where}: ckpt.{key}); "
                              f"train them or pass the right path, or use --random-init")
    return path
