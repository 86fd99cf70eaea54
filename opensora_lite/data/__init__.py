"""Video IO, datasets (registered in DATASETS) and the synthetic moving-shapes benchmark."""
from .datasets import LatentCacheDataset, VideoClipDataset, build_latent_cache
from .grid import make_grid, save_grid_png
from .video_read import probe_video, read_video, read_video_frames, sample_frame_indices
from .video_write import OutputExistsError, to_uint8, write_gif, write_video

__all__ = [
    "LatentCacheDataset",
    "OutputExistsError",
    "VideoClipDataset",
    "build_latent_cache",
    "make_grid",
    "probe_video",
    "read_video",
    "read_video_frames",
    "sample_frame_indices",
    "save_grid_png",
    "to_uint8",
    "write_gif",
    "write_video",
]
