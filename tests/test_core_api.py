"""The public names of `core` stay importable where users found them, lazily (no torch for the
light ones), and point at the registry-backed implementations."""

from __future__ import annotations

import subprocess
import sys

import core


def test_public_names_import_from_core():
    from core import LPIPS, Engine, compare, load_image, ms_ssim, prepare_reference, psnr, ssim  # noqa: F401
    from core.comparison import compare as comparison_compare
    from core.metrics.ms_ssim import ms_ssim as metric_ms_ssim
    from core.metrics.psnr import psnr as metric_psnr
    from core.metrics.ssim import ssim as metric_ssim

    assert compare is comparison_compare
    assert (psnr, ssim, ms_ssim) == (metric_psnr, metric_ssim, metric_ms_ssim)
    for name in core.__all__:
        assert getattr(core, name) is not None, name


def test_light_names_do_not_import_torch():
    code = "import core, sys; core.NETS; core.VERSIONS; import core.images.samples; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
