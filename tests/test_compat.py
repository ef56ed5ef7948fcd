"""core.compat against the official lpips==0.1.4 module's helpers: same signatures, same values;
the official README's examples run with `import core.compat as lpips`."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from PIL import Image

from core import compat

official = pytest.importorskip("lpips")

RNG = np.random.default_rng(0)
A = RNG.integers(0, 256, (40, 52, 3), dtype=np.uint8)
B = np.clip(A.astype(int) + RNG.integers(-40, 41, A.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["normalize_tensor", "l2", "psnr", "dssim", "load_image", "tensor2np", "np2tensor",
                                  "tensor2im", "im2tensor", "tensor2vec", "voc_ap"])
def test_same_signature_as_the_official_helper(name):
    ours, theirs = inspect.signature(getattr(compat, name)), inspect.signature(getattr(official, name))
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.default for p in ours.parameters.values()] == [p.default for p in theirs.parameters.values()]


def test_numeric_helpers_equal_the_official():
    feat = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(compat.normalize_tensor(feat), official.normalize_tensor(feat))
    assert compat.l2(A, B) == official.l2(A, B) and compat.l2(A, B, range=1.0) == official.l2(A, B, range=1.0)
    assert compat.psnr(A, B) == official.psnr(A, B) and compat.psnr(A, B, peak=1.0) == official.psnr(A, B, peak=1.0)
    assert compat.psnr(A, A) == np.inf
    t = official.im2tensor(A)
    assert torch.equal(compat.im2tensor(A), t) and compat.im2tensor(A).dtype == torch.float32
    assert np.array_equal(compat.tensor2im(t), official.tensor2im(t))
    assert np.array_equal(compat.tensor2np(t), official.tensor2np(t))
    assert torch.equal(compat.np2tensor(A.astype(np.float32)), official.np2tensor(A.astype(np.float32)))
    vec = torch.randn(3, 7, 1, 1)
    assert np.array_equal(compat.tensor2vec(vec), official.tensor2vec(vec))


@pytest.mark.parametrize("use_07", [False, True])
def test_voc_ap_equals_the_official(use_07):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        rec = np.sort(rng.random(30))
        prec = rng.random(30)
        assert compat.voc_ap(rec, prec, use_07) == pytest.approx(official.voc_ap(rec, prec, use_07), abs=1e-15)


def test_dssim_computes_what_the_official_one_meant():
    # The official dssim calls skimage.measure.compare_ssim (removed); its successor with the same
    # settings is structural_similarity(..., channel_axis=-1) with the default 7×7 uniform window.
    metrics = pytest.importorskip("skimage.metrics")
    for p0, p1, data_range in ((A, B, 255.0), (A / 255.0, B / 255.0, 1.0)):
        ssim = metrics.structural_similarity(p0, p1, data_range=data_range, channel_axis=-1)
        assert compat.dssim(p0, p1, range=data_range) == pytest.approx((1 - ssim) / 2, abs=1e-12)
    assert compat.dssim(A, A) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="same shape"):
        compat.dssim(A, B[:-1])


def test_load_image_gives_the_files_rgb_bytes(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(A).save(path)
    out = compat.load_image(str(path))
    assert out.dtype == np.uint8 and out.shape == A.shape and np.array_equal(out, A)
    grey = tmp_path / "g.jpg"
    Image.fromarray(A[..., 0]).save(grey, quality=100)
    assert compat.load_image(str(grey)).shape == (40, 52, 3)  # grey is repeated to RGB, as OpenCV's IMREAD_COLOR


def test_the_official_readme_example_runs_with_one_import_changed(examples_dir, expected):
    lpips = compat  # `import core.compat as lpips`
    loss_fn = lpips.LPIPS(net="alex", version="0.1")
    ref = lpips.im2tensor(lpips.load_image(str(examples_dir / "ex_ref.png")))
    for name in ("p0", "p1"):
        dist = lpips.im2tensor(lpips.load_image(str(examples_dir / f"ex_{name}.png")))
        with torch.no_grad():
            d = loss_fn.forward(ref, dist)
        assert d.shape == (1, 1, 1, 1)
        assert float(d) == pytest.approx(expected["alex-v0.1-lin"][f"ref_vs_{name}"], abs=1e-5)
    assert json.loads(json.dumps(float(d)))  # a plain float, as the example prints
