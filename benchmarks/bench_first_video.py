"""A fast first video (issue #17, target 3): the shipped default command, whole process, under /usr/bin/time.

    python benchmarks/bench_first_video.py              # 1 warm-up + 5 measured runs, waits for a quiet machine
    python benchmarks/bench_first_video.py --quick      # 1 warm-up + 1 run, no waiting (smoke)

The command is ``make demo``'s inference line, ``python3 tools/generate.py configs/shapes/stdit_shapes.py
--class 5 --frames 16 --save-dir <tmp>``, run in a fresh process each time after a warm-up run (so the disk
cache is warm), each under ``/usr/bin/time`` (elapsed wall, user and system CPU seconds, max RSS). The
target is a median wall of at most 4 s on 2 cores. Where the time goes before sampling starts is
measured the same way on three import-only commands (torch alone; what tools/generate.py imports; that
plus the VAE class). /usr/bin/time comes from the ``time`` package (``apt-get install time``).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import ROOT, fmt_table, machine_info, save_json, set_quiet, wait_for_quiet  # noqa: E402

COMMAND = ["tools/generate.py", "configs/shapes/stdit_shapes.py", "--class", "5", "--frames", "16"]
TARGET_WALL_S = 4.0  # issue #17: whole process, 2 cores, warm disk cache
TIME_FORMAT = "TIME %e %U %S %M"  # elapsed s, user s, system s, max RSS KiB
TIMING_LINE = re.compile(r"in ([\d.]+) s \(sampling ([\d.]+) s, decoding ([\d.]+) s\)")
IMPORTS = {
    "import torch": "import torch",
    "import the inference command": "import opensora_lite.commands.generate",
    "+ the VAE class": "import opensora_lite.commands.generate; "
                       "from opensora_lite.models.vae.autoencoder_kl import AutoencoderKL",
}


def timed(argv) -> dict:
    """Run argv under /usr/bin/time in ROOT; return wall, user, sys (s), max RSS (MiB) and the output."""
    proc = subprocess.run(["/usr/bin/time", "-f", TIME_FORMAT, *argv], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    wall, user, system, rss_kib = proc.stderr.strip().splitlines()[-1].split()[1:]
    row = dict(wall_s=float(wall), user_s=float(user), sys_s=float(system), max_rss_mib=int(rss_kib) / 1024)
    split = TIMING_LINE.search(proc.stdout + proc.stderr)
    if split:
        row.update(pipeline_s=float(split[1]), sampling_s=float(split[2]), decoding_s=float(split[3]))
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one measured run, no waiting for a quiet machine")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out")
    args = p.parse_args(argv)
    if shutil.which("/usr/bin/time") is None:
        raise SystemExit("needs /usr/bin/time: apt-get install time")
    repeats = 1 if args.quick else args.repeats
    set_quiet(not args.quick)
    info = machine_info()
    print(json.dumps(info))
    with tempfile.TemporaryDirectory() as save_dir:
        command = [sys.executable, *COMMAND, "--save-dir", save_dir]
        timed(command)  # warm-up: disk cache, Python bytecode
        runs = []
        for _ in range(repeats):
            wait_for_quiet()
            runs.append(timed(command))
            print("  run:", json.dumps(runs[-1]))
    imports = {}
    for name, code in IMPORTS.items():
        samples = []
        for _ in range(repeats):
            wait_for_quiet()
            samples.append(timed([sys.executable, "-c", code]))
        imports[name] = dict(median_wall_s=statistics.median(s["wall_s"] for s in samples), runs=samples)
    wall = statistics.median(r["wall_s"] for r in runs)
    rows = [["whole process (median)", wall, statistics.median(r["user_s"] + r["sys_s"] for r in runs),
             statistics.median(r.get("sampling_s", float("nan")) for r in runs)]]
    rows += [[name, v["median_wall_s"], statistics.median(s["user_s"] + s["sys_s"] for s in v["runs"]), ""]
             for name, v in imports.items()]
    print(fmt_table(["what", "wall s", "CPU s (user + sys)", "sampling s"], rows))
    verdict = "met" if wall <= TARGET_WALL_S else "not met"
    print(f"target: whole process <= {TARGET_WALL_S} s wall: {verdict} ({wall:.2f} s)")
    path = save_json("bench_first_video", dict(
        machine={**info, "load_average_at_end": list(os.getloadavg())},
        command="python3 " + " ".join(COMMAND) + " --save-dir <tmp>", target_wall_s=TARGET_WALL_S,
        median_wall_s=wall, verdict=verdict, runs=runs, imports=imports,
        benchmark_command="python " + " ".join(sys.argv)), args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
