"""One generation request of the web demo, checked against the server's limits and run through ``VideoPipeline``.

Nothing here knows about Gradio: the page (``app.py``) turns its fields into a :class:`DemoRequest` and shows
what :func:`run_job` returns. The sampling is the pipeline's own, so a request gives the same tensors and the
same MP4 as ``opensora-lite generate`` with the same settings (``tests/test_demo.py``). Uploaded files are
checked with the project's readers and limits, and deleted when the job ends, whatever happened.
"""
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..config import check_settings
from ..data.folder_scan import IMAGE_EXTENSIONS
from ..data.video_read import VIDEO_EXTENSIONS, probe_video
from ..errors import UserError


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: refused before any work starts, with the limit in the message."""

    max_frames: int = 96  # frames of one generated clip
    max_steps: int = 100  # sampler steps
    max_upload_mb: float = 50.0  # size of an uploaded image or clip
    max_clip_frames: int = 256  # frames of a clip to continue
    keep_jobs: int = 8  # finished jobs whose files stay on disk for the page to serve
    max_prompt_chars: int = 2000  # a text model's prompt


@dataclass
class DemoRequest:
    config: str  # one of the served configs
    class_name: Optional[str]  # a class id or name (None: the model's class 0, or an unconditional model)
    frames: int
    steps: int
    sampler: str
    cfg_scale: float
    seed: int
    first_frame: Optional[str] = None  # path of an uploaded image
    extend: Optional[str] = None  # path of an uploaded clip
    prompt: Optional[str] = None  # a text model's prompt


@dataclass
class JobResult:
    video: Path  # the MP4, given frames marked
    grid: Path  # the labelled PNG grid
    videos: object = field(repr=False, default=None)  # (1, 3, T, H, W) in [-1, 1], as VideoOutput.videos
    seconds: float = 0.0


def check_request(request: DemoRequest, limits: Limits) -> None:
    """Refuse a request that asks for too much or names a bad file, before the model runs (what the pipeline
    refuses itself, such as a first frame together with a clip, is left to it)."""
    values = dict(frames=request.frames, steps=request.steps, seed=request.seed, cfg_scale=request.cfg_scale)
    check_settings(values, "request", positive_ints=("frames", "steps"), non_negative_ints=("seed",),
                   numbers=("cfg_scale",))
    if request.frames > limits.max_frames:
        raise UserError(f"{request.frames} frames is more than this server makes ({limits.max_frames} at most)")
    if request.steps > limits.max_steps:
        raise UserError(f"{request.steps} steps is more than this server runs ({limits.max_steps} at most)")
    if request.prompt is not None and len(request.prompt) > limits.max_prompt_chars:
        raise UserError(f"the prompt has {len(request.prompt)} characters, over this server's "
                        f"{limits.max_prompt_chars}")
    for what, path, extensions in (("first frame", request.first_frame, IMAGE_EXTENSIONS),
                                   ("clip to continue", request.extend, VIDEO_EXTENSIONS)):
        if not path:
            continue
        size_mb = os.path.getsize(path) / 2**20
        if size_mb > limits.max_upload_mb:
            raise UserError(f"the {what} is {size_mb:.0f} MB, over this server's {limits.max_upload_mb:.0f} MB")
        if Path(path).suffix.lower() not in extensions:
            raise UserError(f"the {what} {Path(path).name} is not one of {', '.join(extensions)}")
    if request.extend:
        frames = probe_video(request.extend)[0]  # a DataError names an unreadable file
        if frames > limits.max_clip_frames:
            raise UserError(f"the clip to continue has {frames} frames, over this server's {limits.max_clip_frames}")


def run_job(pipe, request: DemoRequest, limits: Limits, jobs_dir: Path) -> JobResult:
    """Check ``request``, generate one clip with ``pipe`` and save it as the CLI does; uploads are deleted."""
    try:
        check_request(request, limits)
        t0 = time.perf_counter()
        classes = None if request.class_name is None else [request.class_name]
        prompts = [request.prompt] if pipe.takes_text else None  # the pipeline refuses an empty one
        out = pipe(classes=classes, prompts=prompts, num_frames=request.frames, seed=request.seed,
                   steps=request.steps, cfg_scale=request.cfg_scale, sampler=request.sampler,
                   first_frame=request.first_frame, extend=request.extend, progress=True)
        job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=jobs_dir))
        video, grid = out.save(job_dir)
        _prune(jobs_dir, limits.keep_jobs)
        return JobResult(Path(video), Path(grid), out.videos, time.perf_counter() - t0)
    finally:
        for upload in (request.first_frame, request.extend):
            if upload and os.path.exists(upload):
                os.remove(upload)
                with contextlib.suppress(OSError):  # the upload's own folder, when nothing else is in it
                    os.rmdir(os.path.dirname(upload))


def _prune(jobs_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` job folders."""
    jobs = sorted(Path(jobs_dir).glob("job-*"), key=lambda p: p.stat().st_mtime)
    for old in jobs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
