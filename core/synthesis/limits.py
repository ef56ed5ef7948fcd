"""The bounds on a synthesis run's cost and the keys every result is scored with: plain numbers,
so that the command line can state them in ``--help`` without importing PyTorch."""

__all__ = ["MAX_SIZE", "MAX_STEPS", "MIN_SIZE", "SCORE_KEYS"]

#: Bounds on a run's cost: at most MAX_STEPS steps on at most MAX_SIZE² pixels.
MAX_SIZE = 512
MIN_SIZE = 32  # AlexNet needs 31 px; SSIM 11
MAX_STEPS = 2000
#: The metrics every result is scored with (the registry's values on the saved 8-bit images).
SCORE_KEYS = ("psnr", "ssim", "lpips_alex", "lpips_vgg")
