"""What every benchmark script shares: machine info, alternating timers, the GEMM peak, peak memory, JSON.

Method (the machine is shared and noisy):

* **Timing**: contenders run in ONE process, interleaved round by round (A B, then B A, ...), after
  warm-up calls; we report the median (and best) of the rounds. Compare only figures of one run.
  Every timed call first waits for an idle machine and is re-run if other processes used more than 5%
  of the CPUs meanwhile (measured from /proc/stat minus this process's own CPU time; see
  :func:`timed_quiet`); each sample's ``others_share`` is saved.
* **Peak**: the matmul throughput of a large square GEMM (2n^3 FLOPs), measured in the same run. Timed
  as one more contender, interleaved with the models (:func:`gemm_block`), its median is the "peak" that
  model FLOP utilisation (MFU) is divided by: the GEMM and the models then see the same machine. The best
  GEMM of the whole run (also measured alone before and after the contenders) is kept as a stricter bound.
* **Peak memory** (:func:`measure_in_child`): one fresh subprocess per point runs the call once; the kernel's
  high-water mark of resident memory (``VmHWM``) is reset (``/proc/self/clear_refs``) just before the call
  and read after it, so ``peak_mib`` is the process's peak RSS during the call and ``extra_mib`` that minus
  the RSS before it (model, inputs and libraries are in the baseline; activations, gradients and
  temporaries in the extra). The child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so glibc returns every
  freed tensor to the OS (RSS then follows the live tensors instead of malloc's cache). Where
  ``clear_refs`` is not writable it falls back to ``ru_maxrss`` of the child (peak since start).
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
GEMM_SIZE = 2048  # square GEMM of the peak measurement: big enough for MKL / oneDNN to reach steady state
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}  # every large buffer is its own mmap: RSS follows live memory

#################################################################################
#                                 Machine info                                  #
#################################################################################


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> List[str]:
    """The matmul-relevant ISA extensions the CPU reports (bf16 GEMM speed depends on them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
                return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    import importlib.metadata as md

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        cpu_model=cpu_model(),
        cpu_flags=cpu_flags(),
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        diffusers=version("diffusers"),
        python=platform.python_version(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        isa=isa_info(),
        load_average_at_start=list(os.getloadavg()),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
    )


def isa_info() -> dict:
    """What the kernels run on: oneDNN's bf16 support, the fused-GELU probe per dtype, and any ISA caps
    set in the environment (a simulated AVX2-only host sets ONEDNN_MAX_CPU_ISA / ATEN_CPU_CAPABILITY)."""
    from opensora_lite.models import cpu_speed

    caps = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
    flags = cpu_flags()
    return dict(
        avx512f="avx512f" in flags, avx512_bf16="avx512_bf16" in flags, amx_bf16="amx_bf16" in flags,
        onednn_bf16=bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        fused_gelu={name: cpu_speed.fused_gelu_works(dtype)
                    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))},
        env_caps={key: os.environ[key] for key in caps if key in os.environ},
    )


def save_json(name: str, payload: dict, quick: bool = False, out: Optional[str] = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``<name>_quick.json`` for --quick runs) and return the path."""
    path = Path(out) if out else RESULTS / f"{name}{'_quick' if quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return path


#################################################################################
#                                    Timing                                     #
#################################################################################


def time_call(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


#  Other processes on a shared machine: each timed call also measures how much CPU the REST of the machine
#  used meanwhile (all CPU time in /proc/stat minus this process's own), as a fraction of all cores.
#  A call during which others took more than QUIET_SHARE is "contended": it waits for a quiet moment
#  and runs again (up to MAX_RETRIES times); the JSON keeps every sample's ``others`` share.
QUIET_SHARE = 0.05  # others may use at most 5% of the machine during a timed call
MAX_RETRIES = 4  # re-runs of a contended call before its sample is kept anyway (flagged)
MAX_QUIET_WAIT_S = 120.0  # longest wait for a quiet moment before a call
QUIET = {"enabled": True}  # set_quiet(False) for smoke runs (tiny calls are below /proc/stat's 10 ms tick)


def set_quiet(enabled: bool) -> None:
    QUIET["enabled"] = bool(enabled)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_cpu_seconds() -> Optional[float]:
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat; None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK  # user..steal; guest time is already counted in user


def _own_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def others_share(fn: Callable[[], object]) -> tuple:
    """Run fn; return (wall seconds, share of all cores used by OTHER processes meanwhile, or None)."""
    cores = os.cpu_count() or 1
    m0, o0 = _machine_cpu_seconds(), _own_cpu_seconds()
    wall = time_call(fn)
    m1, o1 = _machine_cpu_seconds(), _own_cpu_seconds()
    if m0 is None or m1 is None:
        return wall, None
    return wall, max(0.0, (m1 - m0) - (o1 - o0)) / (wall * cores)


def wait_for_quiet(max_wait: float = MAX_QUIET_WAIT_S, sample: float = 0.5) -> float:
    """Sleep until the machine is idle (others < QUIET_SHARE over ``sample`` s); return seconds waited."""
    if not QUIET["enabled"]:
        return 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        _, share = others_share(lambda: time.sleep(sample))
        if share is None or share < QUIET_SHARE:
            break
        time.sleep(2.0)
    return time.perf_counter() - t0


def summarize(times: List[float], shares: Optional[List[Optional[float]]] = None) -> dict:
    out = dict(median_s=statistics.median(times), best_s=min(times), times_s=[round(t, 5) for t in times])
    if shares is not None:
        out["others_share"] = [None if s is None else round(s, 3) for s in shares]
        out["contended_samples"] = sum(1 for s in shares if s is not None and s > QUIET_SHARE)
    return out


def paired_ratio(numerator_times: List[float], denominator_times: List[float]) -> float:
    """Median over rounds of ``numerator[r] / denominator[r]`` for two contenders of one :func:`time_alternating` run.

    The two calls of a round run back to back, so a slow drift of the machine's speed (frequency, a noisy
    neighbour on the host: invisible in /proc/stat) scales both and cancels in their ratio; the ratio of
    the two medians mixes rounds taken at different speeds. Both are saved; tables show this one.
    """
    return statistics.median(a / b for a, b in zip(numerator_times, denominator_times))


def timed_quiet(fn: Callable[[], object], quiet: Optional[bool] = None) -> tuple:
    """(seconds, others' share) of one call of fn, re-run while other processes disturbed it."""
    quiet = QUIET["enabled"] if quiet is None else quiet
    for _ in range(MAX_RETRIES + 1):
        if quiet:
            wait_for_quiet()
        seconds, share = others_share(fn)
        if not quiet or share is None or share <= QUIET_SHARE:
            break
    return seconds, share


def time_alternating(contenders: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                     log: Optional[Callable[[str], None]] = print, quiet: Optional[bool] = None) -> Dict[str, dict]:
    """Time each contender ``repeats`` times, interleaved (A B, B A, A B, ...), after ``warmup`` calls each.

    With ``quiet`` every timed call waits for an idle machine and is re-run when other processes used
    more than QUIET_SHARE of it meanwhile (see above). Returns ``{name: dict(median_s, best_s, times_s,
    others_share, contended_samples)}``.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times = {name: [] for name in names}
    shares = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds, share = timed_quiet(contenders[name], quiet)
            times[name].append(seconds)
            shares[name].append(share)
        if log:
            log("    round %d: %s" % (r + 1, "  ".join(
                f"{n} {times[n][-1]:.3f}s" + (f" (others {shares[n][-1]:.0%})" if shares[n][-1] else "")
                for n in names)))
    return {name: summarize(times[name], shares[name]) for name in names}


def gemm_block(dtype: torch.dtype, n: int = GEMM_SIZE, min_seconds: float = 0.3) -> tuple:
    """(callable, FLOPs per call): enough n x n @ n x n matmuls in ``dtype`` to last ~``min_seconds``.

    Timed as one more contender beside the models (see :func:`time_alternating`), it measures the GEMM
    peak under the same conditions as they run: interleaved, so a noisy moment hits both alike.
    """
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)  # warm-up (oneDNN / MKL kernel selection)
    calls = max(1, int(min_seconds / max(time_call(lambda: torch.mm(a, b)), 1e-4)))  # >= 10 ms ticks

    def block():
        for _ in range(calls):
            torch.mm(a, b)
    return block, 2 * n**3 * calls


def gemm_flops_per_s(dtype: torch.dtype, n: int = GEMM_SIZE, repeats: int = 5) -> float:
    """Best throughput (FLOP/s) of an n x n @ n x n matmul in ``dtype`` (bf16: a real bf16 GEMM)."""
    block, flops = gemm_block(dtype, n)
    best = min(timed_quiet(block)[0] for _ in range(repeats))
    return flops / best


def measure_peaks(n: int = GEMM_SIZE, repeats: int = 5) -> dict:
    return {"fp32": gemm_flops_per_s(torch.float32, n, repeats), "bf16": gemm_flops_per_s(torch.bfloat16, n, repeats)}


#################################################################################
#                                 Peak memory                                   #
#################################################################################


def _read_status_kib(field: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_with_peak_memory(fn: Callable[[], object]) -> dict:
    """Run fn once; return its wall time and the process's peak RSS during the call (MiB), see module doc."""
    import gc
    import resource

    gc.collect()
    before = _read_status_kib("VmRSS")
    exact = reset_peak_rss()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = _read_status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(seconds=seconds, rss_before_mib=before / 1024, peak_mib=peak / 1024,
                extra_mib=(peak - before) / 1024, method="VmHWM reset" if exact else "ru_maxrss since start")


def measure_in_child(script: str, child_args: List[str], timeout: Optional[float] = None) -> dict:
    """Run ``python script --child <child_args>`` in a fresh process; it prints one JSON line, returned here."""
    env = {**os.environ, **CHILD_ENV}
    proc = subprocess.run([sys.executable, script, "--child", *child_args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(ROOT))
    if proc.returncode != 0:
        return dict(error=(proc.stderr or proc.stdout)[-2000:])
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return dict(error="no JSON from child: " + proc.stdout[-500:])


def fmt_table(header: List[str], rows: List[list]) -> str:
    """A GitHub-markdown table."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
