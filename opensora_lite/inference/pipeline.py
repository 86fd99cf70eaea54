"""The Python API: a config (or a run folder) in, videos out, in the style of a diffusers pipeline.

    from opensora_lite import VideoPipeline
    pipe = VideoPipeline.from_config("configs/shapes/stdit_shapes.py")   # or a training run folder
    out = pipe(classes=["square-left", 3], num_frames=16, seed=0, steps=25, cfg_scale=3.0)
    out.save("samples/")                                                 # MP4s + a labelled PNG grid

Frames can be given as conditions (``first_frame=`` image-to-video, ``extend=`` continuation), and a
clip longer than the model's window is made window by window (``docs/conditioning.md``). The CLI
(``tools/generate.py``, ``opensora-lite generate``), the evaluation tool and the trainer's sample
videos all go through this class.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from ..config import check_required_files, load_config, resolve_config
from ..errors import CheckpointError, ConfigError, UserError
from ..models.convert import load_checkpoint
from ..registry import MODELS, SCHEDULERS, build_module
from ..schedulers.guidance import GivenFrames
from .frame_plan import FramePlan

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 4  # clips per sampler call


@dataclass
class VideoOutput:
    """Generated clips ``videos`` (N, 3, T, H, W) in [-1, 1]; ``given`` (N, T) bool marks frames that were
    conditions, not generated; ``names`` (N,) label each clip (``"5 square-left"``); ``ids`` its class id."""

    videos: torch.Tensor
    given: torch.Tensor
    names: list
    ids: list
    fps: float = 8
    timings: dict = field(default_factory=dict)

    @property
    def frames(self) -> torch.Tensor:
        """(N, T, H, W, 3) uint8 RGB."""
        from ..data.video_write import to_uint8

        return torch.from_numpy(to_uint8(self.videos))

    def save(self, save_dir, overwrite: bool = False, grid: bool = True) -> list:
        """Write ``<save_dir>/<id>-<k>.mp4`` per clip (and ``grid-<k>.png``); existing files are kept unless
        ``overwrite``: new indices k are used. Returns the paths written."""
        from ..data.grid import save_labelled_grid
        from ..data.video_write import write_video

        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        stems = ["sample" if i is None else str(i) for i in self.ids]
        paths = free_paths(save_dir, stems, ".mp4", overwrite)
        marked = mark_given(self.videos, self.given)  # (N, 3, T, H, W): a border on the given frames
        for video, path in zip(marked, paths):
            write_video(path, video, fps=self.fps, overwrite=overwrite)
        if grid:
            stride = max(1, self.videos.shape[2] // 8)
            grid_path = free_paths(save_dir, ["grid"], ".png", overwrite)[0]
            paths.append(save_labelled_grid(grid_path, marked, self.names, frame_stride=stride))
        return paths


def free_paths(save_dir: Path, stems, suffix: str, overwrite: bool) -> list:
    """``<stem>-<index><suffix>`` per stem; without ``overwrite`` indices skip files that exist."""
    paths, next_index = [], {}
    for stem in stems:
        i = next_index.get(stem, 0)
        while not overwrite and (save_dir / f"{stem}-{i}{suffix}").exists():
            i += 1
        paths.append(save_dir / f"{stem}-{i}{suffix}")
        next_index[stem] = i + 1
    return paths


GIVEN_BORDER = 1  # px: given (condition) frames get a white border of this width in MP4s and grids


def mark_given(videos: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """videos (N, 3, T, H, W) with a white border on the frames where given (N, T) is True."""
    if not given.any():
        return videos
    out = videos.clone()
    b = GIVEN_BORDER
    frame = torch.zeros(videos.shape[-2:], dtype=torch.bool)  # (H, W)
    frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = True, True, True, True
    mask = given[:, None, :, None, None] & frame  # (N, 1, T, H, W)
    return out.masked_fill(mask, 1.0)


class VideoPipeline:
    """A diffusion model, its VAE and its scheduler, ready to sample.

    Build it with :meth:`from_config`. ``pipe(...)`` returns a :class:`VideoOutput`.
    """

    def __init__(self, model, vae, scheduler, image_size, num_frames: int = 16, fps: float = 8,
                 class_names=None, window: Optional[dict] = None, name: str = "pipeline"):
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
        (its ``config.py`` and ``model_ema.safetensors``), and load the weights the config names.

        ``random_init`` skips loading (smoke runs and benchmarks), loudly.
        """
        config, run_weights = resolve_config(config)
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
        fps = infer.get("fps", 8)
        if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
            raise ConfigError(f"{where}: inference.fps must be a positive number, got {fps!r}")
        num_classes = getattr(model, "num_classes", 0)
        names = config_class_names(cfg, num_classes, where) if num_classes else None
        pipe = cls(model, vae, scheduler, cfg.get("image_size", (256, 256)),
                   num_frames=infer.get("num_frames", cfg.get("num_frames", 16)), fps=fps, class_names=names,
                   window=infer.get("window"), name=where)
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
        """
        if num_samples < 1 or batch_size < 1:
            raise UserError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
        if sampler is not None and sampler not in self.scheduler.SAMPLERS:
            raise UserError(f"unknown sampler {sampler!r} for {type(self.scheduler).__name__}; choose one of "
                            f"{', '.join(self.scheduler.SAMPLERS)}")
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise UserError(f"steps must be a positive integer, got {steps!r}")
        ids = self.class_ids(list(classes) if classes is not None else ([] if self.num_classes == 0 else [0]))
        rows = [c for c in ids for _ in range(num_samples)] if ids else [None] * num_samples
        plan = FramePlan.build(self, num_frames if num_frames is not None else self.num_frames, first_frame, extend,
                               window_frames, overlap_frames)
        timings = dict(sampling=0.0, decoding=0.0)
        videos = []
        starts = range(0, len(rows), batch_size)
        for start in tqdm(starts, desc="batches", disable=not progress or len(starts) <= 1):
            batch = rows[start:start + batch_size]
            seeds = [seed + start + i for i in range(len(batch))]
            videos.append(self._generate(plan, batch, seeds, steps, cfg_scale, sampler, progress, timings))
        videos = torch.cat(videos)  # (N, 3, T, H, W)
        given = plan.given_pixels.expand(len(rows), -1)  # (N, T)
        return VideoOutput(videos, given, [self.label(c) for c in rows], rows, self.fps, timings)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def sample_latents(self, z: torch.Tensor, cond: dict, steps, cfg_scale, sampler, progress, seed: int,
                       given: Optional[GivenFrames] = None, num_frames: Optional[int] = None) -> torch.Tensor:
        """Run the scheduler from noise z (N, C, T', H', W') with condition ``cond``: clean latents, float32.
        ``num_frames`` (the pixel frames of z) is read by a size-dependent time shift only."""
        height, width = self.image_size
        size = dict(height=height, width=width, num_frames=num_frames or z.shape[2])
        if self.num_classes == 0:
            cfg_scale = 1.0  # unconditional: there is nothing to guide towards
        with self._autocast():
            latents = self.scheduler.sample(self.model, z, {**cond, **size}, cfg_scale=cfg_scale, num_steps=steps,
                                            progress=progress, generator=torch.Generator(z.device).manual_seed(seed),
                                            sampler=sampler, given=given)
        return latents.float()

    def decode(self, latents: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Clips (N, 3, num_frames, H, W) in [-1, 1] from latents (N, C, T', H', W'), float32 on the CPU."""
        with self._autocast():
            return self.vae.decode(latents.to(torch.float32), num_frames=num_frames).float().clamp(-1, 1).cpu()

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, T', H', W') of clips (N, 3, T, H, W) in [-1, 1] (posterior means), float32."""
        with self._autocast():
            return self.vae.encode(video.to(self.device, torch.float32)).float()

    def decode_window(self, latents: torch.Tensor, num_frames: int) -> tuple:
        """:meth:`decode` that also returns the per-frame latents (N, c, num_frames, h, w) it went through
        (float32, on the device): the frames a next window is given, without a pixel round trip."""
        with self._autocast():
            frames = self.vae.time_decode(latents.to(torch.float32), num_frames=num_frames).float()
            return self.vae.image_decode(frames).float().clamp(-1, 1).cpu(), frames

    def image_encode(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame latents (N, c, T, h, w) of clips (N, 3, T, H, W) in [-1, 1], float32."""
        with self._autocast():
            return self.vae.image_encode(video.to(self.device, torch.float32)).float()

    def time_encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, T', H', W') of per-frame latents (N, c, T, h, w), float32."""
        with self._autocast():
            return self.vae.time_encode(frames.to(self.device, torch.float32)).float()

    def _generate(self, plan: FramePlan, batch: list, seeds: list, steps, cfg_scale, sampler, progress,
                  timings: dict) -> torch.Tensor:
        """Clips (n, 3, T, H, W) for one batch of class ids (None entries: unconditional)."""
        cond = {} if batch[0] is None else dict(y=torch.tensor(batch, device=self.device))
        return plan.generate(self, cond, seeds, steps, cfg_scale, sampler, progress, timings)


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
