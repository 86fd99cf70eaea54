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
from dataclasses import replace
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
IMAGE_FPS = 120  # the fps a text model is told for a single frame (Open-Sora 1.2's IMG_FPS)


class VideoPipeline:
    """A diffusion model, its VAE and its scheduler, ready to sample.

    Build it with :meth:`from_config`. ``pipe(...)`` returns a :class:`VideoOutput`.
    """

    def __init__(self, model, vae, scheduler, image_size, num_frames: int = DEFAULT_NUM_FRAMES,
                 fps: float = DEFAULT_FPS, class_names=None, window: Optional[dict] = None, name: str = "pipeline",
                 text_encoder=None, aes: Optional[float] = None, given_cfg_scale: Optional[float] = None):
        self.model, self.vae, self.scheduler = model.eval(), vae.eval(), scheduler
        self.text_encoder = text_encoder  # prompts -> cond, for text models (models/text_encoder.py)
        self.aes = aes  # Open-Sora 1.2's "aesthetic score: 6.5." prompt suffix, or None
        self.image_size = tuple(image_size)
        self.num_frames = num_frames
        self.fps = fps
        self.class_names = class_names
        self.window = dict(window or {})
        # guidance of the windows with given frames (image-to-video, continuation, the windows after the first of
        # a long video); None: the same as the class guidance
        self.given_cfg_scale = given_cfg_scale
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
        skip = {"ckpt.model", "ckpt.vae", "text_encoder.from_pretrained"} if random_init else (
            {"ckpt.model"} if ckpt else set())
        check_required_files(cfg, where, skip=skip)
        paths = dict(cfg.get("ckpt", {}))
        model = build_module(cfg.model, MODELS, where=where)
        text_encoder = _text_encoder(cfg, model, where, random_init)
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
        if infer.get("given_cfg_scale") is not None:
            check_settings(dict(given_cfg_scale=infer["given_cfg_scale"]), f"{where}: inference",
                           numbers=("given_cfg_scale",))
        num_classes = getattr(model, "num_classes", 0)
        names = config_class_names(cfg, num_classes, where) if num_classes else None
        size = config_image_size(cfg)
        if cfg.get("resolution") is not None and cfg.get("image_size") is None:  # a named size, on the VAE's grid
            size = tuple(s // vae.spatial_factor * vae.spatial_factor for s in size)
        pipe = cls(model, vae, scheduler, size, num_frames=config_num_frames(cfg), fps=fps,
                   class_names=names, window=infer.get("window"), name=where, text_encoder=text_encoder,
                   aes=infer.get("aes"), given_cfg_scale=infer.get("given_cfg_scale"))
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
            if self.text_encoder is not None:
                self.text_encoder.to(device)
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

    @property
    def takes_text(self) -> bool:
        return bool(getattr(self.model, "caption_channels", 0))

    # ------------------------------------------------------------------ inputs

    def _check_image_size(self, size=None) -> tuple:
        """``size`` (default: the config's image_size) if the VAE can make it: positive multiples of its factor.
        The model pads latents that its patch does not divide."""
        f = self.vae.spatial_factor
        size = tuple(self.image_size if size is None else size)
        if len(size) != 2 or any(not isinstance(s, int) or s < f or s % f for s in size):
            nearest = [max(f, round(s / f) * f) if isinstance(s, (int, float)) else f for s in size]
            raise ConfigError(f"image_size {size} is not supported: height and width must be positive multiples "
                              f"of {f} (the VAE's downsampling); the nearest size is {tuple(nearest)}")
        return size

    def video_size(self, size=None, resolution: Optional[str] = None, aspect_ratio: Optional[str] = None) -> tuple:
        """The (height, width) of a request: ``size``, or a named ``resolution`` ("240p") at ``aspect_ratio``
        (height:width, "9:16" by default; ``aspect.py``), or the config's image_size. A named size is put
        on the VAE's pixel grid (240p 9:16 is 240x426; the VAE makes 240x424, as Open-Sora's does)."""
        from ..aspect import image_size, ratio_key

        if aspect_ratio is not None:
            ratio_key(aspect_ratio)  # a bad ratio is named first, whatever else is missing
        if size is not None and (resolution is not None or aspect_ratio is not None):
            raise UserError("give a size or a resolution (with an aspect ratio), not both")
        if resolution is None and aspect_ratio is not None:
            raise UserError("an aspect ratio needs a resolution, e.g. resolution='240p' (--resolution 240p)")
        if resolution is not None:
            f = self.vae.spatial_factor
            named = image_size(resolution, aspect_ratio or "9:16")
            size = tuple(s // f * f for s in named)
            if size != named:
                logger.info("%s %s is %dx%d; the VAE makes %dx%d", resolution, aspect_ratio or "9:16", *named, *size)
        return self._check_image_size(size)

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
                 overlap_frames: Optional[int] = None, prompts: Optional[Sequence[str]] = None, size=None,
                 resolution: Optional[str] = None, aspect_ratio: Optional[str] = None,
                 given_cfg_scale: Optional[float] = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: bool = True) -> VideoOutput:
        """Generate ``num_samples`` clips per class of ``classes`` (ids or names; unconditional models: None), or
        per prompt of ``prompts`` (text models).

        Sample i starts from noise seeded by ``seed + i`` (the same videos whatever the batch size).
        ``first_frame``: an image ((3, H, W) in [-1, 1], or a PNG/JPEG path) every clip starts from.
        ``extend``: a clip ((3, T, H, W) in [-1, 1], or a video path) every output continues; the output is
        that clip followed by the new frames. Clips longer than the model's window are made window by
        window (``window_frames`` / ``overlap_frames``, default: the config's ``inference.window``).
        ``size`` (height, width), or ``resolution`` ("240p") and ``aspect_ratio`` (height:width, "9:16"), set
        the video size (default: the config's image_size); see :meth:`video_size`.
        ``steps``, ``cfg_scale`` and ``sampler`` default to the scheduler's. ``given_cfg_scale`` is the guidance of
        the windows with given frames (default: the config's ``inference.given_cfg_scale``, else ``cfg_scale``).
        """
        if num_samples < 1 or batch_size < 1:
            raise UserError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
        image_size = self.video_size(size, resolution, aspect_ratio)
        guided = self.num_classes or self.takes_text
        settings = SamplingSettings(steps, cfg_scale if guided else 1.0, sampler, progress)
        settings = settings.resolved(self.scheduler)  # an unknown sampler fails here, before any work
        given_scale = self.given_cfg_scale if given_cfg_scale is None else given_cfg_scale
        given_settings = settings if given_scale is None or not guided else replace(settings, cfg_scale=given_scale)
        if self.takes_text:
            rows, encoded = self._prompt_rows(prompts, classes, num_samples)
        else:
            if prompts is not None:
                raise UserError(f"{self.name} is not a text model: it takes classes, not prompts")
            ids = self.class_ids(list(classes) if classes is not None else ([] if self.num_classes == 0 else [0]))
            rows, encoded = [c for c in ids for _ in range(num_samples)] if ids else [None] * num_samples, None
        if first_frame is not None and extend is not None:
            raise UserError("give either a first frame (image-to-video) or a clip to extend, not both")
        image = None if first_frame is None else as_image(first_frame, image_size)  # (3, H, W)
        prefix = None if extend is None else as_clip(extend, image_size)  # (3, M, H, W)
        plan = self.frame_plan(num_frames if num_frames is not None or prefix is not None else self.num_frames,
                               first_frame=image is not None, prefix_frames=0 if prefix is None else prefix.shape[1],
                               window_frames=window_frames, overlap_frames=overlap_frames)
        timings = dict(sampling=0.0, decoding=0.0)
        videos = []
        starts = range(0, len(rows), batch_size)
        for start in tqdm(starts, desc="batches", disable=not progress or len(starts) <= 1):
            batch = rows[start:start + batch_size]
            if encoded is not None:
                cond = self._text_cond(encoded, range(start, start + len(batch)), image_size, plan.num_frames)
            else:
                cond = {} if batch[0] is None else dict(y=torch.tensor(batch, device=self.device))
            seeds = [seed + start + i for i in range(len(batch))]
            videos.append(self._run_plan(plan, cond, seeds, (settings, given_settings), image, prefix, timings,
                                         image_size))
        videos = torch.cat(videos)  # (N, 3, T, H, W)
        given = plan.given_pixels.expand(len(rows), -1)  # (N, T)
        if encoded is not None:
            return VideoOutput(videos, given, list(rows), [_slug(p) for p in rows], self.fps, timings)
        return VideoOutput(videos, given, [self.label(c) for c in rows], rows, self.fps, timings)

    def _prompt_rows(self, prompts, classes, num_samples: int) -> tuple:
        """The prompt of every output clip, and all of them encoded at once (T5 is then freed)."""
        from ..models.text_encoder import append_scores

        if classes is not None:
            raise UserError(f"{self.name} is a text-to-video model: it takes prompts, not classes")
        if prompts is None or isinstance(prompts, str) or not list(prompts):
            raise UserError(f"{self.name} is a text-to-video model: pass prompts=[...] (--prompt \"...\")")
        prompts = list(prompts)
        if not all(isinstance(p, str) and p.strip() for p in prompts):
            raise UserError(f"every prompt must be a non-empty string, got {prompts!r}")
        rows = [p for p in prompts for _ in range(num_samples)]
        encoded = self.text_encoder.encode(append_scores(rows, self.aes))  # {"y": (N, 1, L, C), "y_mask": (N, L)}
        return rows, {k: v.to(self.device) for k, v in encoded.items()}

    def _text_cond(self, encoded: dict, rows: range, image_size: tuple, num_frames: int) -> dict:
        """The cond of a text model for some rows: their tokens and masks, the fps and the pixel size."""
        n = len(rows)
        fps = self.fps if num_frames > 1 else IMAGE_FPS

        def full(value):
            return torch.full((n,), float(value), device=self.device)  # (n,)

        return dict(y=encoded["y"][rows.start:rows.stop], y_mask=encoded["y_mask"][rows.start:rows.stop],
                    fps=full(fps), height=full(image_size[0]), width=full(image_size[1]))

    def frame_plan(self, num_frames: Optional[int], first_frame: bool = False, prefix_frames: int = 0,
                   window_frames: Optional[int] = None, overlap_frames: Optional[int] = None) -> FramePlan:
        """The windows a request is made in (``FramePlan.build`` with this model, VAE and config window)."""
        window = {"frames": self.num_frames, **self.window}
        return FramePlan.build(self.vae, self.model.patch_size[0], num_frames, window, first_frame, prefix_frames,
                               window_frames, overlap_frames)

    def _run_plan(self, plan: FramePlan, cond: dict, seeds: list, settings: tuple,
                  image: Optional[torch.Tensor], prefix: Optional[torch.Tensor], timings: dict,
                  image_size: Optional[tuple] = None) -> torch.Tensor:
        """The output clips (n, 3, num_frames, H, W) of one batch (one clip per seed, the condition ``cond``),
        window after window, with ``settings`` (those of windows from nothing, those of windows with given
        frames); sampling and decoding seconds are added to ``timings``."""
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
            latents = self._sample_window(window.frames, given, cond, noise_gens, settings[given is not None],
                                          seeds[0] + len(pieces), image_size or self.image_size)
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
                       settings: SamplingSettings, seed: int, image_size: tuple) -> torch.Tensor:
        """Latents (n, C, T', h, w) of one window of ``frames`` frames at ``image_size`` whose first frames have
        the per-frame latents ``given_frames`` (n, c, k, h, w), or none."""
        c, t, h, w = self.vae.out_channels, *self.vae.get_latent_size([frames, *image_size])
        z = torch.stack([torch.randn((c, t, h, w), generator=g) for g in noise_gens]).to(self.device)  # (n, C, T', ...)
        given = None
        if given_frames is not None:
            known = self._encode_given(given_frames, frames)  # (n, C, k', h, w)
            latents = torch.zeros_like(z)
            latents[:, :, : known.shape[2]] = known
            mask = torch.ones(z.shape[0], t, dtype=torch.bool, device=z.device)  # (n, T'): True = generated
            mask[:, : known.shape[2]] = False
            given = GivenFrames(latents, mask)
        size = VideoSize(*image_size, latent_frames=t)
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


def _text_encoder(cfg, model, where: str, random_init: bool):
    """The config's text encoder (a text model needs one); with ``random_init``, a tiny random T5 of the model's
    width instead of the (large) real one."""
    from ..models.text_encoder import T5TextEncoder, check_t5_folder

    caption_channels = getattr(model, "caption_channels", 0)
    spec = cfg.get("text_encoder")
    if not caption_channels:
        return None
    if spec is None:
        raise ConfigError(f"{where}: the model reads text (caption_channels={caption_channels}) but the config has "
                          f"no text_encoder entry")
    max_length = dict(spec).get("model_max_length", 300)
    if random_init:
        return T5TextEncoder.tiny(caption_channels, max_length)
    encoder = build_module(spec, MODELS, where=where)
    check_t5_folder(encoder.from_pretrained)  # a missing file is one line now, not after the model has loaded
    return encoder


def _slug(prompt: str, limit: int = 40) -> str:
    """A file-name stem of a prompt: "a red panda, eating" -> "a-red-panda-eating"."""
    words = "".join(ch if ch.isalnum() else " " for ch in prompt.lower()).split()
    return "-".join(words)[:limit].rstrip("-") or "prompt"


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
