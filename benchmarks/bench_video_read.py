"""Peak memory of reading one 16-frame clip at 256x256 from 1080p and 4K H.264 files, both backends.

    python benchmarks/bench_video_read.py            # 1080p and 4K, 16 frames
    python benchmarks/bench_video_read.py --quick    # 360p and 720p, 4 frames (smoke run)

The clips are made here with PyAV's libx264 (moving colour waves, 8 fps) in a temporary folder. Each
point runs in a fresh subprocess (benchmarks/common.py: ``measure_in_child``): ``peak_mib`` is the
process's peak RSS during the read, ``extra_mib`` that minus the RSS before it (imports and the open
file are in the baseline). Contenders:

* ``read_video``: the readers as shipped, each frame resized and cropped as it is decoded;
* ``frames+resize``: :func:`read_video_frames` then :func:`resize_crop`, i.e. all frames stacked at the
  source size and converted to float before resizing (how read_video worked before issue #18).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.common import fmt_table, machine_info, measure_in_child, run_with_peak_memory, save_json  # noqa: E402

SOURCES = {"1080p": (1080, 1920), "4K": (2160, 3840)}
QUICK_SOURCES = {"360p": (360, 640), "720p": (720, 1280)}
OUT_SIZE = (256, 256)
CONTENDERS = ("read_video", "frames+resize")
BACKENDS = ("av", "decord")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="360p and 720p, 4 frames: a smoke run")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.frames = 4
    return args


def make_clip(path: Path, frames: int, height: int, width: int) -> Path:
    """An H.264 clip of moving colour waves (x264 veryfast, one thread)."""
    import av

    y = np.linspace(0, 6, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 9, width, dtype=np.float32)[None, :]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8, options={"preset": "veryfast", "threads": "1"})
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for t in range(frames):
            rgb = np.stack([np.sin(x + 0.3 * t) + 0 * y, np.cos(y - 0.2 * t) + 0 * x, np.sin(x + y + 0.1 * t)], -1)
            frame = ((rgb + 1) * 127.5).astype(np.uint8)  # (H, W, 3)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def child_main(args):
    from opensora_lite.data.video_read import read_video, read_video_frames, resize_crop

    if args.contender == "read_video":
        def call():
            return read_video(args.path, args.frames, size=OUT_SIZE, start=0, backend=args.backend)
    else:
        def call():
            return resize_crop(read_video_frames(args.path, args.frames, start=0, backend=args.backend), OUT_SIZE)
    call()  # warm-up: lazy imports, decoder libraries
    print(json.dumps(run_with_peak_memory(call)))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    sources = QUICK_SOURCES if args.quick else SOURCES
    folder = Path(tempfile.mkdtemp(prefix="bench_video_read_"))
    rows, results = [], []
    try:
        for name, (height, width) in sources.items():
            path = make_clip(folder / f"{name}.mp4", args.frames, height, width)
            for backend in BACKENDS:
                for contender in CONTENDERS:
                    child = ["--path", str(path), "--contender", contender, "--backend", backend,
                             "--frames", str(args.frames)]
                    memory = measure_in_child(os.path.abspath(__file__), child)
                    results.append(dict(source=name, height=height, width=width, frames=args.frames,
                                        backend=backend, contender=contender, **memory))
                    print(name, backend, contender, {k: v for k, v in memory.items() if k != "method"})
                    rows.append([name, backend, contender, memory.get("peak_mib"), memory.get("extra_mib"),
                                 memory.get("seconds")])
    finally:
        shutil.rmtree(folder)
    print(fmt_table(["source", "backend", "contender", "peak MiB", "extra MiB", "seconds"], rows))
    payload = dict(machine=machine_info(), out_size=list(OUT_SIZE), frames=args.frames, results=results)
    print("saved", save_json("bench_video_read", payload, quick=args.quick))


if __name__ == "__main__":
    main()
