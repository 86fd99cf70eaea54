"""Open-Sora 1.2 text-to-video at full size on this CPU (issue #27): one measured step, and the memory of each phase.

    python benchmarks/bench_opensora_t2v.py            # 240p 9:16, 51 frames, fp32 and bf16 (tens of minutes)
    python benchmarks/bench_opensora_t2v.py --quick    # 144p 9:16, 17 frames, bf16 only, a 2-layer T5 (smoke)

Random weights (the released ones are not available where the project is built), real sizes: T5-XXL (24 layers,
d_model 4096, 4.7 B parameters, bf16 as Open-Sora loads it), STDiT3-XL/2 (1.1 B) and the v1.2 VAE. Each phase runs
in a fresh process with its own peak-RSS mark (``common.measure_in_child``):

* ``t5``: T5-XXL built and encoding one prompt padded to 300 tokens, and the RSS before and after ``free()``
  (what freeing T5 before sampling saves);
* ``stdit``: one guided sampling step (the CFG batch of 2, 15x30x53 latents at 240p/51 frames), timed once (after
  a warm-up call in --quick); a 30-step sample is extrapolated from it (the steps cost the same);
* ``vae``: decoding those latents to 51 frames of 240x424.

Weights are filled with small random numbers in place (``to_empty`` + normal), not with each layer's own init:
building T5-XXL the usual way takes minutes and is not what is measured.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import fmt_table, machine_info, run_with_peak_memory, save_json  # noqa: E402

T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)
# warmup: one unmeasured call first (at full size a call takes minutes, and its first-call overhead is a small
# part of it, so the full run measures its first call)
FULL = dict(resolution="240p", aspect_ratio="9:16", frames=51, dtypes=("fp32", "bf16"), t5_layers=24, warmup=False)
QUICK = dict(resolution="144p", aspect_ratio="9:16", frames=17, dtypes=("bf16",), t5_layers=2, warmup=True)
STEPS = 30  # Open-Sora 1.2's sampling steps
PROMPT = "a red panda eating bamboo in a sunlit forest, close-up, slow camera pan"


def random_fill(module: torch.nn.Module, dtype=torch.float32) -> torch.nn.Module:
    """Real storage for a module built on the meta device, filled with N(0, 0.02) (LayerNorm-like weights 1)."""
    module = module.to_empty(device="cpu").to(dtype)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and ("norm" in name or name.endswith("layer_norm.weight")):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
        for b in module.buffers():
            if b.is_floating_point():
                b.copy_(torch.randn(b.shape, generator=gen) * 0.02)
    return module.eval()


def rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_t5(layers: int) -> dict:
    import gc

    from transformers import T5Config, T5EncoderModel

    from opensora_lite.models.text_encoder import T5TextEncoder

    with torch.device("meta"):
        model = T5EncoderModel(T5Config(**dict(T5_XXL, num_layers=layers)))
    encoder = T5TextEncoder.tiny(32, 300)  # its tokenizer; the model is replaced by the full-size one
    encoder._model, encoder.keep_loaded = random_fill(model, torch.bfloat16), True
    loaded = rss_mib()
    run = run_with_peak_memory(lambda: encoder.encode([PROMPT]))
    encoder._model = None
    del model
    gc.collect()
    return dict(run, parameters=sum(p.numel() for p in encoder_params(layers)), rss_loaded_mib=loaded,
                rss_after_free_mib=rss_mib())


def encoder_params(layers: int):
    from transformers import T5Config, T5EncoderModel

    with torch.device("meta"):
        return list(T5EncoderModel(T5Config(**dict(T5_XXL, num_layers=layers))).parameters())


def latent_shape(resolution: str, aspect_ratio: str, frames: int) -> tuple:
    from opensora_lite.aspect import image_size
    from opensora_lite.config import load_config
    from opensora_lite.registry import MODELS, build_module

    height, width = (s // 8 * 8 for s in image_size(resolution, aspect_ratio))
    with torch.device("meta"):
        vae = build_module(load_config("configs/opensora/t2v_v1_2.py").vae, MODELS)
    return (height, width), tuple(vae.get_latent_size([frames, height, width]))


def child_stdit(resolution: str, aspect_ratio: str, frames: int, dtype: str, warmup: bool) -> dict:
    from opensora_lite.models.stdit import STDiT3_XL_2
    from opensora_lite.schedulers.guidance import model_output

    (height, width), (t, h, w) = latent_shape(resolution, aspect_ratio, frames)
    with torch.device("meta"):
        model = STDiT3_XL_2()
    model = random_fill(model)
    z = torch.randn(1, 4, t, h, w)
    cond = dict(y=torch.randn(1, 1, 300, 4096), y_mask=torch.arange(300)[None] < 24, fps=torch.tensor([24.0]),
                height=torch.tensor([float(height)]), width=torch.tensor([float(width)]))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step():
        with torch.no_grad(), autocast:
            model_output(model, z, torch.tensor([999.0]), cond, cfg_scale=7.0)

    t0 = time.perf_counter()
    if warmup:
        step()  # oneDNN primitives, allocator
    warmup_seconds = time.perf_counter() - t0 if warmup else None
    run = run_with_peak_memory(step)
    return dict(run, latent=[4, t, h, w], tokens=t * (h // 2 + h % 2) * (w // 2 + w % 2), warmup_seconds=warmup_seconds,
                sample_seconds_extrapolated=STEPS * run["seconds"])


def child_vae(resolution: str, aspect_ratio: str, frames: int, dtype: str) -> dict:
    from opensora_lite.config import load_config
    from opensora_lite.registry import MODELS, build_module

    (height, width), (t, h, w) = latent_shape(resolution, aspect_ratio, frames)
    with torch.device("meta"):
        vae = build_module(load_config("configs/opensora/t2v_v1_2.py").vae, MODELS)
    vae = random_fill(vae)
    z = torch.randn(1, 4, t, h, w)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")

    def decode():
        with torch.no_grad(), autocast:
            out = vae.decode(z, num_frames=frames)
        assert out.shape[2:] == (frames, height, width), out.shape

    return dict(run_with_peak_memory(decode), video=[frames, height, width])


def main(argv=None):
    from benchmarks.common import measure_in_child

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", nargs="+")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        fn = dict(t5=lambda: child_t5(int(rest[0])),
                  stdit=lambda: child_stdit(rest[0], rest[1], int(rest[2]), rest[3], rest[4] == "warmup"),
                  vae=lambda: child_vae(rest[0], rest[1], int(rest[2]), rest[3]))[kind]
        print(json.dumps(fn()))
        return
    s = QUICK if args.quick else FULL
    where = [s["resolution"], s["aspect_ratio"], str(s["frames"])]
    results = dict(machine=machine_info(), settings=s, steps=STEPS, prompt=PROMPT)
    results["t5"] = measure_in_child(__file__, ["t5", str(s["t5_layers"])])
    print("t5", json.dumps(results["t5"]), flush=True)
    for dtype in s["dtypes"]:
        for phase in ("stdit", "vae"):
            extra = ["warmup" if s["warmup"] else "once"] if phase == "stdit" else []
            results[f"{phase}_{dtype}"] = measure_in_child(__file__, [phase, *where, dtype, *extra])
            print(phase, dtype, json.dumps(results[f"{phase}_{dtype}"]), flush=True)
    rows = []
    for dtype in s["dtypes"]:
        st, va = results[f"stdit_{dtype}"], results[f"vae_{dtype}"]
        rows.append([dtype, st.get("seconds"), st.get("sample_seconds_extrapolated"), st.get("peak_mib"),
                     va.get("seconds"), va.get("peak_mib")])
    print(fmt_table(["dtype", "1 step s", f"{STEPS} steps s (extrapolated)", "STDiT peak MiB", "VAE decode s",
                     "VAE peak MiB"], rows))
    t5 = results["t5"]
    print(f"T5 ({s['t5_layers']} layers, bf16): encode {t5.get('seconds', float('nan')):.1f} s, peak "
          f"{t5.get('peak_mib', float('nan')):.0f} MiB; RSS loaded {t5.get('rss_loaded_mib', float('nan')):.0f} "
          f"-> freed {t5.get('rss_after_free_mib', float('nan')):.0f} MiB")
    print(save_json("bench_opensora_t2v", results, quick=args.quick, out=args.out))


if __name__ == "__main__":
    main()
