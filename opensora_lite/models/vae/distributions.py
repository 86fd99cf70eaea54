"""The diagonal Gaussian posterior q(z | x) returned by the VAE encoders."""
import math
from typing import Optional

import torch

# Open-Sora (and diffusers) clamp the log-variance to this range before exponentiating.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class DiagonalGaussian:
    """N(mean, exp(logvar)) per element, from encoder ``moments`` = cat([mean, logvar], dim=1).

    ``moments`` is (N, 2C, ...) for any number of trailing axes: (N, 2C, T, H, W) for the temporal VAE,
    (N, 2C, H, W) for the 2-D VAE. ``kl()`` and ``nll()`` sum over every axis but the batch, as Open-Sora does.
    """

    def __init__(self, moments: torch.Tensor):
        self.moments = moments  # (N, 2C, ...)
        self.mean, logvar = torch.chunk(moments, 2, dim=1)  # (N, C, ...) each
        self.logvar = torch.clamp(logvar, LOGVAR_MIN, LOGVAR_MAX)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def draw_noise(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Standard normal noise shaped like ``mean``: the only random draw of this class.

        Drawn in float32 on the generator's device (CPU when there is none), then moved and cast next
        to ``mean``, as Open-Sora does, so a CPU generator gives the same numbers whatever the model's
        device and dtype. Tests replace this method to inject recorded draws.
        """
        device = generator.device if generator is not None else torch.device("cpu")
        noise = torch.randn(self.mean.shape, generator=generator, device=device, dtype=torch.float32)
        return noise.to(device=self.mean.device, dtype=self.mean.dtype)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A reparameterised draw ``mean + std * eps``, shaped like ``mean``."""
        return self.mean + self.std * self.draw_noise(generator)

    def mode(self) -> torch.Tensor:
        return self.mean

    def _sum_over_non_batch(self, value: torch.Tensor) -> torch.Tensor:
        return value.sum(dim=tuple(range(1, value.dim())))  # (N,)

    def kl(self, other: Optional["DiagonalGaussian"] = None) -> torch.Tensor:
        """KL(self || other), with other = N(0, I) by default; shape (N,)."""
        if other is None:
            terms = self.mean.pow(2) + self.var - 1.0 - self.logvar
        else:
            terms = ((self.mean - other.mean).pow(2) / other.var + self.var / other.var - 1.0
                     - self.logvar + other.logvar)
        return 0.5 * self._sum_over_non_batch(terms)

    def nll(self, sample: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``sample`` (in nats), shape (N,)."""
        terms = math.log(2.0 * math.pi) + self.logvar + (sample - self.mean).pow(2) / self.var
        return 0.5 * self._sum_over_non_batch(terms)
