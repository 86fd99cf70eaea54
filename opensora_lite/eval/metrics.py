"""Reconstruction and distribution metrics: PSNR, SSIM (per clip) and the Frechet distance.

Clips are float tensors ``(N, 3, T, H, W)`` or ``(3, T, H, W)`` in ``[0, 1]`` (map model outputs with
``(x + 1) / 2``). PSNR and SSIM return one value per clip: ``(N,)``, or a 0-d tensor for a single clip.
"""
from typing import Tuple

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from ..errors import ShapeError


def _as_batch(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """Check shapes, add a batch axis to single clips; returns (a, b, was_single) in float64."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ShapeError(f"clips must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim not in (4, 5) or a.shape[-4] != 3:
        raise ShapeError(f"expected (N, 3, T, H, W) or (3, T, H, W), got {tuple(a.shape)}")
    single = a.ndim == 4
    if single:
        a, b = a[None], b[None]
    return a.double(), b.double(), single


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per clip: ``10 log10(range^2 / MSE)``, the MSE over (3, T, H, W).

    Identical clips give ``inf``.
    """
    a, b, single = _as_batch(a, b)
    mse = ((a - b) ** 2).flatten(1).mean(dim=1)  # (N,)
    out = (10 * torch.log10(data_range**2 / mse)).float()  # inf where mse == 0
    return out[0] if single else out


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, kernel_size: int = 11) -> torch.Tensor:
    """Mean SSIM per clip: torchmetrics' SSIM (Gaussian window, sigma 1.5) on every frame, averaged over T.

    Frames must be at least ``kernel_size`` pixels on each side (pass a smaller odd kernel for tiny ones).
    """
    a, b, single = _as_batch(a, b)
    n, c, t, h, w = a.shape
    frames_a = a.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w).float()  # (N*T, 3, H, W)
    frames_b = b.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w).float()
    per_frame = structural_similarity_index_measure(
        frames_a, frames_b, data_range=data_range, kernel_size=kernel_size, reduction="none"
    )  # (N*T,)
    out = per_frame.reshape(n, t).mean(dim=1)  # (N,)
    return out[0] if single else out


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via eigh (negative eigenvalues -> 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)`` (FID / FVD).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``. The last trace is computed without
    scipy's non-symmetric ``sqrtm``: with ``R = S_a^(1/2)``, ``S_a S_b`` is similar to the symmetric PSD
    matrix ``R S_b R``, so ``tr((S_a S_b)^(1/2)) = sum(sqrt(eigvalsh(R S_b R)))``, all in float64.
    """
    a = torch.as_tensor(np.asarray(feats_a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(feats_b), dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(f"features must be (N, D) and (M, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ShapeError("each feature set needs at least 2 samples for a covariance")
    mu_a, mu_b = a.mean(0), b.mean(0)  # (D,)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)  # (D, D), unbiased like numpy.cov
    cov_a, cov_b = torch.atleast_2d(cov_a), torch.atleast_2d(cov_b)
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2  # symmetric up to rounding
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    distance = ((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt
    return float(distance.clamp(min=0))
