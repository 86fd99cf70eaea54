"""DDIM 50 vs DPM-Solver++(2M) 20 against 250-step DDPM on the DiT fixture network (issue #17, target 2).

    python benchmarks/bench_solvers_dit.py            # 128 samples
    python benchmarks/bench_solvers_dit.py --quick    # 32 samples, fewer points (smoke)

The network is the dit_tiny fixture (tests/fixtures/iddpm.safetensors: DiT's architecture at hidden 64,
depth 2, on 4x8x8 latents, every weight random) run as STDiT on one-frame clips, like tests/test_iddpm.py,
without guidance. Every sampler starts from the same noise and labels. Two errors per point:

* **ODE error**: relative RMS distance, sample by sample, to the probability-flow ODE's solution, taken
  as DDIM on the full 1000-step chain (also against DDIM on the 250-step chain). This is what a faster
  deterministic solver must approximate.
* **Frechet distance to DDPM 250**: ancestral 250-step DDPM (DiT's default sampler) is stochastic, so
  it is compared as a distribution: the Frechet distance between Gaussians fitted to the flattened latents
  of the point and of DDPM 250 (seed A), divided by DDPM 250's total variance (the trace of its
  covariance: these random-weight latents are large). DDPM 250 with another noise seed (B) gives the floor.

``roughness_per_timestep`` is the relative change of the network's noise prediction when t moves by 1
(random weights do not make it smooth in t, which bounds what any solver order can gain here).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import ROOT, fmt_table, machine_info, save_json  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "iddpm.safetensors"
# dit_tiny's constructor (tests/fixtures/dit_tiny.json), as tests/conftest.py dit_tiny_stdit builds it.
DIT_TINY = dict(input_size=(1, 8, 8), patch_size=(1, 2, 2), in_channels=4, hidden_size=64, depth=2, num_heads=4,
                num_classes=10, learn_sigma=True)
POINTS = [("ddim", 10), ("ddim", 20), ("ddim", 50), ("ddim", 100), ("dpm++2m", 8), ("dpm++2m", 10),
          ("dpm++2m", 20), ("dpm++2m", 50)]
QUICK_POINTS = [("ddim", 50), ("dpm++2m", 20)]


def dit_tiny():
    from safetensors.torch import load_file

    from opensora_lite.models import STDiT
    from opensora_lite.models.convert import load_checkpoint

    prefix = "state_dict."
    state = {k[len(prefix):]: v.float() for k, v in load_file(str(FIXTURE)).items() if k.startswith(prefix)}
    model = STDiT(**DIT_TINY)
    load_checkpoint(model, state)
    return model.eval()


def relative_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt())


def roughness(model, n: int = 16, t0: int = 500) -> float:
    """Median relative change of the noise prediction between t and t + 1 (t = t0 .. t0 + 9)."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 4, 1, 8, 8, generator=g), torch.arange(n) % 10
    with torch.no_grad():
        eps = [model(x, torch.full((n,), t), y=y)[:, :4] for t in range(t0, t0 + 11)]
    return statistics.median(relative_rms(eps[i + 1], eps[i]) for i in range(10))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--threads", type=int, help="torch threads (1 on a shared machine: no waits on preempted threads)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from opensora_lite.eval.metrics import frechet_distance
    from opensora_lite.schedulers import IDDPM, SamplingSettings

    n, points = (32, QUICK_POINTS) if args.quick else (args.samples, POINTS)
    info = machine_info()
    print(json.dumps(info))
    model = dit_tiny()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, 4, 1, 8, 8, generator=g)  # (N, C, T, H, W)
    kwargs = dict(y=torch.randint(0, DIT_TINY["num_classes"], (n,), generator=g))
    diffusion = IDDPM()  # DiT's linear 1000-step schedule, learned sigma

    def sample(sampler, steps, seed=0):
        t0 = time.perf_counter()
        out = diffusion.sample(model, z, kwargs, SamplingSettings(cfg_scale=1.0, steps=steps, sampler=sampler,
                               progress=False), generator=torch.Generator().manual_seed(seed))
        return out, time.perf_counter() - t0

    ode, _ = sample("ddim", None)  # the full chain
    ode250, _ = sample("ddim", 250)
    ddpm_a, _ = sample("ddpm", 250, seed=1)
    ddpm_b, _ = sample("ddpm", 250, seed=2)
    flat = lambda x: x.flatten(1)  # noqa: E731  (N, C*T*H*W)
    total_variance = float(flat(ddpm_a).var(dim=0).sum())

    def fd(x):
        return frechet_distance(flat(x), flat(ddpm_a)) / total_variance

    rows = [dict(sampler="ddpm (seed B)", steps=250, ode_error=relative_rms(ddpm_b, ode),
                 ode250_error=relative_rms(ddpm_b, ode250),
                 fd_to_ddpm250=fd(ddpm_b))]
    for sampler, steps in points:
        out, seconds = sample(sampler, steps)
        rows.append(dict(sampler=sampler, steps=steps, ode_error=relative_rms(out, ode),
                         ode250_error=relative_rms(out, ode250),
                         fd_to_ddpm250=fd(out), seconds=seconds))
        print("  " + json.dumps(rows[-1]))
    rough = roughness(model)
    print(fmt_table(["sampler", "steps = network calls", "ODE error (vs DDIM 1000)", "vs DDIM 250",
                     "Frechet distance to DDPM 250 / its variance"],
                    [[r["sampler"], r["steps"], f"{r['ode_error']:.4f}", f"{r['ode250_error']:.4f}",
                      f"{r['fd_to_ddpm250']:.3f}"] for r in rows]))
    print(f"noise prediction changes by {rough:.1%} per timestep (median, t = 500..510)")
    path = save_json("bench_solvers_dit", dict(
        machine={**info, "load_average_at_end": list(os.getloadavg())}, samples=n, cfg_scale=1.0,
        ddpm250_total_variance=total_variance,
        roughness_per_timestep=rough, results=rows, command="python " + " ".join(sys.argv)), args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
