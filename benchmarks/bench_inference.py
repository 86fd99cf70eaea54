"""End-to-end tools/generate.py: wall time, sampling vs decoding split, and peak memory of the CLI process.

    python benchmarks/bench_inference.py                 # shipped shapes model + STDiT-XL/2 256px (random init)
    python benchmarks/bench_inference.py --quick         # shapes only (random init if no weights), 2 steps

Each point is one run of ``python tools/generate.py CONFIG ...`` in a fresh process (what a user types):

* wall: seconds from process start to exit (imports, building, loading, sampling, decoding, writing MP4s);
* sampling / decoding: the split that ``opensora_lite.VideoPipeline`` measures and the CLI prints;
* peak RSS: the child's ``ru_maxrss`` from ``os.wait4`` (the whole process, weights included).

The CLI prints its split to 0.1 s, too coarse for the small shapes model: for it, ``generate`` is also
timed in this process (``in_process``: build once, then alternating fp32/bf16 calls, median of repeats).

fp32 and bf16 runs (the CLI's ``--dtype``, chosen by ``--dtypes`` here) alternate; the median of the repeats is
reported.
"""
import argparse
import json
import os
import re
import resource  # noqa: F401  (os.wait4 returns a resource.struct_rusage)
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import ROOT, fmt_table, machine_info, save_json, set_quiet, wait_for_quiet  # noqa: E402

SHAPES = dict(name="shapes (shipped)", config="configs/shapes/stdit_shapes.py", args=["--class", "5", "--frames", "16"],
              weights=["weights/shapes/stdit.safetensors", "weights/shapes/vae.safetensors"])
XL = dict(name="STDiT-XL/2 256px (random init)", config="configs/stdit_256.py",
          args=["--random-init", "--class", "207", "--frames", "16"], weights=[])
TIMING_LINE = re.compile(r"in ([\d.]+) s \(sampling ([\d.]+) s, decoding ([\d.]+) s\)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="shapes config only, 2 sampling steps, 1 repeat")
    p.add_argument("--targets", nargs="+", default=["shapes", "xl"], choices=["shapes", "xl"])
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3, help="runs per point of the shapes model")
    p.add_argument("--xl-repeats", type=int, default=1, help="runs per point of STDiT-XL/2")
    p.add_argument("--xl-steps", type=int, help="sampling steps of STDiT-XL/2 (default: the config's 30)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the CLI runs (default: unset)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.targets, args.repeats, args.xl_repeats = ["shapes"], 1, 1
    return args


def run_cli(cli_args, threads=None) -> dict:
    """Run tools/generate.py once; return wall time, the printed timing split and the peak RSS."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as save_dir, tempfile.TemporaryFile("w+") as log:
        cmd = [sys.executable, "tools/generate.py", *cli_args, "--save-dir", save_dir, "--no-progress", "--overwrite"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        return dict(error=output[-2000:], command=" ".join(cmd[1:]))
    m = TIMING_LINE.search(output)
    return dict(wall_s=wall, cli_total_s=float(m.group(1)) if m else None,
                sampling_s=float(m.group(2)) if m else None, decoding_s=float(m.group(3)) if m else None,
                peak_rss_mib=usage.ru_maxrss / 1024)


def in_process(config: str, cli_args, dtypes, repeats: int, steps=None) -> dict:
    """Median sampling/decoding seconds of ``generate`` (one clip per class id of cli_args), built once."""
    import torch

    from opensora_lite.config import load_config
    from opensora_lite.inference.pipeline import VideoPipeline

    cfg = load_config(str(ROOT / config))
    classes = [int(cli_args[cli_args.index("--class") + 1])]
    frames = int(cli_args[cli_args.index("--frames") + 1])
    pipe = VideoPipeline.from_loaded_config(cfg, config, random_init="--random-init" in cli_args)
    kinds = {"fp32": torch.float32, "bf16": torch.bfloat16}

    def timings(dt: str) -> dict:
        return pipe.to(dtype=kinds[dt])(classes=classes, num_frames=frames, steps=steps, progress=False).timings

    for dt in dtypes:  # warm-up
        timings(dt)
    times = {dt: [] for dt in dtypes}
    for r in range(repeats):
        for dt in (dtypes if r % 2 == 0 else dtypes[::-1]):
            wait_for_quiet()
            times[dt].append(timings(dt))
    return {dt: dict(sampling_s=statistics.median(t["sampling"] for t in ts),
                     decoding_s=statistics.median(t["decoding"] for t in ts), repeats=repeats)
            for dt, ts in times.items()}


def main(argv=None):
    args = parse_args(argv)
    set_quiet(not args.quick)
    info = machine_info()
    print(json.dumps(info))
    rows = []
    for key in args.targets:
        target = dict(SHAPES if key == "shapes" else XL)
        cli = [target["config"], *target["args"]]
        missing = [w for w in target["weights"] if not (ROOT / w).is_file()]
        if missing:
            if not args.quick:
                print(f"skip {target['name']}: missing {missing}")
                rows.append(dict(target=target["name"], skipped=f"missing {missing}"))
                continue
            cli.append("--random-init")
            target["name"] += " [random init: weights missing]"
        steps = 2 if args.quick else (args.xl_steps if key == "xl" else None)
        if steps:
            cli += ["--steps", str(steps)]
        repeats = args.xl_repeats if key == "xl" else args.repeats
        runs = {dt: [] for dt in args.dtypes}
        for r in range(repeats):
            for dt in (args.dtypes if r % 2 == 0 else args.dtypes[::-1]):
                wait_for_quiet()
                res = run_cli(cli + ["--dtype", dt], args.threads)
                print(f"  {target['name']} {dt} run {r + 1}: {res}")
                runs[dt].append(res)
        split = in_process(target["config"], cli, args.dtypes, max(3, repeats), steps) if key == "shapes" else {}
        for dt, results in runs.items():
            ok = [x for x in results if "error" not in x]
            row = dict(target=target["name"], command="python tools/generate.py " + " ".join(cli + ["--dtype", dt]),
                       dtype=dt, steps=steps or "config", runs=results)
            if ok:
                for k in ("wall_s", "sampling_s", "decoding_s", "peak_rss_mib"):
                    vals = [x[k] for x in ok if x[k] is not None]
                    row[k] = statistics.median(vals) if vals else None
                if dt in split:
                    row["cli_sampling_s"], row["cli_decoding_s"] = row["sampling_s"], row["decoding_s"]
                    row["sampling_s"], row["decoding_s"] = split[dt]["sampling_s"], split[dt]["decoding_s"]
                    row["split_method"] = "in-process generate(), median of %d" % split[dt]["repeats"]
            rows.append(row)
    header = ["target", "dtype", "steps", "wall s", "sampling s", "decoding s", "peak RSS MiB"]
    print(fmt_table(header, [[r["target"], r.get("dtype", ""), r.get("steps", ""), r.get("wall_s", ""),
                              r.get("sampling_s", ""), r.get("decoding_s", ""), r.get("peak_rss_mib", "")]
                             for r in rows]))
    path = save_json("bench_inference", dict(machine={**info, "load_average_at_end": list(os.getloadavg())},
                                             results=rows, command="python " + " ".join(sys.argv)),
                     args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
