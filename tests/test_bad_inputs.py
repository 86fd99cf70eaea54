"""Bad input everywhere: every case is ONE line on stderr ("error: ..."), exit code 2, never a traceback.

The table runs each tool's ``main`` in-process through ``run_cli`` (as its ``__main__`` does); a few cases
run as real subprocesses to prove the exit code end to end. A fuzz test feeds random and truncated bytes
as videos to VideoClipDataset. Removing any of the checks named in the table's comments makes its case
fail: it then ends in a traceback (asserted absent), exit code 0, or a message without the expected text.
"""
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from opensora_lite.cli import run_cli
from opensora_lite.config import load_config
from opensora_lite.data import video_read, video_write
from opensora_lite.data.datasets import VideoClipDataset
from opensora_lite.errors import DataError
from opensora_lite.registry import MODELS, build_module
from opensora_lite.storage import save_checkpoint

from helpers import LOG_LINE, ROOT, TINY_INFERENCE, TINY_VAE, load_tool, write_config, write_latent_cache

# Variants of the tiny inference config: name -> (text replaced, replacement).
INFERENCE_VARIANTS = {
    "heads": ("num_heads=2", "num_heads=3"),
    "hidden_str": ("hidden_size=32", "hidden_size='32'"),
    "depth_float": ("depth=1", "depth=1.5"),
    "img_17": ("image_size = (16, 16)", "image_size = (17, 17)"),
    "img_0": ("image_size = (16, 16)", "image_size = (0, 16)"),
    "patch_t2": ("patch_size=(1, 2, 2)", "patch_size=(2, 2, 2)"),
    "model_type": ('type="STDiT"', 'type="STDiT-Q"'),
    "model_key": ("depth=1,", "depth=1, deepth=2,"),
    "sched_type": ('type="rflow"', 'type="rflw"'),
    "sched_steps": ("num_sampling_steps=2", "num_sampling_steps=0"),
    "sched_method": ("num_sampling_steps=2", "num_sampling_steps=2, sample_method='gauss'"),
    "no_vae": ("vae = dict(", "vae_ = dict("),
    "fps0": ("fps=4", "fps=0"),
    "syntax": ("num_classes = 3", "num_classes = (3"),
    "base": ("num_classes = 3", "_base_ = ['./missing.py']\nnum_classes = 3"),
}


TOOLS = {name: load_tool(name) for name in ("generate", "train", "train_vae", "vae_recon", "make_shapes")}


pytestmark = pytest.mark.usefixtures("in_process_group")  # train() runs in this process


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict:
    """Every file the table refers to, by placeholder name."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    p = dict(tmp=str(tmp))
    infer = tmp / "infer.py"
    infer.write_text(TINY_INFERENCE)
    p["infer"] = str(infer)
    for name, (old, new) in INFERENCE_VARIANTS.items():
        assert old in TINY_INFERENCE, name
        (tmp / f"infer_{name}.py").write_text(TINY_INFERENCE.replace(old, new))
        p[f"infer_{name}"] = str(tmp / f"infer_{name}.py")

    cache = write_latent_cache(tmp / "latents.safetensors")
    train = write_config(tmp, tmp / "runs" / "default", cache, max_steps=2)
    p["train"] = str(train)
    text = train.read_text()
    for name, new_text in {
        "train_key": text.replace("train = {", "train = {'bogus': 1, "),
        "train_cache": text.replace(str(cache), str(tmp / "missing.safetensors")),
        "train_dataset": text.replace("LatentCacheDataset", "LatentCacheDatasett"),
        "train_init": text + f"ckpt = dict(init={str(tmp / 'missing.pt')!r})\n",
    }.items():
        (tmp / f"{name}.py").write_text(new_text)
        p[name] = str(tmp / f"{name}.py")
    vae_train = tmp / "vae_train.py"
    vae_train.write_text(TINY_VAE + f"dataset = dict(type='VideoClipDataset', source={str(tmp / 'none.csv')!r})\n"
                         f"vae_train = dict(outputs={str(tmp / 'runs' / 'vae')!r}, max_steps=1, lr=1e-3)\n")
    p["vae_train"] = str(vae_train)
    for name, rows, buckets in (("bucket_res", "clip.mp4", '{"100p": {1: (1.0, 2)}}'),
                                ("bucket_batch", "clip.mp4", '{"16px": {1: (1.0, 0)}}'),
                                ("csv_missing", "nope.mp4", '{"16px": {1: (1.0, 2)}}')):
        (tmp / f"{name}.csv").write_text(f"path,label\nclip.mp4,0\n{rows},1\n")
        (tmp / f"{name}.py").write_text(TINY_INFERENCE + f"""
dataset = dict(type="VideoClipDataset", source={str(tmp / f"{name}.csv")!r}, num_frames=5, size=(16, 16))
bucket_config = {buckets}
train = dict(plugin="ddp", precision="fp32", seed=0, batch_size=2, max_steps=1, lr=1e-3, warmup_steps=0)
""")
        p[name] = str(tmp / f"{name}.py")
    (tmp / "no_vae.py").write_text("model = dict(type='STDiT')\n")
    p["no_vae"] = str(tmp / "no_vae.py")

    cfg = load_config(p["infer"])
    torch.manual_seed(0)
    for name, module in (("model", build_module(cfg.model, MODELS)), ("vae", build_module(cfg.vae, MODELS)),
                         ("wider", build_module(dict(cfg.model, hidden_size=64), MODELS))):
        save_checkpoint(module, tmp / f"{name}.safetensors")
        p[name] = str(tmp / f"{name}.safetensors")
    data = (tmp / "model.safetensors").read_bytes()
    (tmp / "truncated.safetensors").write_bytes(data[: len(data) // 3])
    p["truncated"] = str(tmp / "truncated.safetensors")

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp / "pwned"), "w"))

    torch.save({"w": Payload()}, tmp / "evil.pt")
    p["evil"] = str(tmp / "evil.pt")
    (tmp / "weights.npz").write_bytes(b"x")
    p["npz"] = str(tmp / "weights.npz")
    (tmp / "a_dir.safetensors").mkdir()
    p["dir"] = str(tmp / "a_dir.safetensors")
    (tmp / "a_file").write_text("x")
    p["file"] = str(tmp / "a_file")
    (tmp / "empty").mkdir()
    p["empty"] = str(tmp / "empty")
    frames = np.stack([np.full((16, 16, 3), 20 * t, np.uint8) for t in range(6)])  # (T, H, W, 3)
    video_write.write_video(tmp / "clip.mp4", frames, fps=8)
    p["clip"] = str(tmp / "clip.mp4")
    (tmp / "broken.mp4").write_bytes(b"not a video")
    p["broken"] = str(tmp / "broken.mp4")
    readonly = tmp / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    p["readonly"] = str(readonly / "out")
    yield p
    readonly.chmod(0o755)
    assert not (tmp / "pwned").exists()


def _case(tool, argv, expect, *marks):
    return pytest.param(tool, argv, expect, marks=marks)


AS_ROOT = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
HAS_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
RI = "--random-init"

# (tool, argv with {placeholders} of the `paths` fixture, text the one error line must hold)
CASES = {
    # --- config files and overrides (config.load_config, config.parse_overrides)
    "config missing": _case("generate", ["{tmp}/nope.py", RI], "does not exist"),
    "config is a directory": _case("generate", ["{tmp}", RI], "is a directory"),
    "config syntax error": _case("generate", ["{infer_syntax}", RI], "SyntaxError"),
    "config missing _base_": _case("generate", ["{infer_base}", RI], "cannot load config"),
    "override without value": _case("train", ["{train}", "--train.max_steps"], "overrides are '--key value' pairs"),
    "override of an unknown key": _case("train", ["{train}", "--train.max_step", "3"], "['max_step']"),
    "override of an unknown top-level key": _case("train", ["{train}", "--modle.depth", "3"], "has no key 'modle'"),
    "unknown train key": _case("train", ["{train_key}"], "unknown key(s) ['bogus'] in 'train'"),
    # --- registry: unknown names, unknown keys, wrong types (registry._check_keys / _check_type)
    "unknown model type": _case("generate", ["{infer_model_type}", RI], "unknown model type 'STDiT-Q'"),
    "unknown model key": _case("generate", ["{infer_model_key}", RI], "unknown key(s) ['deepth']"),
    "unknown scheduler type": _case("generate", ["{infer_sched_type}", RI], "unknown scheduler type 'rflw'"),
    "unknown scheduler option": _case("generate", ["{infer_sched_method}", RI], "sample_method 'gauss'"),
    "unknown dataset type": _case("train", ["{train_dataset}"], "unknown dataset type 'LatentCacheDatasett'"),
    "hidden size as a string": _case("generate", ["{infer_hidden_str}", RI], "'hidden_size' of type 'STDiT' must be an int"),
    "depth as a float": _case("generate", ["{infer_depth_float}", RI], "'depth' of type 'STDiT' must be an int"),
    # --- model / VAE geometry (STDiT._check_config, generate.latent_shape)
    "hidden size not divisible by heads": _case("generate", ["{infer_heads}", RI], "num_heads 3"),
    "H/W not multiples of the VAE factor": _case("generate", ["{infer_img_17}", RI], "nearest size is (16, 16)"),
    "zero image size": _case("generate", ["{infer_img_0}", RI], "image_size (0, 16)"),
    "frames unsupported": _case("generate", ["{infer_patch_t2}", RI, "--frames", "4"], "temporal patch 2"),
    "zero sampling steps in config": _case("generate", ["{infer_sched_steps}", RI], "num_sampling_steps must be >= 1"),
    "config without vae": _case("generate", ["{infer_no_vae}", RI], "no 'vae' entry"),
    "zero fps in config": _case("generate", ["{infer_fps0}", RI, "--save-dir", "{tmp}/out_fps"], "inference.fps"),
    # --- inference flags (inference.check_args, generate.generate)
    "class not an int": _case("generate", ["{infer}", RI, "--class", "cat"], "invalid int value: 'cat'"),
    "class out of range": _case("generate", ["{infer}", RI, "--class", "3"], "class id(s) [3] out of range"),
    "negative class": _case("generate", ["{infer}", RI, "--class", "-1"], "class id(s) [-1] out of range"),
    "zero frames": _case("generate", ["{infer}", RI, "--frames", "0"], "--frames must be a positive integer"),
    "zero samples": _case("generate", ["{infer}", RI, "--num-samples", "0"], "--num-samples must be >= 1"),
    "negative steps": _case("generate", ["{infer}", RI, "--steps", "-2"], "--steps must be >= 1"),
    "zero fps flag": _case("generate", ["{infer}", RI, "--fps", "0"], "--fps must be >= 1"),
    "cfg scale not a number": _case("generate", ["{infer}", RI, "--cfg-scale", "high"], "invalid float value"),
    # NaN and inf used to write an all-black video with exit code 0
    "cfg scale nan": _case("generate", ["{infer}", RI, "--cfg-scale", "nan"], "cfg_scale must be a finite number"),
    "cfg scale inf": _case("generate", ["{infer}", RI, "--cfg-scale", "inf"], "cfg_scale must be a finite number"),
    "bad dtype": _case("generate", ["{infer}", RI, "--dtype", "fp16"], "invalid choice: 'fp16'"),
    "bad device": _case("generate", ["{infer}", RI, "--device", "tpu"], "--device must be cpu or cuda"),
    "cuda without a GPU": _case("generate", ["{infer}", RI, "--device", "cuda"], "no CUDA device", HAS_CUDA),
    "unknown sampler": _case("generate", ["{infer}", RI, "--sampler", "ddim"], "unknown sampler 'ddim'"),
    "save dir is a file": _case("generate", ["{infer}", RI, "--save-dir", "{file}"], "is a file, not a folder"),
    "save dir cannot be created": _case("generate", ["{infer}", RI, "--save-dir", "/proc/1/out"],
                                        "cannot create --save-dir"),
    "save dir read-only": _case("generate", ["{infer}", RI, "--save-dir", "{readonly}"], "--save-dir", AS_ROOT),
    # --- weights (generate._weights, checkpoint.load_checkpoint)
    "no weights": _case("generate", ["{infer}"], "no model weights"),
    "weights missing": _case("generate", ["{infer}", "--ckpt", "{tmp}/nope.safetensors"], "model weights not found"),
    "weights are a directory": _case("generate", ["{infer}", "--ckpt", "{dir}"], "is a directory"),
    "weights of unknown format": _case("generate", ["{infer}", "--ckpt", "{npz}", "--vae-ckpt", "{vae}"],
                                       "unknown extension"),
    "weights truncated": _case("generate", ["{infer}", "--ckpt", "{truncated}", "--vae-ckpt", "{vae}"],
                               "truncated or corrupt"),
    "weights of another model": _case("generate", ["{infer}", "--ckpt", "{wider}", "--vae-ckpt", "{vae}"],
                                      "wrongly shaped"),
    "weights run code": _case("generate", ["{infer}", "--ckpt", "{evil}", "--vae-ckpt", "{vae}"], "refusing to load"),
    "VAE weights are the model's": _case("generate", ["{infer}", "--ckpt", "{model}", "--vae-ckpt", "{model}"],
                                         "missing key(s)"),
    # --- training settings (train_loop.train_settings / prepare_run_dir / build_data, distributed.make_booster)
    "zero batch size": _case("train", ["{train}", "--train.batch_size", "0"], "train.batch_size must be a positive integer"),
    "float batch size": _case("train", ["{train}", "--train.batch_size", "8.0"], "train.batch_size must be a positive integer"),
    "negative lr": _case("train", ["{train}", "--train.lr", "-1"], "train.lr must be a positive number"),
    "lr not a number": _case("train", ["{train}", "--train.lr", "fast"], "train.lr must be a positive number"),
    "ema decay above 1": _case("train", ["{train}", "--train.ema_decay", "2.0"], "train.ema_decay must be a number in [0, 1)"),
    "negative warmup": _case("train", ["{train}", "--train.warmup_steps", "-3"], "train.warmup_steps must be an integer >= 0"),
    "unknown lr schedule": _case("train", ["{train}", "--train.lr_schedule", "linear"],
                                 "train.lr_schedule must be one of ('constant', 'cosine')"),
    "min_lr above lr": _case("train", ["{train}", "--train.lr_schedule", "cosine", "--train.min_lr", "1"],
                             "train.min_lr 1 is above train.lr"),
    "seed not an int": _case("train", ["{train}", "--train.seed", "x"], "train.seed must be an integer >= 0"),
    "grad clip not a number": _case("train", ["{train}", "--train.grad_clip", "a"], "train.grad_clip must be a number"),
    "bad plugin flag": _case("train", ["{train}", "--plugin", "zero3"], "invalid choice: 'zero3'"),
    "compile not a bool": _case("train", ["{train}", "--train.compile", "yes"], "train.compile must be True or False"),
    "bad plugin in config": _case("train", ["{train}", "--train.plugin", "zero3"], "unknown plugin 'zero3'"),
    "bad precision in config": _case("train", ["{train}", "--train.precision", "fp16"], "unknown precision 'fp16'"),
    "latent cache missing": _case("train", ["{train_cache}"], "no such latent cache file"),
    "init weights missing": _case("train", ["{train_init}"], "missing.pt does not exist"),
    "resume from nothing": _case("train", ["{train}", "--resume", "{tmp}/nope"], "not a complete training checkpoint"),
    "outputs is a file": _case("train", ["{train}", "--outputs", "{file}"], "is a file"),
    # --- your own videos in buckets (buckets.check_bucket_config, VideoClipDataset.check_files_exist)
    "bucket of an unknown resolution": _case("train", ["{bucket_res}"], "unknown resolution '100p'"),
    "bucket batch size 0": _case("train", ["{bucket_batch}"], "batch size must be a positive int"),
    # it used to train on the rows that exist, with one warning per missing file
    "CSV row of a missing file": _case("train", ["{csv_missing}"], "1 of 2 clips name files that do not exist"),
    "aspect ratio 7:0": _case("generate", ["{infer}", RI, "--resolution", "64px", "--aspect-ratio", "7:0"],
                              "unknown aspect ratio '7:0'"),
    # the ratio is named first, even without a resolution
    "aspect ratio 7:0 alone": _case("generate", ["{infer}", RI, "--aspect-ratio", "7:0"], "unknown aspect ratio '7:0'"),
    # --- VAE training (vae_train_loop.vae_train_settings)
    "unknown VAE stage": _case("train_vae", ["{vae_train}", "--vae_train.stage", "3d"], "vae_train.stage must be one of"),
    "unknown VAE loss": _case("train_vae", ["{vae_train}", "--vae_train.recon_loss", "huber"], "vae_train.recon_loss"),
    "zero VAE lr": _case("train_vae", ["{vae_train}", "--vae_train.lr", "0"], "vae_train.lr must be a positive number"),
    "VAE init missing": _case("train_vae", ["{vae_train}", "--vae_init", "{tmp}/nope.safetensors"], "does not exist"),
    # --- VAE reconstruction (vae_recon.parse_args / find_videos / main)
    "recon zero size": _case("vae_recon", ["{infer}", "--input", "{clip}", "--size", "0", "16"], "--size must be two positive"),
    "recon zero frames": _case("vae_recon", ["{infer}", "--input", "{clip}", "--frames", "0"], "--frames must be >= 1"),
    "recon bad backend": _case("vae_recon", ["{infer}", "--input", "{clip}", "--backend", "ffmpeg"], "invalid choice"),
    "recon empty folder": _case("vae_recon", ["{infer}", "--input", "{empty}"], "holds no videos"),
    "recon nothing readable": _case("vae_recon", ["{infer}", "--input", "{broken}", "--save-dir", "{tmp}/r1", "--no-progress"],
                                    "none of the 1 input(s) could be reconstructed"),
    "recon H/W not multiples of the VAE factor": _case(
        "vae_recon", ["{infer}", "--input", "{clip}", "--size", "15", "15", "--save-dir", "{tmp}/r2", "--no-progress"],
        "none of the 1 input(s) could be reconstructed"),
    "recon config without vae": _case("vae_recon", ["{no_vae}", "--input", "{clip}", "--save-dir", "{tmp}/r3"],
                                      "has no `vae` entry"),
    "recon weights of another model": _case("vae_recon", ["{infer}", "--input", "{clip}", "--ckpt", "{model}",
                                                          "--save-dir", "{tmp}/r4"], "missing key(s)"),
    # --- dataset generation (tools/make_shapes.parse_args, shapes.make_shapes_dataset)
    "shapes zero clips": _case("make_shapes", ["--out", "{tmp}/s", "--clips-per-class", "0"], "clips_per_class must be >= 1"),
    "shapes clips not an int": _case("make_shapes", ["--out", "{tmp}/s", "--clips-per-class", "x"], "invalid int value"),
    "shapes no --out": _case("make_shapes", ["--clips-per-class", "1"], "the following arguments are required: --out"),
    "shapes frame too small": _case("make_shapes", ["--out", "{tmp}/s", "--size", "8"], "too small"),
    "shapes zero frames": _case("make_shapes", ["--out", "{tmp}/s", "--frames", "0"], "--frames and --size must be >= 1"),
    "shapes crf out of range": _case("make_shapes", ["--out", "{tmp}/s", "--crf", "99"], "--crf must be in 0..51"),
    "shapes zero fps": _case("make_shapes", ["--out", "{tmp}/s", "--fps", "0"], "--fps must be > 0"),
    "shapes out is a file": _case("make_shapes", ["--out", "{file}"], "is a file, not a folder"),
}


@pytest.mark.parametrize("tool,argv,expect", CASES.values(), ids=list(CASES))
def test_bad_input_is_one_line_and_exit_code_2(tool, argv, expect, paths, capsys, request):
    argv = [a.format(**paths) for a in argv]
    if tool == "train" and "--outputs" not in argv:  # a fresh run folder per case
        argv += ["--outputs", f"{paths['tmp']}/runs/{request.node.callspec.id}"]
    code = run_cli(TOOLS[tool].main, argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert expect in lines[0], lines[0]
    if tool == "make_shapes":  # nothing was written for a refused dataset
        assert not Path(paths["tmp"], "s").exists()


def test_the_table_is_wide():
    assert len(CASES) >= 30 and len({c.values[0] for c in CASES.values()}) == 5


def test_exit_code_2_end_to_end(paths):
    """Real processes (as a user runs them): stderr is exactly one line, the exit code is 2."""
    commands = {
        "generate": ([f"{paths['tmp']}/nope.py"], "does not exist"),
        "train": ([paths["train"], "--bogus", "1"], "has no key 'bogus'"),
        "vae_recon": ([paths["infer"], "--input", paths["clip"], "--frames", "0"], "--frames must be >= 1"),
        "make_shapes": (["--out", f"{paths['tmp']}/s", "--size", "abc"], "invalid int value: 'abc'"),
    }
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "tools" / f"{name}.py"), *argv], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (argv, _) in commands.items()}  # in parallel: each pays its own imports
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (name, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and commands[name][1] in err, (name, err)
        assert "Traceback" not in err and out == "", (name, out)


##################################################################################
#                         Fuzz: hostile bytes as video files                     #
##################################################################################

def _fuzz_files(folder: Path, seed: int = 0) -> tuple[dict, bytes]:
    """40 hostile files (random, truncated, bit-flipped, valid header + junk) and one good clip."""
    rng = random.Random(seed)
    frames = np.stack([np.full((16, 16, 3), 25 * t, np.uint8) for t in range(8)])  # (T, H, W, 3)
    good = video_write.write_video(folder / "good.mp4", frames, fps=8)
    data = good.read_bytes()
    files = {}
    for i in range(40):
        kind = ("random", "truncated", "flipped", "junk-after-header")[i % 4]
        if kind == "random":
            blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
        elif kind == "truncated":
            blob = data[: rng.randint(1, len(data) - 1)]
        elif kind == "flipped":
            blob = bytearray(data)
            for _ in range(rng.randint(1, 40)):
                blob[rng.randrange(len(blob))] = rng.getrandbits(8)
            blob = bytes(blob)
        else:
            blob = data[:48] + bytes(rng.getrandbits(8) for _ in range(500))
        (folder / f"f{i:02d}.mp4").write_bytes(blob)
        files[f"f{i:02d}.mp4"] = kind
    (folder / "empty.mp4").write_bytes(b"")
    files["empty.mp4"] = "empty"
    (folder / "a_folder.mp4").mkdir()
    files["a_folder.mp4"] = "folder"
    files["missing.mp4"] = "missing"
    return files, data


@pytest.mark.parametrize("backend", ["av", "decord"])
def test_fuzzed_video_files_are_skipped_and_counted_never_a_crash(backend, tmp_path, caplog):
    # Protection: VideoClipDataset turns every decoder failure into a DataError, marks the file bad and
    # replaces it; the reader raises DataError (never a raw PyAV/decord error, never a zero tensor).
    if backend == "decord":
        pytest.importorskip("decord")
    files, _ = _fuzz_files(tmp_path)
    names = sorted(files) + ["good.mp4"]
    (tmp_path / "list.csv").write_text("path,label\n" + "".join(f"{n},{i % 3}\n" for i, n in enumerate(names)))
    dataset = VideoClipDataset(tmp_path / "list.csv", num_frames=4, size=(8, 8), backend=backend, start="center")
    for index in range(len(dataset)):
        item = dataset[index]
        video = item["video"]
        assert video.shape == (3, 4, 8, 8) and torch.isfinite(video).all() and video.abs().max() <= 1
        assert str(dataset.paths[item["index"]]) not in dataset.bad_files
    bad = {Path(p).name for p in dataset.bad_files}
    never_readable = {n for n, kind in files.items() if kind in ("random", "empty", "folder", "missing")}
    assert never_readable <= bad and "good.mp4" not in bad
    for name in set(files) - bad:  # what was not counted as bad really decodes (e.g. a cut after the frames used)
        video_read.read_video(tmp_path / name, 4, backend=backend)
    assert len(caplog.records) >= len(bad)  # each bad file is reported
    # Nothing readable at all: one clear DataError, not a crash or an endless search.
    (tmp_path / "bad.csv").write_text("path,label\n" + "".join(f"{n},0\n" for n in sorted(never_readable)))
    with pytest.raises(DataError, match=r"every one of the \d+ video files is unreadable"):
        VideoClipDataset(tmp_path / "bad.csv", num_frames=4, backend=backend)[0]
