"""Improved DDPM (Nichol & Dhariwal 2021) as trained by DiT and Open-Sora (fixture ``iddpm``).

* Forward process: 1000 steps, linear betas 1e-4 .. 0.02; x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.
  Integer t in [0, steps), t = steps - 1 is (almost) pure noise. Schedule math is float64; coefficients
  are cast to float32 when applied to a tensor.
* Network: predicts noise (first C output channels) and, with ``learn_sigma``, a variance interpolation
  v in [-1, 1] (last C channels): log var = (v+1)/2 log beta_t + (1-v)/2 log beta~_t ("learned range").
* Loss: MSE on the noise + the variational bound (VB, in bits/dim) with the mean detached, so the VB
  only trains the variance. VB at t=0 is the discretized Gaussian decoder NLL, elsewhere KL(q || p).
* Respacing: a chain on a subset of the steps ("250", "10", "ddim50", ...; DiT's ``space_timesteps``);
  the network always sees the ORIGINAL timestep (``timestep_map``).
* Samplers: ancestral DDPM, DDIM (eta) and DPM-Solver++(2M), with classifier-free guidance on
  ``cfg_channel`` channels.
"""
import collections
import math
from typing import Callable, Iterator, List, Optional, Union

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError, ShapeError
from ..registry import SCHEDULERS
from .guidance import GivenFrames, mean_flat, model_output
from .settings import SamplingSettings, VideoSize

# DDPM's linear schedule (Ho et al. 2020), defined for 1000 steps and scaled for other lengths.
LINEAR_BETA_START, LINEAR_BETA_END, LINEAR_REFERENCE_STEPS = 1e-4, 0.02, 1000
# Images in [-1, 1] quantized to 8 bits: a bin is 2/255 wide; |x| > 0.999 is an edge bin.
PIXEL_HALF_BIN, PIXEL_EDGE = 1.0 / 255.0, 0.999
LOG_EPS = 1e-12  # floor inside logs of probabilities


##################################################################################
#                          Noise schedules and respacing                         #
##################################################################################

def make_betas(noise_schedule: str, steps: int) -> torch.Tensor:
    """Betas (steps,) float64 of a named schedule: "linear" or "squaredcos_cap_v2" (cosine)."""
    if noise_schedule == "linear":
        scale = LINEAR_REFERENCE_STEPS / steps
        return torch.linspace(scale * LINEAR_BETA_START, scale * LINEAR_BETA_END, steps, dtype=torch.float64)
    if noise_schedule == "squaredcos_cap_v2":
        i = torch.arange(steps + 1, dtype=torch.float64) / steps
        abar = torch.cos((i + 0.008) / 1.008 * math.pi / 2) ** 2  # (steps + 1,), offset 0.008 (IDDPM)
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ConfigError(f"unknown noise_schedule '{noise_schedule}'; choose 'linear' or 'squaredcos_cap_v2'")


def space_timesteps(num_timesteps: int, spec: Union[str, int, List[int]]) -> List[int]:
    """The original steps kept by a respaced chain, sorted.

    ``spec`` "ddimK": the stride-i grid range(0, num_timesteps, i) that has exactly K steps.
    Otherwise a comma list of counts ("250" or "10,15,20"): the steps are cut into that many equal
    sections and each section keeps its count of steps at a float stride, rounded (both ends kept).
    """
    if isinstance(spec, str) and spec.startswith("ddim"):
        want = int(spec[len("ddim"):])
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == want:
                return list(range(0, num_timesteps, stride))
        raise ConfigError(f"cannot take exactly {want} evenly strided steps out of {num_timesteps}")
    counts = [int(c) for c in spec.split(",")] if isinstance(spec, str) else list(
        [spec] if isinstance(spec, int) else spec)
    size, extra = divmod(num_timesteps, len(counts))
    kept, start = [], 0
    for i, count in enumerate(counts):
        length = size + (1 if i < extra else 0)  # steps in this section
        if count > length or count < 1:
            raise ConfigError(f"cannot take {count} steps out of a section of {length} (respacing '{spec}')")
        stride = (length - 1) / (count - 1) if count > 1 else 1.0
        cur = 0.0
        for _ in range(count):
            kept.append(start + round(cur))
            cur += stride  # a float accumulator, as DiT: "250" gives 0, 4, 8, ..., 995, 999
        start += length
    return sorted(set(kept))


class DiffusionSchedule:
    """The float64 coefficients of one Markov chain; ``timestep_map[i]`` is its i-th original step.

    Built from the base betas and the kept steps: a respaced chain jumps between kept steps, so its
    beta_i = 1 - abar[kept_i] / abar[kept_{i-1}] (the base chain's abar at the kept steps is preserved).
    """

    def __init__(self, base_betas: torch.Tensor, kept: Optional[List[int]] = None):
        if kept is None:  # the full chain
            kept, self.betas = list(range(len(base_betas))), base_betas
        else:
            abar_kept = torch.cumprod(1 - base_betas, dim=0)[kept]  # (S,)
            prev = torch.cat([abar_kept.new_ones(1), abar_kept[:-1]])
            self.betas = 1 - abar_kept / prev  # (S,)
        self.timestep_map = torch.tensor(kept, dtype=torch.long)  # (S,)
        self.num_steps = len(kept)

        b = self.betas
        self.alphas_cumprod = torch.cumprod(1 - b, dim=0)  # abar_t
        self.alphas_cumprod_prev = torch.cat([b.new_ones(1), self.alphas_cumprod[:-1]])  # abar_{t-1}
        abar, abar_prev = self.alphas_cumprod, self.alphas_cumprod_prev
        self.sqrt_alphas_cumprod = abar.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1 - abar).sqrt()
        self.sqrt_recip_alphas_cumprod = (1 / abar).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1 / abar - 1).sqrt()
        # q(x_{t-1} | x_t, x0) = N(coef1 x0 + coef2 x_t, beta~_t); beta~_0 = 0, so its log is clipped
        # to beta~_1 at t = 0.
        self.posterior_variance = b * (1 - abar_prev) / (1 - abar)
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]))
        self.posterior_mean_coef1 = b * abar_prev.sqrt() / (1 - abar)
        self.posterior_mean_coef2 = (1 - abar_prev) * (1 - b).sqrt() / (1 - abar)
        self.log_betas = torch.log(b)
        # FIXED_LARGE uses beta_t, with beta~_1 at t = 0 (a finite log-likelihood at the last step).
        self.log_betas_large = torch.log(torch.cat([self.posterior_variance[1:2], b[1:]]))

    @staticmethod
    def at(coef: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
        """coef[t] as float32 (N, 1, ..., 1) for broadcasting against an ndim tensor."""
        return coef.to(t.device)[t].float().view(-1, *([1] * (ndim - 1)))


##################################################################################
#                         Gaussian log-likelihood helpers                        #
##################################################################################

def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """Elementwise KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) by the tanh approximation (as in IDDPM, so losses match its checkpoints' logs)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor):
    """Elementwise log P(bin of x) under N(mean, e^(2 log_scale)) for x in [-1, 1] on 255 bins (nats).

    Edge bins extend to infinity: log Phi(upper) below -0.999, log(1 - Phi(lower)) above 0.999.
    """
    centered, inv_std = x - mean, torch.exp(-log_scale)
    cdf_upper = approx_standard_normal_cdf(inv_std * (centered + PIXEL_HALF_BIN))
    cdf_lower = approx_standard_normal_cdf(inv_std * (centered - PIXEL_HALF_BIN))
    log_cdf_upper = torch.log(cdf_upper.clamp(min=LOG_EPS))
    log_one_minus_cdf_lower = torch.log((1.0 - cdf_lower).clamp(min=LOG_EPS))
    log_bin = torch.log((cdf_upper - cdf_lower).clamp(min=LOG_EPS))
    return torch.where(x < -PIXEL_EDGE, log_cdf_upper, torch.where(x > PIXEL_EDGE, log_one_minus_cdf_lower, log_bin))


##################################################################################
#                                   IDDPM                                        #
##################################################################################

@SCHEDULERS.register_module("iddpm")
class IDDPM:
    """Gaussian diffusion with Open-Sora's ``IDDPM`` keywords (defaults = DiT's recipe).

    Args:
        num_sampling_steps: respace to this many evenly spaced steps (same as timestep_respacing=str(n)).
        timestep_respacing: "" or None for all steps, "250", "10,20", "ddim50", ...
        noise_schedule: "linear" (DDPM) or "squaredcos_cap_v2".
        use_kl: train on the VB alone (rescaled by the number of steps) instead of MSE + VB.
        sigma_small: without learn_sigma, use the posterior variance beta~ instead of beta.
        predict_xstart: the network predicts x0 instead of the noise.
        learn_sigma: the network predicts the variance in its last C channels ("learned range").
        rescale_learned_sigmas: scale the VB term by steps / 1000.
        diffusion_steps: length of the base chain.
        cfg_scale: default guidance scale of :meth:`sample`; cfg_channel: channels it guides (None: all).
        sampler: the default of :meth:`sample`, one of ``SAMPLERS``: "ddpm" (ancestral), "ddim" or
            "dpm++2m" (DPM-Solver++(2M), second order, one network call per step; see :meth:`dpm_solver_steps`).

    The chain chosen by the respacing serves both training and sampling (as upstream); ``sample``'s
    ``num_steps`` picks another respacing for one call.
    """

    SAMPLERS = ("ddpm", "ddim", "dpm++2m")

    def __init__(self, num_sampling_steps: Optional[int] = None, timestep_respacing=None,
                 noise_schedule: str = "linear", use_kl: bool = False, sigma_small: bool = False,
                 predict_xstart: bool = False, learn_sigma: bool = True, rescale_learned_sigmas: bool = False,
                 diffusion_steps: int = 1000, cfg_scale: float = 4.0, cfg_channel: Optional[int] = None,
                 sampler: str = "ddpm"):
        if sampler not in self.SAMPLERS:
            raise ConfigError(f"unknown IDDPM sampler '{sampler}'; choose one of {self.SAMPLERS}")
        if num_sampling_steps is not None:
            if timestep_respacing not in (None, ""):
                raise ConfigError("give num_sampling_steps or timestep_respacing, not both")
            timestep_respacing = str(num_sampling_steps)
        self.base_betas = make_betas(noise_schedule, diffusion_steps)  # (diffusion_steps,) float64
        self.diffusion_steps = diffusion_steps
        self.predict_xstart = predict_xstart
        self.var_type = "learned_range" if learn_sigma else ("fixed_small" if sigma_small else "fixed_large")
        self.loss_type = "rescaled_kl" if use_kl else ("rescaled_mse" if rescale_learned_sigmas else "mse")
        self.cfg_scale, self.cfg_channel = cfg_scale, cfg_channel
        self.sampler = sampler
        self.schedule = self.respaced(timestep_respacing)

    def respaced(self, spec=None) -> DiffusionSchedule:
        """The chain for a respacing spec (None or "" = all diffusion_steps)."""
        kept = None if spec in (None, "") else space_timesteps(self.diffusion_steps, spec)
        return DiffusionSchedule(self.base_betas, kept)

    # -- the forward process q ----------------------------------------------------

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                 schedule: Optional[DiffusionSchedule] = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise (N, ...), t (N,) chain indices."""
        s = schedule or self.schedule
        return s.at(s.sqrt_alphas_cumprod, t, x0.ndim) * x0 + s.at(s.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise

    def q_posterior(self, x0, x_t, t, schedule: DiffusionSchedule):
        """Mean and clipped log variance of q(x_{t-1} | x_t, x0), each (N, ...)."""
        s, nd = schedule, x_t.ndim
        mean = s.at(s.posterior_mean_coef1, t, nd) * x0 + s.at(s.posterior_mean_coef2, t, nd) * x_t
        return mean, s.at(s.posterior_log_variance_clipped, t, nd)

    # -- the reverse process p ----------------------------------------------------

    def p_mean_variance(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor, schedule: DiffusionSchedule,
                        clip_denoised: bool = False) -> dict:
        """Turn the network output ``out`` (N, C or 2C, ...) at x_t = x (N, C, ...) into p(x_{t-1} | x_t).

        Returns ``mean``, ``log_variance`` and ``pred_xstart`` (all (N, C, ...) but log_variance, which
        may broadcast).
        """
        s, nd, channels = schedule, x.ndim, x.shape[1]
        if self.var_type == "learned_range":
            if out.shape[1] != 2 * channels:
                raise ShapeError(f"learn_sigma needs {2 * channels} output channels, got {out.shape[1]}")
            out, v = out[:, :channels], out[:, channels:]  # (N, C, ...) each
            frac = (v + 1) / 2  # 1 -> beta_t, 0 -> beta~_t
            max_log, min_log = s.at(s.log_betas, t, nd), s.at(s.posterior_log_variance_clipped, t, nd)
            log_variance = frac * max_log + (1 - frac) * min_log
        else:
            out = out[:, :channels]
            table = s.log_betas_large if self.var_type == "fixed_large" else s.posterior_log_variance_clipped
            log_variance = s.at(table, t, nd)  # (N, 1, ...)
        if self.predict_xstart:
            pred_xstart = out
        else:  # x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
            pred_xstart = (s.at(s.sqrt_recip_alphas_cumprod, t, nd) * x
                           - s.at(s.sqrt_recipm1_alphas_cumprod, t, nd) * out)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _ = self.q_posterior(pred_xstart, x, t, s)
        return {"mean": mean, "log_variance": log_variance, "pred_xstart": pred_xstart}

    # -- training -------------------------------------------------------------------

    def _vb_bits(self, out, x0, x_t, t, schedule, mask=None) -> torch.Tensor:
        """The VB term (N,) in bits/dim: decoder NLL at t = 0, KL(q(x_{t-1}|x_t,x0) || p) elsewhere."""
        true_mean, true_log_var = self.q_posterior(x0, x_t, t, schedule)
        p = self.p_mean_variance(out, x_t, t, schedule)
        kl = mean_flat(normal_kl(true_mean, true_log_var, p["mean"], p["log_variance"]), mask) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, p["mean"], 0.5 * p["log_variance"])
        nll = mean_flat(nll, mask) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def sample_timesteps(self, n: int, size: Optional[VideoSize] = None, device=None,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Training chain indices (n,), uniform over the steps (``size``: unused, for parity with rflow)."""
        return torch.randint(0, self.schedule.num_steps, (n,), device=device, generator=generator)

    def training_losses(self, model, x0: torch.Tensor, cond: dict, t: Optional[torch.Tensor] = None,
                        noise: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
                        size: Optional[VideoSize] = None) -> dict:
        """Loss terms, each (N,): ``loss`` and, for the MSE losses, ``mse`` and ``vb``.

        x0 (N, C, ...) clean latents; t (N,) chain indices (default: uniform); ``cond`` the condition the
        network reads (``size``: unused, for parity with rflow). mask (N, T) bool for x0 (N, C, T, H, W):
        frames where it is False are given, stay clean, do not count, and the model is told so (``frame_mask``).
        """
        s = self.schedule
        if t is None:
            t = self.sample_timesteps(x0.shape[0], device=x0.device)
        if noise is None:
            noise = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, noise)  # (N, C, ...)
        if mask is not None:
            x_t = torch.where(mask[:, None, :, None, None], x_t, x0)
        out = model_output(model, x_t, s.timestep_map.to(t.device)[t], cond, frame_mask=mask)  # (N, C or 2C, ...)

        if self.loss_type == "rescaled_kl":  # the VB alone, gradients through mean and variance
            return {"loss": self._vb_bits(out, x0, x_t, t, s, mask) * s.num_steps}
        terms = {}
        channels = x0.shape[1]
        if self.var_type == "learned_range":  # the VB trains the variance only: detach the mean
            frozen = torch.cat([out[:, :channels].detach(), out[:, channels:]], dim=1)
            terms["vb"] = self._vb_bits(frozen, x0, x_t, t, s, mask)
            if self.loss_type == "rescaled_mse":
                terms["vb"] = terms["vb"] * (s.num_steps / 1000.0)
        target = x0 if self.predict_xstart else noise
        terms["mse"] = mean_flat((target - out[:, :channels]) ** 2, mask)
        terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
        return terms

    # -- sampling -------------------------------------------------------------------

    @torch.no_grad()
    def sample_steps(self, model, z: torch.Tensor, cond: dict, settings: Optional[SamplingSettings] = None, *,
                     generator: Optional[torch.Generator] = None, eta: float = 0.0, clip_denoised: bool = False,
                     noise_fn: Optional[Callable] = None, given: Optional[GivenFrames] = None,
                     size: Optional[VideoSize] = None) -> Iterator[dict]:
        """Yield ``{"sample", "pred_xstart"}`` (N, C, ...) after each step; see :meth:`sample`."""
        settings = (settings or SamplingSettings()).resolved(self)
        method, cfg_scale, num_steps, progress = settings.sampler, settings.cfg_scale, settings.steps, settings.progress
        if method == "dpm++2m":
            yield from self.dpm_solver_steps(model, z, cond, cfg_scale, num_steps, progress, clip_denoised, given)
            return
        s = self.schedule if num_steps is None else self.respaced(str(num_steps))
        x, n, nd = (z if given is None else given.hold(z)), z.shape[0], z.ndim
        frame_mask = None if given is None else given.mask

        def draw(step: int) -> torch.Tensor:
            if noise_fn is not None:
                return noise_fn(step, tuple(x.shape)).to(x)
            return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

        steps = list(range(s.num_steps))[::-1]  # chain indices, noise first
        for step, i in enumerate(tqdm(steps, disable=not progress, desc=f"iddpm {method}")):
            t = torch.full((n,), i, dtype=torch.long, device=x.device)  # (N,) chain index
            out = model_output(model, x, s.timestep_map.to(x.device)[t], cond, cfg_scale, self.cfg_channel, frame_mask)
            p = self.p_mean_variance(out, x, t, s, clip_denoised)
            last = 0.0 if i == 0 else 1.0  # no noise is added on the final step
            if method == "ddpm":
                noise = draw(step)  # drawn on the final step too (as upstream), then masked
                x = p["mean"] + last * torch.exp(0.5 * p["log_variance"]) * noise
            else:  # DDIM: x_{t-1} = sqrt(abar') x0 + sqrt(1 - abar' - sigma^2) eps + sigma noise
                eps = (s.at(s.sqrt_recip_alphas_cumprod, t, nd) * x - p["pred_xstart"]) / s.at(
                    s.sqrt_recipm1_alphas_cumprod, t, nd)  # the noise implied by (clipped) x0
                abar, abar_prev = s.at(s.alphas_cumprod, t, nd), s.at(s.alphas_cumprod_prev, t, nd)
                sigma = eta * torch.sqrt((1 - abar_prev) / (1 - abar)) * torch.sqrt(1 - abar / abar_prev)
                x = p["pred_xstart"] * torch.sqrt(abar_prev) + torch.sqrt(1 - abar_prev - sigma ** 2) * eps
                if eta != 0:  # upstream also draws (and multiplies by 0) at eta = 0; we skip the draw
                    x = x + last * sigma * draw(step)
            if given is not None:
                x = given.hold(x)  # given frames stay at their clean latents after every step
            yield {"sample": x, "pred_xstart": p["pred_xstart"]}

    def dpm_solver_timesteps(self, num_steps: Optional[int] = None) -> List[int]:
        """The original timesteps DPM-Solver++ evaluates the network at, noise first.

        ``num_steps`` (default: the constructor's chain length) points uniform in sqrt(t) from the last
        step down: t_i = round(t_max (1 - i / K)^2), i < K (DPM-Solver's "time_quadratic" spacing), made
        strictly decreasing, so steps are dense where little noise is left; the final solver step goes from
        t_{K-1} = round(t_max / K^2) straight to clean data. On Gaussian data with the exact noise
        prediction (tests/test_dpm_solver.py) this spacing beats uniform-in-t and uniform-log-SNR grids at
        8-20 steps.
        """
        num_steps = num_steps or self.schedule.num_steps
        if not 1 <= num_steps <= self.diffusion_steps:
            raise ConfigError(f"dpm++2m takes 1 to {self.diffusion_steps} steps, got {num_steps}")
        t_max = self.diffusion_steps - 1
        steps = [round(t_max * (1 - i / num_steps) ** 2) for i in range(num_steps)]
        for i in reversed(range(num_steps - 1)):  # near t = 0 the grid is finer than 1: keep K distinct steps
            steps[i] = max(steps[i], steps[i + 1] + 1)
        return steps

    @torch.no_grad()
    def dpm_solver_steps(self, model, z: torch.Tensor, cond: dict, cfg_scale: float,
                         num_steps: Optional[int] = None, progress: bool = True, clip_denoised: bool = False,
                         given: Optional[GivenFrames] = None) -> Iterator[dict]:
        """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) on the probability-flow ODE of the base chain.

        With alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t = log(alpha_t / sigma_t) and the
        data prediction x0_i = (x - sigma_i eps) / alpha_i (the network's x0 itself with predict_xstart; a
        learned variance is ignored), a step to the next timestep is
        x' = (sigma'/sigma) x - alpha' expm1(-h) D,  h = lambda' - lambda,
        D = x0_i + (x0_i - x0_{i-1}) h / (2 h_{i-1}) (x0_i on the first step). The final step goes to clean
        data (alpha' = 1, sigma' = 0) with D = x0_i ("lower order final"), so it returns the last data
        prediction. The first-order step (D = x0_i) is DDIM's. Given frames are held after every step.
        Yields ``{"sample", "pred_xstart"}`` (N, C, ...) after each step.
        """
        timesteps = self.dpm_solver_timesteps(num_steps)
        abar = torch.cumprod(1 - self.base_betas, dim=0)  # (diffusion_steps,) float64
        alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
        log_snr = alpha.log() - sigma.log()  # lambda_t
        x, n, channels = (z if given is None else given.hold(z)), z.shape[0], z.shape[1]
        frame_mask = None if given is None else given.mask
        x0_prev, h_prev = None, None
        for i, step in enumerate(tqdm(timesteps, disable=not progress, desc="iddpm dpm++2m")):
            t = torch.full((n,), step, dtype=torch.long, device=x.device)  # (N,) original timestep
            out = model_output(model, x, t, cond, cfg_scale, self.cfg_channel, frame_mask)[:, :channels]
            x0 = out if self.predict_xstart else (x - sigma[step].item() * out) / alpha[step].item()  # (N, C, ...)
            if clip_denoised:
                x0 = x0.clamp(-1, 1)
            if i == len(timesteps) - 1:
                x = x0  # to clean data: alpha' = 1, sigma' = 0
            else:
                nxt = timesteps[i + 1]
                h = (log_snr[nxt] - log_snr[step]).item()
                d = x0 if x0_prev is None else x0 + (h / (2 * h_prev)) * (x0 - x0_prev)
                x = (sigma[nxt] / sigma[step]).item() * x - alpha[nxt].item() * math.expm1(-h) * d
                x0_prev, h_prev = x0, h
            if given is not None:
                x = given.hold(x)
            yield {"sample": x, "pred_xstart": x0}

    def sample(self, model, z: torch.Tensor, cond: dict, settings: Optional[SamplingSettings] = None, *,
               generator: Optional[torch.Generator] = None, eta: float = 0.0, clip_denoised: bool = False,
               noise_fn: Optional[Callable] = None, given: Optional[GivenFrames] = None,
               size: Optional[VideoSize] = None) -> torch.Tensor:
        """Denoise z (N, C, ...) from the chain's last step to x0 (N, C, ...).

        ``cond``: the condition; guidance (``settings.cfg_scale`` != 1, default: self.cfg_scale) asks the model
        for its null counterpart. ``given`` frames are held at their clean latents at every step.
        ``settings.steps``: respace to that many steps for this call (default: the constructor's chain).
        ``settings.sampler``: "ddpm" (ancestral, learned variance), "ddim" (``eta`` = 0 is deterministic) or
        "dpm++2m" (deterministic; its steps are spaced by :meth:`dpm_solver_timesteps`, not by the
        respacing); default the constructor's. ``size`` is unused (parity with rflow).
        Noise comes from ``generator`` (or the global RNG), drawn as ``randn`` of z's shape once per
        step; ``noise_fn(step_index, shape)`` replaces it (step_index 0 = the first, noisiest step).
        DDPM draws on every step, the last one included (then masked), as upstream does, so a seed
        gives upstream's sample. DDIM draws only when eta != 0 (upstream also draws, unused, at eta 0).
        """
        steps = self.sample_steps(model, z, cond, settings, generator=generator, eta=eta, clip_denoised=clip_denoised,
                                  noise_fn=noise_fn, given=given)
        last = collections.deque(steps, maxlen=1)  # run every step, keep the final one
        return last[0]["sample"] if last else z
