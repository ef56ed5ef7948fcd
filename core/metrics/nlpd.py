"""NLPD (Laparra, Ballé, Berardino & Simoncelli 2016): normalized Laplacian pyramid distance.

Conventions follow the authors' ``NLP_dist.m`` (https://www.cns.nyu.edu/~lcv/NLPyr/, the
release of the 2016 paper; read here from a copy, SMBU-MM/OF_BIQA ``FR-IQAs/NLP_dist.m``): the
grey image in [0, 1] (here MATLAB ``rgb2gray`` of the 8-bit RGB, divided by 255, as the other
classic metrics take their grey image); a six-level Laplacian pyramid
(``laplacian_pyramid_s``, after Burt & Adelson) with the 5-tap filter ``[.05 .25 .4 .25 .05]``
(outer product): each level is blurred by ``imfilter(..., 'symmetric')`` (mirror padding that
repeats the edge pixel) and every other pixel kept; the low-pass image is expanded by padding one
pixel ``'replicate'``, inserting zeros, ``imfilter`` with ``4 ×`` the filter (zero padding) and
cropping back (``odd`` rows/columns dropped at the end); the sixth level is the low-pass residual.
Each level is divided by ``sigma + conv2(|level|, F2, 'same')`` (a true convolution, zero padded)
with the paper's constants ``sigma = [0.0248 0.0185 0.0179 0.0191 0.0220 0.2782]`` and its 5×5
``F2`` filters, the finest one's ``0.0072`` at row 3, column 5 included. NLPD is the mean over the
six levels of the root-mean-square difference of the normalized levels.

The map is the finest level's absolute normalized difference, ``|Y_ref - Y_dist|`` at full
resolution: what level 1's RMS averages (squared), not a blend of all six levels (the coarser ones
are 2-32× smaller; upsampling them would show detail NLPD does not have). The other levels'
differences are in :class:`NLPDResult` ``levels``.

These conventions reproduce the published values of the authors' MATLAB code on five TID2013
pairs (the calibration table of pyiqa, ``ResultsCalibra/results_official.csv``) to 4e-16.

Where the popular port differs (pyiqa 0.1.16 ``nlpd``): it takes YIQ's luma (0.299, 0.587, 0.114,
unrounded) instead of ``rgb2gray``'s 8-bit levels, and crops every normalization filter to its
central 3×3, which drops the finest filter's ``0.0072`` (about 5e-4 of NLPD on photos); with those
two changes undone it agrees with this module to about 1e-8 (its float32 filters).
``tests/test_metrics_nlpd.py`` shows the agreement and both differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ImageTooSmallError
from ..images.filters import correlate_valid
from ..images.tensors import check_dist, check_unit_batch
from ._levels import PEAK, out_dtype, shared_luma, work_dtype
from .catalog import NLPD_MIN_SIZE
from .registry import MetricContext, MetricScore

__all__ = ["NLPD_LEVELS", "NLPD_MIN_SIZE", "NLPD_SIGMAS", "NLPDReference", "NLPDResult", "nlpd", "prepare_reference",
           "score"]

NLPD_LEVELS = 6
NLPD_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
_TAPS = (0.05, 0.25, 0.4, 0.25, 0.05)  # Burt & Adelson's filter; the 2-D filter is its outer product
_CHUNK_PIXELS = 512 * 512  # images scored together at most, in pixels (see _nlpd)

# The divisive-normalization filters F2 of NLP_dist.m's DN_filters, as (row, column, weight) of
# the 5×5 matrices (0-based); every other entry is 0. The finest level's filter is the only one
# with an entry outside the central 3×3.
_DN_FILTERS: tuple[tuple[tuple[int, int, float], ...], ...] = (
    ((1, 2, 0.1011), (2, 1, 0.1493), (2, 3, 0.1460), (2, 4, 0.0072), (3, 2, 0.1015)),
    ((1, 2, 0.0757), (2, 1, 0.1986), (2, 3, 0.1846), (3, 2, 0.0837)),
    ((1, 2, 0.0477), (2, 1, 0.2138), (2, 3, 0.2243), (3, 2, 0.0467)),
    ((2, 1, 0.2503), (2, 3, 0.2616)),
    ((2, 1, 0.2598), (2, 3, 0.2552)),
    ((2, 1, 0.2215), (2, 3, 0.0717)),
)


def level_sides(side: int) -> list[int]:
    """The side of each of the six levels for an image side ``side`` (``R(1:2:r)``: ⌈side/2⌉)."""
    sides = [side]
    for _ in range(NLPD_LEVELS - 1):
        sides.append((sides[-1] + 1) // 2)
    return sides


@dataclass(frozen=True)
class NLPDReference:
    """The reference's normalized pyramid (six N×1×h×w levels) and what it was made from."""

    levels: tuple[torch.Tensor, ...]
    shape: torch.Size  # the reference batch's N×3×H×W
    out_dtype: torch.dtype


@dataclass(frozen=True)
class NLPDResult:
    """NLPD values (N,), the finest level's ``|normalized difference|`` map (N×1×H×W) and every
    level's (six N×1×h×w tensors, finest first)."""

    value: torch.Tensor
    map: torch.Tensor
    levels: tuple[torch.Tensor, ...]


def _symmetric_index(size: int, pad: int, device: torch.device) -> torch.Tensor:
    """MATLAB ``padarray(..., 'symmetric')`` indices: the mirror repeats the edge pixel
    (``[1:M M:-1:1]`` read periodically), so any pad works even on a short side."""
    mirror = torch.cat([torch.arange(size), torch.arange(size - 1, -1, -1)])
    return mirror[torch.arange(-pad, size + pad) % (2 * size)].to(device)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """``imfilter(x, f'*f)`` on an already padded N×1×h×w plane: the 5×5 'valid' correlation."""
    return correlate_valid(correlate_valid(x, _TAPS, -1), _TAPS, -2)


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """``imfilter(J, filter, 'symmetric')`` then ``R(1:2:r, 1:2:c)``: the separable filter along
    each axis is kept only at the samples that stay (the same sums, a quarter of the work)."""
    h, w = x.shape[-2:]
    rows = _correlate_every_other(x.index_select(-1, _symmetric_index(w, 2, x.device)), -1)
    return _correlate_every_other(rows.index_select(-2, _symmetric_index(h, 2, x.device)), -2)


def _correlate_every_other(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``correlate_valid(x, _TAPS, dim)`` at its outputs 0, 2, 4, ... only."""
    n = (x.shape[dim] - len(_TAPS)) // 2 + 1
    taps = [x.narrow(dim, k, 2 * n - 1).unfold(dim, 1, 2).squeeze(-1) for k in range(len(_TAPS))]
    out = taps[0] * _TAPS[0]
    for tap, weight in zip(taps[1:], _TAPS[1:]):
        out.add_(tap, alpha=weight)
    return out


def _upsample(x: torch.Tensor, odd: tuple[int, int]) -> torch.Tensor:
    """NLP_dist.m's ``upsample(I, odd, filter)``: pad one pixel 'replicate', put ``4·I`` on every
    other pixel of a zero image twice the size, ``imfilter`` (zero padding), crop the border
    (two pixels, and ``odd`` more at the end)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    n, c, h, w = padded.shape
    spread = padded.new_zeros(n, c, 2 * h, 2 * w)
    spread[..., ::2, ::2] = 4.0 * padded
    filtered = _blur(F.pad(spread, (2, 2, 2, 2)))
    return filtered[..., 2 : 2 * h - 2 - odd[0], 2 : 2 * w - 2 - odd[1]]


def _normalize(level: torch.Tensor, index: int) -> torch.Tensor:
    """``L ./ (sigma + conv2(abs(L), F2, 'same'))``: the convolution, whose filters have at most
    five non-zero taps, as shifted multiply-adds on the zero-padded plane."""
    h, w = level.shape[-2:]
    padded = F.pad(level.abs(), (2, 2, 2, 2))
    # conv2 'same' of a 5×5 kernel: out(i, j) = sum F2(a, b) · x(i - a + 2, j - b + 2).
    denominator = torch.full_like(level, NLPD_SIGMAS[index])
    for a, b, weight in _DN_FILTERS[index]:
        denominator.add_(padded[..., 4 - a : 4 - a + h, 4 - b : 4 - b + w], alpha=weight)
    return level / denominator


def _normalized_pyramid(plane: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The six normalized levels of a grey N×1×H×W plane in [0, 1], finest first."""
    levels = []
    current = plane
    for _ in range(NLPD_LEVELS - 1):
        low = _downsample(current)
        odd = (2 * low.shape[-2] - current.shape[-2], 2 * low.shape[-1] - current.shape[-1])
        levels.append(current - _upsample(low, odd))
        current = low
    levels.append(current)  # the low-pass residual
    return tuple(_normalize(level, i) for i, level in enumerate(levels))


def _plane(batch: torch.Tensor, dtype: torch.dtype, scratch: dict | None) -> torch.Tensor:
    return shared_luma(batch, dtype, scratch) / PEAK


def _check_size(ref: torch.Tensor) -> None:
    height, width = ref.shape[-2:]
    if min(height, width) < NLPD_MIN_SIZE:
        raise ImageTooSmallError(
            f"NLPD needs images of at least {NLPD_MIN_SIZE}×{NLPD_MIN_SIZE} pixels, got {width}×{height}: "
            f"each of the {NLPD_LEVELS - 1} levels its pyramid halves must be at least 2 pixels wide. "
            "Use larger images.")


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> NLPDReference:
    """What NLPD needs of the reference (its normalized Laplacian pyramid), computed once."""
    ctx = ctx or MetricContext()
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    levels = _normalized_pyramid(_plane(ref_b, work_dtype(ref_b, ctx.precise), ctx.scratch))
    return NLPDReference(levels, ref_b.shape, out_dtype(ref_b))


def _nlpd(prepared: NLPDReference, dist: torch.Tensor, scratch: dict | None = None) -> NLPDResult:
    first = prepared.levels[0]
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(first.device)
    plane = _plane(dist_b, first.dtype, scratch)
    # A few images at a time: the pyramid's dozen temporaries of a whole batch would leave the
    # CPU's caches (16 images of 512² ran 3× slower per image than one).
    step = max(1, _CHUNK_PIXELS // plane[0].numel())
    values, levels = [], []
    for start in range(0, plane.shape[0], step):
        refs = [r if r.shape[0] == 1 else r[start : start + step] for r in prepared.levels]
        differences = [r - d for r, d in zip(refs, _normalized_pyramid(plane[start : start + step]))]
        values.append(torch.stack([d.square().mean(dim=(1, 2, 3)).sqrt() for d in differences], dim=1).mean(dim=1))
        levels.append([d.abs().to(prepared.out_dtype) for d in differences])
    joined = tuple(torch.cat(parts) for parts in zip(*levels))
    return NLPDResult(torch.cat(values).to(prepared.out_dtype), joined[0], joined)


@torch.no_grad()
def score(prepared: NLPDReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """NLPD of each image in ``dist`` against the prepared reference, with the finest level's map."""
    result = _nlpd(prepared, dist, ctx.scratch if ctx is not None else None)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def nlpd(ref: torch.Tensor, dist: torch.Tensor, return_map: bool = False,
         precise: bool = True) -> torch.Tensor | NLPDResult:
    """Normalized Laplacian pyramid distance (Laparra et al. 2016), one value per image (shape N).

    Lower = more similar (0 = identical), higher = more different. Computed as ``NLP_dist.m``
    does on the 8-bit MATLAB ``rgb2gray`` luma scaled to [0, 1] (see the module docstring for the
    conventions and how pyiqa differs). ``return_map=True`` also returns the finest level's
    absolute normalized difference (full resolution) and every level's. Images must be at least
    17×17. ``precise=False`` computes in float32 on the CPU.

    >>> ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> nlpd(ref, ref).item()
    0.0
    >>> [tuple(level.shape[-2:]) for level in nlpd(ref, ref.flip(-1), return_map=True).levels]
    [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _nlpd(prepare_reference(ref, MetricContext(precise=precise)), dist)
    return result if return_map else result.value
