"""What a pipeline call returns: the clips, which frames were given, their labels, and how to save them."""
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import DEFAULT_FPS


@dataclass
class VideoOutput:
    """Generated clips ``videos`` (N, 3, T, H, W) in [-1, 1]; ``given`` (N, T) bool marks frames that were
    conditions, not generated; ``names`` (N,) label each clip (``"5 square-left"``); ``ids`` its class id."""

    videos: torch.Tensor
    given: torch.Tensor
    names: list
    ids: list
    fps: float = DEFAULT_FPS
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
