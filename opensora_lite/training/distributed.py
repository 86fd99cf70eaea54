"""Process group, colossalai Booster and plugin choice, and the CPU shim for ZeRO.

One code path for one process and for ``torchrun --nproc_per_node N``: a lone process joins a
1-process gloo group, so the trainer always talks to a Booster. colossalai is imported lazily (it
costs ~4 s and ~450 MB per process) and patched only when running on CPU.
"""
import contextlib
import datetime
import logging
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError, UserError

logger = logging.getLogger(__name__)

PLUGINS = ("ddp", "zero1", "zero2")
# colossalai's declared pins conflict with everything else: it is installed on its own, without its dependencies
# (the ones it really imports are the [train] extras).
COLOSSALAI_INSTALL = "pip install --no-deps colossalai==0.5.0"
TRAIN_INSTALL = 'make install-train (or: pip install -e ".[train]" && ' + COLOSSALAI_INSTALL + ")"
PRECISIONS = ("fp32", "bf16")
# A rank that waits this long on a collective gives up: a dead peer ends the run instead of hanging it.
DEFAULT_TIMEOUT_S = 300


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_distributed(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistInfo:
    """Join the process group set up by torchrun, or make a 1-process group for a plain ``python`` run."""
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))
    local_rank = int(os.environ["LOCAL_RANK"])
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def _patch_colossalai_for_cpu() -> None:
    """Let LowLevelZero (ZeRO-1/2) run on CPU: streams become no-ops, the CUDA-only check is relaxed.

    colossalai 0.5.0's CPU accelerator raises on ``Stream``/``current_stream``/``stream``/``synchronize`` and the
    ZeRO optimizer asserts a CUDA/NPU device; nothing else in its CPU path needs changing
    (``overlap_communication=False`` keeps all communication on the calling thread).
    """
    from colossalai.accelerator.cpu_accelerator import CpuAccelerator
    from colossalai.zero.low_level.low_level_optim import LowLevelZeroOptimizer

    if getattr(CpuAccelerator, "_opensora_lite_patched", False):
        return
    CpuAccelerator.Stream = lambda self, device=None, priority=0, **kwargs: None
    CpuAccelerator.current_stream = lambda self, device=None: None
    CpuAccelerator.stream = lambda self, stream_: contextlib.nullcontext()
    CpuAccelerator.synchronize = lambda self, device=None: None

    def sanity_checks(self):  # the dtype check of the original, without its device assertion
        for group in self.optim.param_groups:
            for param in group["params"]:
                if not getattr(param, "skip_zero_check", False) and param.dtype != self._dtype:
                    raise TypeError(f"ZeRO expects all parameters in {self._dtype}, got {param.dtype}")

    LowLevelZeroOptimizer._sanity_checks = sanity_checks
    CpuAccelerator._opensora_lite_patched = True


def missing_colossalai_message(module: str | None) -> str:
    """The one-line fix for a failed colossalai import: colossalai itself, or one of the packages it imports."""
    what = ("colossalai, which is not installed" if module and module.split(".")[0] == "colossalai"
            else f"colossalai, which cannot import {module!r}")
    return f"training needs {what}: install the training packages in one step with `{TRAIN_INSTALL}` (docs/install.md)"


def require_colossalai() -> None:
    """Import what training needs from colossalai now, so a missing package stops the run before any work.

    colossalai imports bitsandbytes, whose CPU backend logs a warning about a kernel hub it cannot reach (no
    network, and nothing the trainer uses): that logger is kept to errors, so a refusal stays one line.
    """
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    try:
        import colossalai.booster  # noqa: F401
        import colossalai.booster.plugin  # noqa: F401
    except ModuleNotFoundError as err:
        raise UserError(missing_colossalai_message(err.name)) from None


def make_booster(plugin: str, precision: str, max_grad_norm: float, device: torch.device):
    """Build a colossalai ``Booster`` with the named plugin ("ddp", "zero1", "zero2")."""
    if plugin not in PLUGINS:
        raise ConfigError(f"unknown plugin {plugin!r}; choose one of {', '.join(PLUGINS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    try:
        from colossalai.booster import Booster
        from colossalai.booster.plugin import LowLevelZeroPlugin, TorchDDPPlugin
    except ModuleNotFoundError as err:
        raise UserError(missing_colossalai_message(err.name)) from None

    if plugin == "ddp":
        # DDP keeps fp32 weights; bf16 runs under autocast in the trainer.
        return Booster(plugin=TorchDDPPlugin(find_unused_parameters=False))
    on_cpu = device.type == "cpu"
    if on_cpu:
        _patch_colossalai_for_cpu()
    zero = LowLevelZeroPlugin(stage=1 if plugin == "zero1" else 2, precision=precision,
                              max_norm=max_grad_norm, overlap_communication=not on_cpu)
    return Booster(plugin=zero)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all ranks (a copy; works on 1 process too)."""
    value = value.detach().clone()
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value
