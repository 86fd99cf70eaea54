"""Attention broadcast for STDiT sampling, in the spirit of Pyramid Attention Broadcast (Zhao et al., 2024).

Attention outputs change little between neighbouring denoising steps, temporal attention least of all.
Inside :func:`attention_broadcast`, the chosen attention modules of an STDiT compute their output only
on "refresh" steps (every ``every``-th network call of one sampling run, and always on the first
``keep_first`` and last ``keep_last`` calls when the run length is known) and return the cached output
on the others, skipping their qkv, attention and output projection.

A sampling run is detected by its first timestep: a call whose t equals the largest t seen so far for
this batch shape (t = num_timesteps at noise) starts a new run. Benchmarks only: it is not a solver.

Archived: a negative result on the shipped shapes model (4-6 points of judged accuracy lost for 7-38% of the
sampling time; benchmarks/README.md). ``benchmarks/bench_sampling.py --pab`` still runs it.
"""
from contextlib import contextmanager


@contextmanager
def attention_broadcast(model, every: int = 2, targets=("temporal",), keep_first: int = 1, keep_last: int = 0,
                        num_steps=None):
    """Reuse the attention outputs of ``targets`` ("temporal", "spatial") across ``every`` consecutive calls."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    blocks = []
    if "temporal" in targets:
        blocks += list(model.temporal_blocks)
    if "spatial" in targets:
        blocks += list(model.spatial_blocks)
    state = dict(step=-1, t0=None, computed=0, reused=0)

    def on_call(module, args):  # a pre-hook on t_embedder: it runs once per network call, on t (N,)
        t = args[0]
        first = float(t.max())
        if state["t0"] is None or first >= state["t0"]:
            state["step"], state["t0"] = 0, first  # a new sampling run starts at its largest t
        else:
            state["step"] += 1

    def refresh() -> bool:
        step = state["step"]
        if step < keep_first or step % every == 0:
            return True
        return num_steps is not None and step >= num_steps - keep_last

    originals = {}

    def wrap(attn):
        forward = attn.forward
        cache = {}

        def cached_forward(x, rope=None):
            key = tuple(x.shape)
            if refresh() or key not in cache:
                cache[key] = forward(x, rope)
                state["computed"] += 1
            else:
                state["reused"] += 1
            return cache[key]
        return forward, cached_forward

    hook = model.t_embedder.register_forward_pre_hook(on_call)
    try:
        for block in blocks:
            originals[block.attn], block.attn.forward = wrap(block.attn)
        yield state
    finally:
        hook.remove()
        for attn in originals:
            del attn.__dict__["forward"]  # back to the class method


__all__ = ["attention_broadcast"]
