"""Reliability and security: hostile checkpoints, crash safety, numerical and distributed faults, no overwrites.

Training runs in-process (``train(cfg)``) wherever it can: a subprocess pays ~12 s of colossalai import.
Each test says in a comment which protection it proves, i.e. what would make it fail if removed.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from opensora_lite.cli import run_cli
from opensora_lite.config import load_config
from opensora_lite.data.sampler import GlobalBatchSampler
from opensora_lite.data.video_write import write_video
from opensora_lite.errors import CheckpointError
from opensora_lite.registry import MODELS, SCHEDULERS, build_module
from opensora_lite.schedulers.rectified_flow import RectifiedFlow
from opensora_lite.storage import save_checkpoint
from opensora_lite.training import run_checkpoint as rc
from opensora_lite.training.run_checkpoint import (
    complete_checkpoints,
    latest_checkpoint,
    load_run_checkpoint,
    save_run_checkpoint,
)

from helpers import TINY_INFERENCE, TINY_VAE, load_tool, run, run_train, write_config, write_latent_cache

INFERENCE, TRAIN, TRAIN_VAE, VAE_RECON, MAKE_SHAPES = (
    load_tool(n) for n in ("generate", "train", "train_vae", "vae_recon", "make_shapes"))


class WritesAMarkerFile:
    """A pickle payload: unpickling it calls open(marker, "w"), i.e. runs code chosen by the file's author."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"weight": torch.zeros(2), "payload": WritesAMarkerFile(marker)}, path)
    return path


pytestmark = pytest.mark.usefixtures("in_process_group")  # train() runs in this process


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny inference config and the files the hostile-checkpoint tests feed it."""
    root = tmp_path_factory.mktemp("tiny")
    config = root / "tiny_inference.py"
    config.write_text(TINY_INFERENCE)
    cfg = load_config(str(config))
    torch.manual_seed(0)
    model_ckpt, vae_ckpt = root / "model.safetensors", root / "vae.safetensors"
    save_checkpoint(build_module(cfg.model, MODELS), model_ckpt)
    save_checkpoint(build_module(cfg.vae, MODELS), vae_ckpt)
    return dict(root=root, config=config, model=model_ckpt, vae=vae_ckpt)


##################################################################################
#                         1. Hostile and broken checkpoints                      #
##################################################################################

def _readable_clip(root: Path) -> Path:
    """A real 4-frame clip: vae_recon checks its inputs before it loads any weights."""
    path = root / "clip.mp4"
    write_video(path, np.zeros((4, 16, 16, 3), np.uint8), overwrite=True)
    return path


def _train_vae_config(root: Path) -> Path:
    path = root / "tiny_vae_train.py"
    path.write_text(TINY_VAE + f"\ndataset = dict(type='VideoClipDataset', source={str(root / 'none.csv')!r})\n"
                    f"vae_train = dict(outputs={str(root / 'vae_run')!r}, max_steps=1)\n")
    return path


def _hostile_resume_folder(root: Path, marker: Path) -> Path:
    """A checkpoint folder that looks complete but whose model.safetensors is a pickle with a payload."""
    folder = root / "run" / "checkpoints" / "step_00000002"
    folder.mkdir(parents=True)
    for name in ("ema", "optimizer"):
        save_file({"w": torch.zeros(1)}, str(folder / f"{name}.safetensors"))
    hostile_checkpoint(folder / "model.safetensors", marker)
    (folder / "meta.json").write_text(json.dumps(dict(step=2)))
    return folder


# Every path through which a user-given file is loaded as weights.
LOADING_PATHS = {
    "inference --ckpt": lambda t, evil: (INFERENCE, [t["config"], "--ckpt", evil, "--vae-ckpt", t["vae"]]),
    "inference --vae-ckpt": lambda t, evil: (INFERENCE, [t["config"], "--ckpt", t["model"], "--vae-ckpt", evil]),
    "inference --ckpt .pth": lambda t, evil: (INFERENCE, [t["config"], "--ckpt", shutil.copy(evil, evil.with_suffix(
        ".pth")), "--vae-ckpt", t["vae"]]),
    "inference --ckpt pickle named .safetensors": lambda t, evil: (INFERENCE, [
        t["config"], "--ckpt", shutil.copy(evil, evil.with_suffix(".safetensors")), "--vae-ckpt", t["vae"]]),
    "train ckpt.init": lambda t, evil: (TRAIN, [_train_config(t["root"], ckpt=dict(init=str(evil))),
                                                "--outputs", t["root"] / "run_init"]),
    "train --resume": lambda t, evil: (TRAIN, [_train_config(t["root"]), "--outputs", t["root"] / "run_resume",
                                               "--resume",
                                               _hostile_resume_folder(t["root"], Path(str(evil) + ".marker"))]),
    "train_vae --vae_init": lambda t, evil: (TRAIN_VAE, [_train_vae_config(t["root"]), "--vae_init", evil]),
    "vae_recon --ckpt": lambda t, evil: (VAE_RECON, [t["config"], "--input", _readable_clip(t["root"]), "--ckpt",
                                                     evil, "--save-dir", t["root"] / "recon"]),
}


def _train_config(root: Path, **extra) -> Path:
    cache = root / "latents.safetensors"
    if not cache.exists():
        write_latent_cache(cache)
    config = write_config(root, root / "run_default", cache, max_steps=2)
    if extra:
        config.write_text(config.read_text() + "".join(f"{k} = {v!r}\n" for k, v in extra.items()))
    return config


@pytest.mark.parametrize("path", LOADING_PATHS)
def test_a_pickle_that_runs_code_is_refused_by_every_loading_path(path, tiny, tmp_path, capsys):
    # Protection: weights-only unpickling (checkpoint._load_pickle) and safetensors-only resume folders.
    # With torch.load(weights_only=False) anywhere on these paths the payload runs and the marker appears.
    marker = tmp_path / "pwned"
    t = dict(tiny, root=tmp_path)
    evil = hostile_checkpoint(tmp_path / "evil.pt", marker)
    tool, argv = LOADING_PATHS[path](t, evil)
    code, _, err = run(tool, capsys, *argv)
    assert code == 2 and len(err) == 1, err
    assert re.search(r"refusing to load .*evil\.pth?:|cannot read .*(evil\.safetensors|model\.safetensors)",
                     err[0]), err
    assert not marker.exists() and not Path(str(evil) + ".marker").exists()


def test_a_pickle_in_a_diffusers_vae_folder_is_refused(tmp_path):
    # Protection: diffusers loads .bin weights with weights_only=True; a pickling load would create the marker.
    from diffusers import AutoencoderKL

    from opensora_lite.models.vae.kl2d import build_autoencoder_kl

    AutoencoderKL(down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
                  block_out_channels=(8,), layers_per_block=1, norm_num_groups=4).save_config(tmp_path)
    marker = tmp_path / "pwned"
    hostile_checkpoint(tmp_path / "diffusion_pytorch_model.bin", marker)
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.bin"):
        build_autoencoder_kl(str(tmp_path))
    assert not marker.exists()
    # Control: the payload is live, so the assertions above can fail.
    torch.load(tmp_path / "diffusion_pytorch_model.bin", weights_only=False)
    assert marker.exists()


def test_truncated_or_corrupt_safetensors_give_one_line_naming_the_file(tiny, tmp_path, capsys):
    # Protection: load_state_dict / load_run_checkpoint turn SafetensorError into a CheckpointError naming
    # the file; without it the CLI prints a SafetensorError traceback (run() asserts there is none).
    data = tiny["model"].read_bytes()
    truncated, garbage = tmp_path / "truncated.safetensors", tmp_path / "garbage.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage.write_bytes(b"\xff" * 8 + data[8:])  # a header length of 2**64 - 1
    for bad in (truncated, garbage):
        code, _, err = run(INFERENCE, capsys, tiny["config"], "--ckpt", bad, "--vae-ckpt", tiny["vae"])
        assert code == 2 and len(err) == 1 and str(bad) in err[0] and "truncated or corrupt" in err[0], err
    # A training checkpoint folder with a cut model file: the error names that file.
    folder = tmp_path / "run" / "checkpoints" / "step_00000002"
    folder.mkdir(parents=True)
    for name in ("model", "ema", "optimizer"):
        (folder / f"{name}.safetensors").write_bytes(data[: len(data) // 2] if name == "model" else data)
    (folder / "meta.json").write_text(json.dumps(dict(step=2)))
    with pytest.raises(CheckpointError, match=r"step_00000002/model\.safetensors"):
        load_run_checkpoint(folder)


def test_a_checkpoint_of_another_architecture_names_keys_and_shapes(tiny, tmp_path, capsys):
    # Protection: load_checkpoint's shape comparison and config hint; without them torch's load_state_dict
    # raises a multi-line RuntimeError traceback.
    cfg = load_config(str(tiny["config"]))
    wider = tmp_path / "wider.safetensors"
    save_checkpoint(build_module(dict(cfg.model, hidden_size=64), MODELS), wider)
    code, _, err = run(INFERENCE, capsys, tiny["config"], "--ckpt", wider, "--vae-ckpt", tiny["vae"])
    assert code == 2 and len(err) == 1, err
    assert str(wider) in err[0]
    assert "x_embedder.proj.weight: expected (32, 4, 1, 2, 2) found (64, 4, 1, 2, 2)" in err[0]
    assert "hidden_size=64 vs 32" in err[0]
    other_vae = tmp_path / "other_vae.safetensors"
    save_checkpoint(build_module(dict(cfg.vae, vae_temporal=dict(cfg.vae.vae_temporal, filters=16)), MODELS),
                    other_vae)
    code, _, err = run(INFERENCE, capsys, tiny["config"], "--ckpt", tiny["model"], "--vae-ckpt", other_vae)
    assert code == 2 and len(err) == 1 and "wrongly shaped" in err[0], err
    assert re.search(r"temporal_vae\.\S+: expected \(\d+(, \d+)*\) found \(\d+(, \d+)*\)", err[0]), err


##################################################################################
#                     2. Crash safety of checkpoint folders                      #
##################################################################################

def _tensors(value: float) -> dict:
    return {name: {"w": torch.full((256,), value)} for name in ("model", "ema", "optimizer")}


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_write_leaves_the_previous_checkpoint_and_nothing_that_looks_complete(tmp_path, monkeypatch):
    # Protection: save_run_checkpoint writes into step_X.tmp and renames only when every file is written.
    # Writing in place would leave step_00000004 with model.safetensors (and no ema) after the failure.
    good = save_run_checkpoint(tmp_path, 2, _tensors(1.0), {})
    before = _snapshot(good)
    calls = []

    def disk_full_on_the_second_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        save_file(tensors, filename, metadata)

    monkeypatch.setattr(rc, "save_file", disk_full_on_the_second_file)
    with pytest.raises(OSError, match="No space left"):
        save_run_checkpoint(tmp_path, 4, _tensors(2.0), {})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002"]
    assert latest_checkpoint(tmp_path) == good and _snapshot(good) == before


@pytest.mark.slow
def test_sigkill_during_a_write_leaves_an_ignored_tmp_folder(tmp_path):
    # A real SIGKILL: a forked child is killed after writing the first file of step 4. Protection: the
    # .tmp folder + rename; resume (latest_checkpoint) ignores the .tmp and picks step 2, and the next
    # save removes the leftover.
    good = save_run_checkpoint(tmp_path, 2, _tensors(1.0), {})
    ready = tmp_path / "first_file_written"
    pid = os.fork()
    if pid == 0:  # child: write step 4, hang after the first file until killed
        try:
            def first_file_then_hang(tensors, filename, metadata=None):
                save_file(tensors, filename, metadata)
                ready.touch()
                time.sleep(60)

            rc.save_file = first_file_then_hang
            save_run_checkpoint(tmp_path, 4, _tensors(2.0), {})
        finally:
            os._exit(1)
    deadline = time.time() + 30
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready.exists(), "the child never wrote its first file"
    left = tmp_path / "checkpoints" / "step_00000004.tmp"
    assert (left / "model.safetensors").is_file()  # the killed write left its partial folder ...
    assert not (tmp_path / "checkpoints" / "step_00000004").exists()  # ... but nothing that looks complete
    assert latest_checkpoint(tmp_path) == good
    assert load_run_checkpoint(good)[1]["step"] == 2
    save_run_checkpoint(tmp_path, 4, _tensors(2.0), {})  # the resumed run writes step 4 again
    assert not left.exists() and latest_checkpoint(tmp_path).name == "step_00000004"


def test_looking_for_the_latest_checkpoint_never_breaks_a_write_in_progress(tmp_path, monkeypatch):
    # Protection: complete_checkpoints / latest_checkpoint are read-only (only the writer removes .tmp
    # folders). When they deleted stale-looking .tmp folders, a monitoring script or a test polling
    # latest_checkpoint deleted the folder a live run was writing, and its save crashed (No such file).
    save_run_checkpoint(tmp_path, 2, _tensors(1.0), {})
    seen = []

    def a_reader_looks_between_two_files(tensors, filename, metadata=None):
        save_file(tensors, filename, metadata)
        seen.append(latest_checkpoint(tmp_path).name)

    monkeypatch.setattr(rc, "save_file", a_reader_looks_between_two_files)
    save_run_checkpoint(tmp_path, 4, _tensors(2.0), {})
    assert seen == ["step_00000002"] * 3 and latest_checkpoint(tmp_path).name == "step_00000004"


class Killed(BaseException):
    """Stands for a SIGKILL in the middle of a folder deletion (nothing after it runs in reality)."""


@pytest.mark.parametrize("when", ["rewriting the same step", "pruning old checkpoints"])
def test_a_kill_while_deleting_a_checkpoint_never_leaves_a_complete_looking_one(when, tmp_path, monkeypatch):
    # Protection: run_checkpoint._remove_checkpoint renames a folder to *.tmp before deleting it. With a
    # plain rmtree, a kill after the weights but before meta.json are deleted leaves a folder that resume
    # takes for complete: load_run_checkpoint below would then fail on it.
    save_run_checkpoint(tmp_path, 2, _tensors(1.0), {}, keep_last=0)
    save_run_checkpoint(tmp_path, 4, _tensors(2.0), {}, keep_last=0)
    real_rmtree = shutil.rmtree

    def dies_midway(path, *args, **kwargs):
        path = Path(path)
        complete = (path / "meta.json").is_file() and (path / "model.safetensors").is_file()
        if complete and path.name != "step_00000004.tmp":
            (path / "model.safetensors").unlink()  # rmtree got this far ...
            raise Killed  # ... when the process was killed
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(rc.shutil, "rmtree", dies_midway)
    with pytest.raises(Killed):
        if when == "rewriting the same step":
            save_run_checkpoint(tmp_path, 4, _tensors(3.0), {}, keep_last=0)
        else:
            save_run_checkpoint(tmp_path, 6, _tensors(3.0), {}, keep_last=1)
    monkeypatch.undo()
    found = complete_checkpoints(tmp_path)
    assert found, "no checkpoint left at all"
    for folder in found:  # every checkpoint that looks complete is complete
        assert {p.name for p in folder.iterdir()} == {"model.safetensors", "ema.safetensors",
                                                      "optimizer.safetensors", "meta.json"}, folder
        load_run_checkpoint(folder)


##################################################################################
#                 Training in-process: full disk and numerical faults            #
##################################################################################

class FaultyFlow(RectifiedFlow):
    """Rectified flow whose n-th training_losses call (1-based) gives NaN gradients with a finite loss."""

    def __init__(self, nan_grad_calls=(), **kwargs):
        super().__init__(**kwargs)
        self.nan_grad_calls, self.calls = tuple(nan_grad_calls), 0

    def training_losses(self, *args, **kwargs):
        out = super().training_losses(*args, **kwargs)
        self.calls += 1
        if self.calls in self.nan_grad_calls:  # value + 0, gradient 0 * inf = NaN
            out["loss"] = out["loss"] + 0.0 * torch.sqrt(out["loss"] - out["loss"])
        return out


SCHEDULERS.register_module(name="test_faulty_rflow", module=FaultyFlow, force=True)


def train_here(config: Path, resume=None, overwrite=False, **overrides):
    from opensora_lite.training.train_loop import train

    return train(load_config(str(config), overrides), config_path=str(config), resume=resume, overwrite=overwrite)


def write_cache(path: Path, nan_rows=()) -> Path:
    write_latent_cache(path)
    tensors = load_file(str(path))
    tensors["latents"][list(nan_rows)] = float("nan")
    save_file(tensors, str(path), metadata={"meta": json.dumps({})})
    return path


def test_a_full_disk_fails_the_save_cleanly_and_the_run_resumes(tmp_path, monkeypatch):
    # Protection: train_loop._save turns the OSError into a TrainingError (one line, exit 2) and
    # save_run_checkpoint removes the partial folder; without them a raw OSError escapes and/or
    # step_00000004(.tmp) stays behind next to step 2.
    from opensora_lite.training.train_loop import TrainingError

    run_dir = tmp_path / "run"
    config = write_config(tmp_path, run_dir, write_cache(tmp_path / "latents.safetensors"), max_steps=4)
    real_save_file, calls, snapshot = rc.save_file, [], {}

    def disk_fills_up(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 5:  # step 4: model.safetensors written, ema.safetensors fails
            snapshot.update(_snapshot(run_dir / "checkpoints" / "step_00000002"))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        real_save_file(tensors, filename, metadata)

    monkeypatch.setattr(rc, "save_file", disk_fills_up)
    with pytest.raises(TrainingError, match=r"step 4: could not write a checkpoint .*No space left on device.*"
                                            r"previous checkpoint is kept") as info:
        train_here(config)
    assert "\n" not in str(info.value)
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_00000002"]
    assert _snapshot(run_dir / "checkpoints" / "step_00000002") == snapshot
    assert not (run_dir / "run.json").exists()
    monkeypatch.undo()  # space freed: the same command resumes from step 2 and finishes
    assert train_here(config)["step"] == 4
    assert latest_checkpoint(run_dir).name == "step_00000004"


def test_non_finite_losses_are_skipped_and_counted(tmp_path):
    # Protection: the isfinite check in the train loop. Without it the NaN batch is back-propagated, the
    # weights become NaN and the run dies at its next checkpoint ("weights hold NaN") instead of finishing.
    run_dir, nan_row = tmp_path / "run", 5
    config = write_config(tmp_path, run_dir, write_cache(tmp_path / "latents.safetensors", [nan_row]),
                          max_steps=6, max_bad_steps=3)
    sampler = GlobalBatchSampler(24, 8, seed=0, num_steps=6)
    bad_steps = [step + 1 for step, batch in enumerate(sampler) if nan_row in batch]
    assert len(bad_steps) == 2  # once per epoch
    summary = train_here(config)
    assert summary["step"] == 6 and summary["skipped_steps"] == 2
    records = [json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["loss"] != r["loss"]] == bad_steps  # NaN != NaN
    ckpt, meta = load_run_checkpoint(latest_checkpoint(run_dir))
    assert meta["skipped_steps"] == 2
    assert all(torch.isfinite(v).all() for part in ckpt.values() for v in part.values() if v.is_floating_point())


def test_too_many_bad_steps_in_a_row_stop_the_run_with_a_clear_message(tmp_path):
    # Protection: train.max_bad_steps; without it a run on broken data "finishes" having learnt nothing.
    from opensora_lite.training.train_loop import TrainingError

    run_dir = tmp_path / "run"
    config = write_config(tmp_path, run_dir, write_cache(tmp_path / "latents.safetensors", range(24)),
                          max_steps=6, max_bad_steps=3, ckpt_every=6)
    with pytest.raises(TrainingError, match=r"3 non-finite losses in a row at step 3: stopping; lower train.lr"):
        train_here(config)
    assert not (run_dir / "run.json").exists() and latest_checkpoint(run_dir) is None


def test_nan_weights_never_overwrite_a_good_checkpoint(tmp_path):
    # Protection: the finite-weights check of train_loop._save. Step 4's update has NaN gradients (the loss
    # is finite, so the skip does not catch it); without the check step_00000004 is written with NaN weights.
    from opensora_lite.training.train_loop import TrainingError

    run_dir = tmp_path / "run"
    config = write_config(tmp_path, run_dir, write_cache(tmp_path / "latents.safetensors"), max_steps=6)
    config.write_text(config.read_text().replace('type="rflow"', 'type="test_faulty_rflow", nan_grad_calls=(4,)'))
    with pytest.raises(TrainingError, match=r"step 4: the weights hold NaN/inf; not overwriting"):
        train_here(config)
    assert [p.name for p in complete_checkpoints(run_dir)] == ["step_00000002"]
    ckpt, _ = load_run_checkpoint(latest_checkpoint(run_dir))
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


##################################################################################
#                 4. A killed rank ends a torchrun job, which then resumes       #
##################################################################################

def _worker_pids(parent: int) -> dict:
    """{RANK: pid} of the processes started by torchrun ``parent``."""
    workers = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        rank = next((e[5:].decode() for e in env if e.startswith(b"RANK=")), None)
        if ppid == parent and rank is not None:
            workers[int(rank)] = int(entry.name)
    return workers


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the workers")
def test_a_killed_rank_ends_the_job_in_bounded_time_and_it_resumes(tmp_path, monkeypatch, caplog):
    # Protection: torchrun's agent tears the job down when a worker dies (rank 0 also fails fast: gloo
    # reports the closed connection, and the group timeout distributed.DEFAULT_TIMEOUT_S bounds any other
    # wait). Fails if the job outlives the kill by 120 s, exits 0, or leaves rank 0 running; then the
    # resume must start from the newest complete checkpoint (not from scratch, not from a .tmp folder).
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)  # left by an in-process run: torchrun must not inherit them
    run_dir = tmp_path / "run"
    config = write_config(tmp_path, run_dir, write_cache(tmp_path / "latents.safetensors"), max_steps=100_000,
                          log_every=1000)
    log = tmp_path / "torchrun.log"
    with open(log, "w") as out:
        proc = run_train(config, nproc=2, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while latest_checkpoint(run_dir) is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        workers = _worker_pids(proc.pid)
        assert latest_checkpoint(run_dir) is not None and set(workers) == {0, 1}, log.read_text()[-3000:]
        os.kill(workers[1], signal.SIGKILL)
        killed_at = time.time()
        returncode = proc.wait(timeout=120)
        took = time.time() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert returncode != 0 and took < 120, (returncode, took)
    # torchrun's summary names the root cause: rank 1, killed by signal 9.
    assert re.search(r"Root Cause.*?rank\s*:\s*1\b.*?exitcode\s*:\s*-9", text, re.DOTALL), text[-3000:]
    assert not Path(f"/proc/{workers[0]}").exists() or "zombie" in Path(f"/proc/{workers[0]}/status").read_text()

    last = int(latest_checkpoint(run_dir).name[len("step_"):])
    with caplog.at_level("INFO", logger="opensora_lite.training.run_checkpoint"):
        summary = train_here(config, **{"train.max_steps": last + 2})  # one process: same global batch
    assert summary["step"] == last + 2
    assert f"step_{last:08d} (step {last})" in caplog.text
    assert latest_checkpoint(run_dir).name == f"step_{last + 2:08d}"


##################################################################################
#                     6. Nothing is overwritten without --overwrite              #
##################################################################################

def _identity(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def test_inference_never_overwrites_its_outputs(tiny, tmp_path, capsys):
    # Protection: inference.output_paths skips existing names (and write_video / save_grid_png refuse to
    # replace a file). Without it the second run replaces 0-0.mp4 and grid-0.png.
    argv = [tiny["config"], "--random-init", "--no-progress", "--class", 0, "--save-dir", tmp_path]
    assert run(INFERENCE, capsys, *argv)[0] == 0
    first = {name: _identity(tmp_path / name) for name in ("0-0.mp4", "grid-0.png")}
    code, out, _ = run(INFERENCE, capsys, *argv)
    assert code == 0 and str(tmp_path / "0-1.mp4") in out and str(tmp_path / "grid-1.png") in out
    assert {name: _identity(tmp_path / name) for name in first} == first
    code, out, _ = run(INFERENCE, capsys, *argv, "--overwrite")  # replaces, under the same names
    assert code == 0 and str(tmp_path / "0-0.mp4") in out
    assert _identity(tmp_path / "0-0.mp4")[0] != first["0-0.mp4"][0]


def test_make_shapes_never_overwrites_a_dataset_nor_deletes_other_files(tmp_path, capsys):
    # Protection: make_shapes_dataset refuses an existing dataset without --overwrite, and with it deletes
    # only what it writes (a foreign file in --out survives).
    argv = ["--out", str(tmp_path), "--clips-per-class", "1", "--frames", "4", "--size", "32"]
    assert run_cli(MAKE_SHAPES.main, argv) == 0
    capsys.readouterr()
    before = {p: _identity(tmp_path / p) for p in ("train.csv", "classes.json")}
    (tmp_path / "notes.txt").write_text("mine")
    assert run_cli(MAKE_SHAPES.main, argv + ["--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0], err
    assert {p: _identity(tmp_path / p) for p in before} == before
    assert run_cli(MAKE_SHAPES.main, argv + ["--seed", "1", "--overwrite"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_training_never_overwrites_a_run_folder(tmp_path):
    # Protection: prepare_run_dir refuses a finished run without --overwrite, and refuses to let
    # --overwrite delete a folder that holds no run (e.g. --outputs . by mistake).
    from opensora_lite.training.train_loop import TrainingError

    run_dir = tmp_path / "run"
    config = write_config(tmp_path, run_dir, write_cache(tmp_path / "latents.safetensors"), max_steps=2)
    train_here(config)
    before = _snapshot(latest_checkpoint(run_dir))
    with pytest.raises(TrainingError, match="holds a finished run; pass --overwrite"):
        train_here(config)
    assert _snapshot(latest_checkpoint(run_dir)) == before
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(TrainingError, match="--overwrite would delete .*holds no run"):
        train_here(config, overwrite=True, **{"train.outputs": str(precious)})
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert train_here(config, overwrite=True)["step"] == 2  # a run folder is replaced when asked
