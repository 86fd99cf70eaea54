"""Solver error on the shipped shapes model: Euler, Heun, DPM-Solver++(2M) and a t-linear variant of it.

    python benchmarks/archive/flow_solvers_shapes.py            # 1 clip per class, reference Heun 50

Not product: the variant ("t-linear 2M") is an experiment kept so the figure in benchmarks/README.md can be
traced. It is the exponential integrator of the flow written for 1/s (d(x/s)/ds = -x0/s^2, s = t / 1000)
with the data prediction x0 taken as linear in s through the last two evaluations (DEIS's polynomial
extrapolation in time, on x0), instead of linear in lambda = log((1 - s) / s) as DPM-Solver++(2M) takes it:

    x' = x + (s - s') v_i + b (s' - s + s' log(s / s')),  b = (x0_i - x0_{i-1}) / (s_i - s_{i-1}),

second order from the second step on (DPM-Solver++(2M) from pure noise is Euler for its first two steps)
and at s' = 0 too (x' = x0_i - b s_i). Error = relative RMS distance of the decoded clips to the
reference solve of the same noise.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from benchmarks.common import ROOT, fmt_table, machine_info, save_json  # noqa: E402

CONFIG = "configs/shapes/stdit_shapes.py"
STEPS = (5, 6, 8, 12)
REFERENCE = ("heun", 50)


def t_linear_2m(velocity, z, timesteps, num_timesteps, progress):
    """The t-linear variant above, with the signature of ``solvers._dpm_solver_2m``."""
    from opensora_lite.schedulers.solvers import _intervals, _per_sample

    x0_prev = s_prev = None
    for t, t_next, dt in _intervals(timesteps):
        s, s_next = t.double() / num_timesteps, t_next.double() / num_timesteps  # (N,)
        v = velocity(z, t)  # (N, C, T, H, W)
        x0 = z + _per_sample(s.to(z.dtype), z) * v
        z_next = z + v * _per_sample((dt / num_timesteps).to(z.dtype), z)
        if x0_prev is not None:
            b = (x0 - x0_prev) / _per_sample((s - s_prev).to(z.dtype), z)
            log_term = torch.where(s_next > 0, s_next * torch.log(s / s_next.clamp(min=1e-30)), torch.zeros_like(s))
            z_next = z_next + b * _per_sample((s_next - s + log_term).to(z.dtype), z)
        z, x0_prev, s_prev = z_next, x0, s
    return z


def main():
    from opensora_lite.inference.pipeline import VideoPipeline
    from opensora_lite.schedulers import solvers

    info = machine_info()
    print(json.dumps(info))
    os.chdir(ROOT)
    pipe = VideoPipeline.from_config(CONFIG)
    classes = list(range(pipe.num_classes))

    def generate(sampler, steps):
        return pipe(classes=classes, num_frames=pipe.num_frames, seed=0, steps=steps, sampler=sampler,
                    batch_size=16, progress=False).videos  # (N, 3, T, H, W)

    reference = generate(*REFERENCE)

    def error(videos):
        return float((videos - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt())

    rows = []
    for steps in STEPS:
        row = dict(nfe=steps, euler=error(generate("euler", steps)), dpm_2m=error(generate("dpm++2m", steps)))
        kept, solvers._dpm_solver_2m = solvers._dpm_solver_2m, t_linear_2m
        try:
            row["t_linear_2m"] = error(generate("dpm++2m", steps))
        finally:
            solvers._dpm_solver_2m = kept
        rows.append(row)
    rows.append(dict(nfe=24, heun_12=error(generate("heun", 12))))
    rows.append(dict(nfe=25, euler_25=error(generate("euler", 25))))
    print(fmt_table(["NFE", "results"], [[r["nfe"], json.dumps({k: round(v, 4) for k, v in r.items() if k != "nfe"})]
                                         for r in rows]))
    path = save_json("flow_solvers_shapes", dict(machine=info, reference=REFERENCE, clips=len(classes), results=rows,
                                                 command="python " + " ".join(sys.argv)),
                     out=str(ROOT / "benchmarks" / "archive" / "results" / "flow_solvers_shapes.json"))
    print("saved", path)


if __name__ == "__main__":
    main()
