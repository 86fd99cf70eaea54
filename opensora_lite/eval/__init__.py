"""Evaluation: PSNR / SSIM / Frechet distance, and the independent moving-shapes judge."""
from .metrics import frechet_distance, psnr, ssim
from .shapes_judge import judge_accuracy, judge_clip, judge_clips

__all__ = ["frechet_distance", "judge_accuracy", "judge_clip", "judge_clips", "psnr", "ssim"]
