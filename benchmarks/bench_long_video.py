"""Long videos window by window: peak memory and time against the number of frames (issue: flat in N).

    python benchmarks/bench_long_video.py --steps 4          # 16, 64 and 256 frames, frame-masked shapes model
    python benchmarks/bench_long_video.py --frames 16 64 --steps 2 --quick

Each point runs in a fresh process (benchmarks/common.py: measure_in_child): it builds the shipped pipeline,
then generates one clip of N frames (the first window, then windows of 17 frames each given the last 9,
inference/frame_plan.py) and reports its peak RSS during the call. Memory that grew with N would show in
``extra_mib``; the output clip itself (N x 3 x 64 x 64 float32, 48 KiB a frame) is the only part that must.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import fmt_table, machine_info, measure_in_child, run_with_peak_memory, save_json  # noqa: E402

CONFIG = "configs/shapes/stdit_shapes_frames.py"  # the frame-masked model: windows of 17 frames given 9


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--steps", type=int, default=25, help="sampling steps per window (the config's default: 25)")
    p.add_argument("--quick", action="store_true", help="smoke run: saved as *_quick.json")
    p.add_argument("--out")
    p.add_argument("--child", nargs=2, metavar=("FRAMES", "STEPS"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(frames: int, steps: int) -> None:
    import torch

    from opensora_lite import VideoPipeline

    torch.set_num_threads(2)
    pipe = VideoPipeline.from_config(CONFIG)
    result = {}

    def run():
        result["shape"] = list(pipe(classes=[5], num_frames=frames, steps=steps, progress=False).videos.shape)

    row = run_with_peak_memory(run)
    print(json.dumps(dict(frames=frames, steps=steps, output_shape=result["shape"], **row)))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(int(args.child[0]), int(args.child[1]))
    info = machine_info()
    rows = []
    for frames in args.frames:
        row = measure_in_child(os.path.abspath(__file__), [str(frames), str(args.steps)])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(fmt_table(["frames", "seconds", "peak RSS MiB", "extra over baseline MiB"],
                    [[r.get("frames"), r.get("seconds"), r.get("peak_mib"), r.get("extra_mib")] for r in rows]))
    path = save_json("bench_long_video", dict(machine=info, config=CONFIG, steps=args.steps, results=rows,
                                              command="python " + " ".join(sys.argv)), args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
