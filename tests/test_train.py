"""Training: deterministic data order, loss going down, 1 vs 2 processes (DDP, ZeRO-1, ZeRO-2), kill and resume."""
import signal
import time

import psutil
import pytest
import torch
from safetensors.torch import load_file

from opensora_lite.data.sampler import GlobalBatchSampler
from opensora_lite.training.run_checkpoint import latest_checkpoint
from opensora_lite.training.train_step import TrainStep

from helpers import losses, run_train, write_config, write_latent_cache

##################################################################################
#                               Data order                                       #
##################################################################################

def test_global_batches_do_not_depend_on_the_number_of_processes():
    one = GlobalBatchSampler(10, 4, seed=3, num_steps=5)
    two = [GlobalBatchSampler(10, 4, rank=r, world_size=2, seed=3, num_steps=5) for r in range(2)]
    for step in range(5):
        assert one.batch_indices(step) == two[0].batch_indices(step) + two[1].batch_indices(step)


def test_every_sample_once_per_epoch_and_resume_continues_the_stream():
    sampler = GlobalBatchSampler(12, 4, seed=0, num_steps=6)
    batches = list(sampler)
    assert sorted(sum(batches[:3], [])) == list(range(12))  # epoch 0
    assert sorted(sum(batches[3:], [])) == list(range(12))  # epoch 1
    assert batches[:3] != batches[3:]  # reshuffled
    resumed = GlobalBatchSampler(12, 4, seed=0, start_step=4, num_steps=2)
    assert list(resumed) == batches[4:]


def test_a_dataset_smaller_than_the_batch_still_gives_batches():
    batches = list(GlobalBatchSampler(3, 8, seed=0, num_steps=2))
    assert len(batches) == 2 and all(len(b) == 8 for b in batches)


def test_global_batch_must_split_over_processes():
    with pytest.raises(ValueError, match="not divisible"):
        GlobalBatchSampler(10, 5, world_size=2)


##################################################################################
#                            Learning-rate schedule                              #
##################################################################################

def _lrs(trainer: TrainStep, steps: int) -> list[float]:
    model = trainer.raw_model
    out = []
    for _ in range(steps):
        out.append(trainer.lr)
        trainer.apply(model(torch.ones(1, 2)).sum())
    return out


def test_cosine_schedule_warms_up_then_decays_to_min_lr_and_resumes_exactly():
    def make():
        torch.manual_seed(0)
        return TrainStep(torch.nn.Linear(2, 1), lr=1e-3, warmup_steps=2, lr_schedule="cosine", max_steps=10,
                         min_lr=1e-4)

    lrs = _lrs(make(), 12)
    assert lrs[:3] == pytest.approx([5e-4, 1e-3, 1e-3])  # warm-up, then the peak
    assert lrs[6] == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # half way through the decay: the mean of lr and min_lr
    assert all(a > b for a, b in zip(lrs[2:10], lrs[3:10]))
    assert lrs[10:] == pytest.approx([1e-4, 1e-4])  # min_lr from max_steps on
    first = make()
    _lrs(first, 5)
    tensors, meta = first.state()
    resumed = make()
    resumed.load_state(tensors, meta)
    assert _lrs(resumed, 7) == pytest.approx(lrs[5:])


def test_the_default_schedule_is_flat_after_warm_up():
    lrs = _lrs(TrainStep(torch.nn.Linear(2, 1), lr=1e-3, warmup_steps=2, max_steps=10), 12)
    assert lrs == pytest.approx([5e-4] + [1e-3] * 11)


##################################################################################
#                                 Training                                       #
##################################################################################

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    # every 4th clip has its own frame mask (first_k): resume and N-process equality hold with them
    return write_latent_cache(tmp_path_factory.mktemp("data") / "latents.safetensors", first_k_every=4)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, cache):
    """One process, 6 steps, checkpoints every 2: the run the others must reproduce."""
    tmp = tmp_path_factory.mktemp("ref")
    config = write_config(tmp, tmp / "run", cache)
    run_train(config)
    return tmp / "run"


def test_loss_goes_down(tmp_path, cache):
    config = write_config(tmp_path, tmp_path / "run", cache, max_steps=80, lr=3e-3, ckpt_every=80, log_every=80)
    run_train(config)
    curve = losses(tmp_path / "run")
    first, last = sum(curve[s] for s in range(1, 11)) / 10, sum(curve[s] for s in range(71, 81)) / 10
    assert last < 0.75 * first, (first, last)  # measured: ~1.8 -> ~1.1; a run that does not learn stays ~1.8


def test_run_writes_complete_checkpoints_and_refuses_to_overwrite(tmp_path, reference_run):
    ckpt = latest_checkpoint(reference_run)
    assert ckpt.name == "step_00000006"
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "ema.safetensors", "optimizer.safetensors",
                                              "meta.json"}
    result = run_train(reference_run / "config.py", check=False)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_compiled_training_follows_the_eager_run(tmp_path, cache, reference_run):
    config = write_config(tmp_path, tmp_path / "run", cache, compile=True)
    result = run_train(config)
    assert "train.compile" in result.stdout + result.stderr
    eager, compiled = losses(reference_run), losses(tmp_path / "run")
    assert sorted(compiled) == sorted(eager) == list(range(1, 7))
    # inductor fuses and reorders float ops, so the weights drift apart by rounding only
    assert all(abs(compiled[s] - eager[s]) <= 1e-3 * abs(eager[s]) for s in eager), (eager, compiled)
    a = load_file(latest_checkpoint(reference_run) / "model.safetensors")
    b = load_file(latest_checkpoint(tmp_path / "run") / "model.safetensors")
    assert a.keys() == b.keys()  # the compiled run's checkpoints load into an eager model
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("plugin", ["ddp", "zero1", "zero2"])
def test_two_processes_match_one_process(tmp_path, cache, reference_run, plugin):
    config = write_config(tmp_path, tmp_path / "run", cache, plugin=plugin)
    run_train(config, nproc=2)
    ref, got = losses(reference_run), losses(tmp_path / "run")
    assert sorted(got) == sorted(ref) == list(range(1, 7))
    for step in ref:
        assert got[step] == pytest.approx(ref[step], abs=1e-5), (plugin, step)
    final_ref = load_file(str(latest_checkpoint(reference_run) / "model.safetensors"))
    final_got = load_file(str(latest_checkpoint(tmp_path / "run") / "model.safetensors"))
    for key in final_ref:
        torch.testing.assert_close(final_got[key], final_ref[key], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("plugin, nproc", [("ddp", 1), ("zero2", 2)])
def test_sigkill_then_resume_ends_with_the_same_weights(tmp_path, cache, plugin, nproc):
    long = dict(max_steps=120, ckpt_every=10, log_every=10, plugin=plugin)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    run_train(write_config(ref_dir, ref_dir / "run", cache, **long), nproc=nproc)
    run_dir = tmp_path / "run"
    config = write_config(tmp_path, run_dir, cache, **long)
    proc = run_train(config, nproc=nproc, stdout=None, stderr=None)
    deadline = time.time() + 300
    while latest_checkpoint(run_dir) is None and time.time() < deadline:  # kill soon after the first checkpoint
        time.sleep(0.02)
    job = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for process in job:  # every process of the job at once (torchrun's workers too), as a crashed node
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(job, timeout=30)
    proc.wait()
    killed_at = latest_checkpoint(run_dir)
    assert killed_at is not None and killed_at.name != "step_00000120", "the run ended before it was killed"
    run_train(config, nproc=nproc)  # the same command resumes from the newest complete checkpoint
    assert latest_checkpoint(run_dir).name == "step_00000120"
    for name in ("model", "ema", "optimizer"):
        want = load_file(str(latest_checkpoint(ref_dir / "run") / f"{name}.safetensors"))
        got = load_file(str(latest_checkpoint(run_dir) / f"{name}.safetensors"))
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=0, rtol=0)
