"""Scoring whole folders: pairs by file name in two folders (``dirs``), or every pair in one
folder (``allpairs``), as fast as the machine allows and with the values of :func:`core.compare`.

The work is cut into tasks that a runner executes: in this process, or on a cluster (the
``cluster`` package sends the same tasks to Dask workers). A task is a plain function of a
picklable :class:`ScoringSpec` and a block of paths, so any process with this package and the
weights cache can run it; its rows come back in a fixed order, so the output does not depend on
where or in which order the tasks ran.

``allpairs`` costs N backbone passes for N images, not N(N-1)/2 pair calls: each image's state
(LPIPS's normalized features, PSNR's 8-bit levels, SSIM's filtered moments at each scale) is
computed once and kept in a process-wide cache bounded in bytes. Images are grouped by size;
each group is cut into blocks small enough that two blocks' states fit the budget, and blocks
are paired with each other (tiles). Within a tile, :mod:`core.folders.pairwise` turns the states into
every pair's values: LPIPS and PSNR as matrix products (``Σ w (a − b)² = Σ w a² + Σ w b² −
2 Σ w a b``, in float64 on the float32 features, exactly on the integer levels), SSIM and
MS-SSIM by filtering only the cross moment E[xy] per pair (each image's E[x] and E[x²] are
filtered once). Metrics registered later than these four are scored through
:func:`core.compare` (reference prepared once per image).

Decoding runs on a thread pool while the network computes (Pillow releases the GIL while it
decodes), a bounded window of images ahead.

>>> spec = ScoringSpec(metrics=("psnr",))
>>> pairs_of_tile(Tile(group=0, rows=(0, 1, 2), cols=(0, 1, 2)))
[(0, 1), (0, 2), (1, 2)]
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from .. import metrics as registry
from ..errors import LpipsExplorerError
from . import pairwise
from .states import FAST_METRICS, PRECISIONS, ImageState, Row, ScoringSpec

__all__ = [
    "FAST_METRICS", "PRECISIONS", "AllPairsPlan", "ScoringSpec", "Tile", "allpairs_rows", "dirs_pairs",
    "images_in", "pairs_of_tile", "plan_allpairs", "scan_files", "score_dirs", "score_dirs_block", "score_tile",
]

MIB = 1 << 20


# ---------------------------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------------------------

def images_in(directory: Path) -> list[Path]:
    """The image files of a folder, sorted by name (files Pillow would not try are skipped,
    hidden files too; a damaged image is kept: it becomes an error row)."""
    from PIL import Image

    suffixes = set(Image.registered_extensions())
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)


def error_row(ref: str, dist: str, message: str) -> Row:
    return {"ref": ref, "dist": dist, "status": "error", "error": message}


def dirs_pairs(dir0: Path, dir1: Path) -> tuple[list[tuple[str, str]], list[Row]]:
    """Pairs with the same file name (sorted), and an error row for each name in one folder only."""
    files0 = {p.name: p for p in images_in(dir0)}
    files1 = {p.name: p for p in images_in(dir1)}
    pairs = [(str(files0[n]), str(files1[n])) for n in sorted(files0) if n in files1]
    missing = ([error_row(str(files0[n]), "", f"no file named {n} in {dir1}") for n in sorted(set(files0) - set(files1))]
               + [error_row("", str(files1[n]), f"no file named {n} in {dir0}") for n in sorted(set(files1) - set(files0))])
    return pairs, missing


def _load(path: str) -> torch.Tensor:
    from ..images.imageio import load_image

    return load_image(path)


def _load_pair(paths: tuple[str, str], resize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from ..images.imageio import match_size

    ref, dist = _load(paths[0]), _load(paths[1])
    if resize and ref.shape[-2:] != dist.shape[-2:]:
        dist = match_size(ref, dist, how="resize")
    return ref, dist


def _in_order(pool: ThreadPoolExecutor, items: Sequence, work: Callable, window: int) -> Iterator[tuple[Any, Any]]:
    """``(item, result or the LpipsExplorerError it raised)`` in order, ``window`` items decoded ahead."""
    futures: list[Future] = []
    ahead = iter(items)

    def fill():
        while len(futures) < window:
            try:
                item = next(ahead)
            except StopIteration:
                return
            futures.append((item, pool.submit(_catching, work, item)))

    fill()
    while futures:
        item, future = futures.pop(0)
        fill()
        yield item, future.result()


def _catching(work: Callable, item):
    try:
        return work(item)
    except LpipsExplorerError as exc:
        return exc


# ---------------------------------------------------------------------------------------------
# Rows from core.compare (dirs, and the metrics without a pairwise fast path).
# ---------------------------------------------------------------------------------------------

def comparison_row(ref: str, dist: str, result, i: int) -> Row:
    """Row ``i`` of a :class:`~core.comparison.Comparison`, flattened for a table."""
    row: Row = {"ref": ref, "dist": dist, "status": "ok", "error": ""}
    values = result.row(i)
    names = values.get("lpips_layer_names", ())
    for key, value in values.items():
        if key == "lpips_layers":
            row.update({f"lpips_{n}": float(v) for n, v in zip(names, value)})
        elif key != "lpips_layer_names":
            row[key] = value
    return row


def _score_batch(spec: ScoringSpec, engine, refs: torch.Tensor, dists: torch.Tensor,
                 names: list[tuple[str, str]], keys: Sequence[str]) -> list[Row]:
    """``refs[i]`` against ``dists[i]`` (or one ref against every dist); a failing batch falls
    back to single pairs so that one bad pair costs one error row."""
    from ..comparison import compare

    options = dict(metrics=tuple(keys), ssim_mode=spec.ssim_mode, spatial=False, precise=spec.precise)
    try:
        result = compare(engine, refs, dists, **options)
        return [comparison_row(r, d, result, i) for i, (r, d) in enumerate(names)]
    except LpipsExplorerError:
        rows = []
        for i, (r, d) in enumerate(names):
            try:
                one = compare(engine, refs[i:i + 1] if refs.shape[0] > 1 else refs, dists[i:i + 1], **options)
                rows.append(comparison_row(r, d, one, 0))
            except LpipsExplorerError as exc:
                rows.append(error_row(r, d, str(exc)))
        return rows


# ---------------------------------------------------------------------------------------------
# dirs
# ---------------------------------------------------------------------------------------------

def score_dirs(spec: ScoringSpec, pairs: Sequence[tuple[str, str]]) -> Iterator[Row]:
    """One row per pair, in the order of ``pairs``: consecutive pairs of one size are scored in
    batches of ``spec.batch_size`` while the next pairs decode on ``spec.decode_workers`` threads."""
    engine = spec.engine() if pairs else None
    keys = spec.metrics
    batch: list[tuple[torch.Tensor, torch.Tensor, tuple[str, str]]] = []

    def flush() -> list[Row]:
        if not batch:
            return []
        refs = torch.cat([b[0] for b in batch])
        if refs.shape[0] > 1 and all(torch.equal(b[0], batch[0][0]) for b in batch[1:]):
            refs = refs[:1]  # one reference in every pair (a folder of copies): its side is computed once
        dists = torch.cat([b[1] for b in batch])
        rows = _score_batch(spec, engine, refs, dists, [b[2] for b in batch], keys)
        batch.clear()
        return rows

    with ThreadPoolExecutor(max(1, spec.decode_workers), thread_name_prefix="decode") as pool:
        window = max(2 * spec.batch_size, 4 * spec.decode_workers)
        for pair, loaded in _in_order(pool, pairs, lambda p: _load_pair(p, spec.resize_to_ref), window):
            if isinstance(loaded, LpipsExplorerError):
                yield from flush()
                yield error_row(pair[0], pair[1], str(loaded))
                continue
            ref, dist = loaded
            if batch and (ref.shape != batch[0][0].shape or dist.shape != batch[0][1].shape):
                yield from flush()
            batch.append((ref, dist, pair))
            if len(batch) == spec.batch_size:
                yield from flush()
        yield from flush()


def score_dirs_block(spec: ScoringSpec, pairs: Sequence[tuple[str, str]]) -> list[Row]:
    """:func:`score_dirs` on one block, as a list (a cluster task)."""
    return list(score_dirs(spec, pairs))


# ---------------------------------------------------------------------------------------------
# allpairs: scanning, planning.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tile:
    """Pairs between two blocks of one size group (indices into the sorted file list); on the
    diagonal (``rows == cols``) only the pairs i < j."""

    group: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @property
    def diagonal(self) -> bool:
        return self.rows == self.cols

    @property
    def n_pairs(self) -> int:
        n = len(self.rows)
        return n * (n - 1) // 2 if self.diagonal else n * len(self.cols)


def pairs_of_tile(tile: Tile) -> list[tuple[int, int]]:
    """The tile's pairs (i, j), i before j in the file list, row by row."""
    if tile.diagonal:
        return [(i, j) for a, i in enumerate(tile.rows) for j in tile.rows[a + 1:]]
    return [(i, j) for i in tile.rows for j in tile.cols]


@dataclass(frozen=True)
class AllPairsPlan:
    """The tiles of every size group, in output order, with what the scan found."""

    files: tuple[str, ...]
    sizes: tuple[tuple[int, int] | None, ...]  # (height, width), None where loading failed
    errors: tuple[str | None, ...]
    tiles: tuple[Tile, ...]

    @property
    def n_pairs(self) -> int:
        loaded = sum(s is not None for s in self.sizes)
        return loaded * (loaded - 1) // 2


def scan_files(spec: ScoringSpec, paths: Sequence[str], *, warm: bool = False) -> list[tuple[tuple[int, int] | None, str | None]]:
    """Each file's (height, width), or its load error. With ``warm``, the per-image states are
    computed as images arrive (while the next ones decode) and kept for the tiles, as far as
    ``spec.memory_mb`` allows."""
    found: list[tuple[tuple[int, int] | None, str | None]] = []
    cache = _cache(spec) if warm else None
    pending: list[tuple[str, torch.Tensor]] = []

    def compute_pending() -> None:
        if pending and cache is not None:
            try:
                cache.add_batch([p for p, _ in pending], torch.cat([img for _, img in pending]))
            except LpipsExplorerError:
                pass  # the tiles meet the same error and turn it into rows
        pending.clear()

    with ThreadPoolExecutor(max(1, spec.decode_workers), thread_name_prefix="decode") as pool:
        for path, loaded in _in_order(pool, paths, _load, max(2 * spec.batch_size, 4 * spec.decode_workers)):
            if isinstance(loaded, LpipsExplorerError):
                found.append((None, str(loaded)))
                continue
            found.append((tuple(loaded.shape[-2:]), None))
            if cache is None or not cache.has_room():
                continue
            if pending and pending[0][1].shape != loaded.shape:
                compute_pending()
            pending.append((path, loaded))
            if len(pending) == spec.batch_size:
                compute_pending()
        compute_pending()
    return found


def state_bytes(spec: ScoringSpec, height: int, width: int) -> int:
    """Bytes one image's state takes (what the block size is chosen from)."""
    from ..lpips.nets import CHANNELS

    total = 3 * height * width * 4  # the decoded image
    keys = set(spec.metrics)
    if "lpips" in keys:  # layer k's side is about the image's / 4, 8, 16, 16, 16 (AlexNet's strides)
        strides = {"alex": (4, 8, 16, 16, 16), "vgg": (1, 2, 4, 8, 16), "squeeze": (2, 4, 8, 8, 16, 16, 16)}[spec.net]
        total += sum(c * math.ceil(height / s) * math.ceil(width / s) * 8  # float64, see ImageState
                     for c, s in zip(CHANNELS[spec.net], strides))
    if "psnr" in keys:
        total += 3 * height * width * 8
    if keys & {"ssim", "ms_ssim"}:
        channels = 1 if spec.ssim_mode == "reference" else 3
        item = 8 if spec.precise else 4
        scales = 4 / 3 if "ms_ssim" in keys else 1
        total += int(3 * channels * height * width * item * scales)
    return total


def plan_allpairs(spec: ScoringSpec, files: Sequence[str], scanned: Sequence[tuple[tuple[int, int] | None, str | None]],
                  block_size: int | None = None) -> AllPairsPlan:
    """Group the images by size (groups in order of first appearance) and cut each group into
    blocks of at most ``block_size`` images (default: two blocks' states fit ``spec.memory_mb``)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (size, _) in enumerate(scanned):
        if size is not None:
            groups.setdefault(size, []).append(index)
    tiles = []
    for g, (size, members) in enumerate(groups.items()):
        fit = max(2, spec.memory_mb * MIB // (2 * max(1, state_bytes(spec, *size))))
        step = max(1, min(fit, block_size or fit))
        blocks = [tuple(members[k:k + step]) for k in range(0, len(members), step)]
        for p, rows in enumerate(blocks):
            for cols in blocks[p:]:
                tile = Tile(g, rows, cols)
                if tile.n_pairs:
                    tiles.append(tile)
    return AllPairsPlan(tuple(files), tuple(s for s, _ in scanned), tuple(e for _, e in scanned), tuple(tiles))


def leftover_rows(plan: AllPairsPlan) -> Iterator[Row]:
    """After the tiles: an error row for each pair of different sizes (i before j), then one for
    each file that could not be loaded."""
    loaded = [i for i, s in enumerate(plan.sizes) if s is not None]
    for a, i in enumerate(loaded):
        (h0, w0) = plan.sizes[i]
        for j in loaded[a + 1:]:
            (h1, w1) = plan.sizes[j]
            if (h0, w0) != (h1, w1):
                yield error_row(plan.files[i], plan.files[j],
                                f"sizes differ ({w0}×{h0} vs {w1}×{h1}); allpairs compares equal sizes only")
    for i, message in enumerate(plan.errors):
        if message is not None:
            yield error_row(plan.files[i], "", message)


def allpairs_rows(spec: ScoringSpec, plan: AllPairsPlan,
                  run: Callable[[Callable, Iterable], Iterator[list[Row]]] | None = None,
                  on_tile: Callable[[Tile, list[Row]], None] | None = None) -> Iterator[Row]:
    """Every row of the plan, in order: tiles (through ``run``, a runner's ordered map; in this
    process by default), then :func:`leftover_rows`."""
    from functools import partial

    task = partial(score_tile, spec, plan.files)
    results = run(task, plan.tiles) if run is not None else map(task, plan.tiles)
    for tile, rows in zip(plan.tiles, results):
        if on_tile is not None:
            on_tile(tile, rows)
        yield from rows
    yield from leftover_rows(plan)


# ---------------------------------------------------------------------------------------------
# allpairs: per-image states, computed once and cached.
# ---------------------------------------------------------------------------------------------

class StateCache:
    """Per-image states, least recently used first out once ``budget`` bytes are exceeded."""

    def __init__(self, spec: ScoringSpec) -> None:
        self.spec = spec
        self.budget = spec.memory_mb * MIB
        self.used = 0
        self.states: OrderedDict[tuple, ImageState] = OrderedDict()
        self.lock = threading.Lock()

    def has_room(self) -> bool:
        return self.used < self.budget

    def get(self, path: str) -> ImageState | None:
        key = _file_key(path)
        with self.lock:
            state = self.states.get(key)
            if state is not None:
                self.states.move_to_end(key)
            return state

    def put(self, path: str, state: ImageState) -> None:
        key = _file_key(path)
        with self.lock:
            if key in self.states:
                return
            self.states[key] = state
            self.used += state.nbytes
            while self.used > self.budget and len(self.states) > 1:
                _, old = self.states.popitem(last=False)
                self.used -= old.nbytes

    def add_batch(self, paths: Sequence[str], images: torch.Tensor) -> list[ImageState]:
        states = compute_states(self.spec, images)
        for path, state in zip(paths, states):
            self.put(path, state)
        return states


def _file_key(path: str) -> tuple:
    """A file's identity for the cache: a file rewritten since (a long-lived cluster worker
    scoring a folder again) is computed again, not served stale."""
    try:
        st = os.stat(path)
    except OSError:
        return (path,)
    return (path, st.st_mtime_ns, st.st_size)


_caches: dict[tuple, StateCache] = {}
_caches_lock = threading.Lock()


def _cache(spec: ScoringSpec) -> StateCache:
    """The process's cache for this spec (one at a time: a new spec drops the old states)."""
    key = spec.state_key() + (spec.memory_mb,)
    with _caches_lock:
        if key not in _caches:
            _caches.clear()
            _caches[key] = StateCache(spec)
        return _caches[key]


def clear_state_cache() -> None:
    """Forget every cached per-image state (tests, or to free memory)."""
    with _caches_lock:
        _caches.clear()


def _nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


@torch.inference_mode()
def compute_states(spec: ScoringSpec, images: torch.Tensor) -> list[ImageState]:
    """The states of a batch of same-size images (N×3×H×W in [0, 1]); raises the error the
    metric itself raises for images it cannot take (too small, say)."""
    from ..metrics import MetricContext

    engine = spec.engine()
    ctx = MetricContext(engine=engine, ssim_mode=spec.ssim_mode, precise=spec.precise, spatial=False)
    images = images.to(ctx.device)  # the metrics run where the engine runs, as in core.compare
    n = images.shape[0]
    states = [ImageState(image=images[i:i + 1].clone()) for i in range(n)]
    keys = set(spec.metrics)
    if "lpips" in keys:
        roots = pairwise.head_roots(engine)
        for start in range(0, n, spec.batch_size):
            part = engine.reference(images[start:start + spec.batch_size]).features
            # Channels last (the engine's layout): flattening h·w·C costs no copy.
            scaled = [(f.permute(0, 2, 3, 1).double() * r).reshape(f.shape[0], -1) for f, r in zip(part, roots)]
            for k in range(part[0].shape[0]):
                state = states[start + k]
                state.lpips = tuple(g[k].clone() for g in scaled)
                state.lpips_sq = torch.stack([g.dot(g) for g in state.lpips])
                state.lpips_hw = tuple(f.shape[-2] * f.shape[-1] for f in part)
    if "psnr" in keys:
        levels = registry.get("psnr").prepare(images, ctx).levels
        for i in range(n):
            states[i].levels = levels[i].reshape(-1).to(torch.uint8)
    wanted = [k for k in ("ms_ssim", "ssim") if k in keys]
    if wanted and _ssim_moments_apply(spec, images):
        prepared = registry.get(wanted[0]).prepare(images, ctx)  # MS-SSIM's five scales hold SSIM's one
        for i in range(n):
            states[i].moments = tuple(type(m)(m.planes[i:i + 1].clone(), m.mu[i:i + 1].clone(), m.e_xx[i:i + 1].clone())
                                      for m in prepared.scales)
    elif "ssim" in keys:  # too small for MS-SSIM: SSIM's own single scale
        prepared = registry.get("ssim").prepare(images, ctx)
        for i in range(n):
            m = prepared.scales[0]
            states[i].moments = (type(m)(m.planes[i:i + 1].clone(), m.mu[i:i + 1].clone(), m.e_xx[i:i + 1].clone()),)
    for state in states:
        parts = [state.image, state.levels, state.lpips_sq, *(state.lpips or ())]
        for m in state.moments or ():
            parts += [m.planes, m.mu, m.e_xx]
        state.nbytes = _nbytes(*parts)
    return states


def _ssim_moments_apply(spec: ScoringSpec, images: torch.Tensor) -> bool:
    """Whether MS-SSIM scores this size (else it is NaN, as core.compare reports it)."""
    if "ms_ssim" not in spec.metrics:
        return False
    from ..metrics import MetricContext

    return min(images.shape[-2:]) >= registry.get("ms_ssim").minimum(MetricContext())


def _states(spec: ScoringSpec, files: Sequence[str], indices: Sequence[int]) -> dict[int, ImageState]:
    """The states of ``indices``: from the cache, the rest decoded (in parallel) and computed."""
    cache = _cache(spec)
    found = {i: s for i in indices if (s := cache.get(files[i])) is not None}
    missing = [i for i in indices if i not in found]
    if missing:
        with ThreadPoolExecutor(max(1, spec.decode_workers), thread_name_prefix="decode") as pool:
            images = list(pool.map(lambda i: _load(files[i]), missing))
        for start in range(0, len(missing), spec.batch_size):
            part = missing[start:start + spec.batch_size]
            states = compute_states(spec, torch.cat(images[start:start + spec.batch_size]))
            for i, state in zip(part, states):
                found[i] = state
                cache.put(files[i], state)
    return found


# ---------------------------------------------------------------------------------------------
# allpairs: a tile's pairs from the states.
# ---------------------------------------------------------------------------------------------

def score_tile(spec: ScoringSpec, files: Sequence[str], tile: Tile) -> list[Row]:
    """The rows of one tile, in :func:`pairs_of_tile` order (a task: runs anywhere the package
    and the weights are). A metric that cannot take this size turns every pair into an error
    row with that metric's own message, exactly as :func:`core.compare` would."""
    pairs = pairs_of_tile(tile)
    try:
        states = _states(spec, files, sorted(set(tile.rows) | set(tile.cols)))
        return _fast_rows(spec, files, tile, pairs, states)
    except LpipsExplorerError:
        return _slow_rows(spec, files, pairs)


def _slow_rows(spec: ScoringSpec, files: Sequence[str], pairs: Sequence[tuple[int, int]]) -> list[Row]:
    """Pair by pair through core.compare: the path that names each failure."""
    engine = spec.engine()
    rows = []
    for i, j in pairs:
        try:
            ref, dist = _load(files[i]), _load(files[j])
        except LpipsExplorerError as exc:
            rows.append(error_row(files[i], files[j], str(exc)))
            continue
        rows += _score_batch(spec, engine, ref, dist, [(files[i], files[j])], spec.metrics)
    return rows


def _fast_rows(spec: ScoringSpec, files: Sequence[str], tile: Tile, pairs: list[tuple[int, int]],
               states: dict[int, ImageState]) -> list[Row]:
    from ..metrics import MetricContext

    engine = spec.engine()
    ctx = MetricContext(engine=engine, ssim_mode=spec.ssim_mode, precise=spec.precise, spatial=False)
    rows_idx, cols_idx = list(tile.rows), list(tile.cols)
    pos_r = {i: a for a, i in enumerate(rows_idx)}
    pos_c = {j: b for b, j in enumerate(cols_idx)}
    a_idx = [pos_r[i] for i, _ in pairs]
    b_idx = [pos_c[j] for _, j in pairs]
    columns: dict[str, torch.Tensor] = {}
    layer_columns: dict[str, torch.Tensor] = {}
    A = [states[i] for i in rows_idx]
    B = [states[j] for j in cols_idx]
    keys = spec.metrics
    with ThreadPoolExecutor(1, thread_name_prefix="ssim-pairs") as background:
        # SSIM's pairs (compiled, GIL released) run beside LPIPS's and PSNR's matrix products.
        ssim_job = (background.submit(pairwise.ssim_pairs, spec, A, B, tile.diagonal)
                    if ("ssim" in keys or "ms_ssim" in keys) and A[0].moments is not None else None)
        _matrix_columns(engine, keys, A, B, tile, a_idx, b_idx, columns, layer_columns)
        if "ssim" in keys or "ms_ssim" in keys:
            if ssim_job is None:  # too small for MS-SSIM
                columns["ms_ssim"] = torch.full((len(pairs),), math.nan)
            else:
                ssim_values, ms_values = ssim_job.result()
                if "ssim" in keys:
                    columns["ssim"] = ssim_values
                if "ms_ssim" in keys:
                    columns["ms_ssim"] = ms_values
    others = [k for k in keys if k not in FAST_METRICS]
    other_rows = _other_metric_rows(spec, engine, files, tile, pairs, states, others) if others else None
    return _assemble_rows(spec, ctx, engine, files, keys, pairs, columns, layer_columns, other_rows)


def _matrix_columns(engine, keys, A: list[ImageState], B: list[ImageState], tile: Tile, a_idx: list[int],
                    b_idx: list[int], columns: dict, layer_columns: dict) -> None:
    """LPIPS and PSNR of a tile's pairs, from matrix products of the images' states."""
    if "lpips" in keys:
        wanted = torch.zeros(len(A), len(B), dtype=torch.bool)
        wanted[a_idx, b_idx] = True
        layers = pairwise.lpips_matrix(engine, A, A if tile.diagonal else B, wanted)  # a × b × L, float32
        sel = layers[a_idx, b_idx]
        for k, name in enumerate(engine.network.layer_names):
            layer_columns[f"lpips_{name}"] = sel[:, k]
        columns["lpips"] = sel.sum(dim=1)
    if "psnr" in keys:
        columns["psnr"] = pairwise.psnr_matrix(A, A if tile.diagonal else B)[a_idx, b_idx]


def _assemble_rows(spec: ScoringSpec, ctx, engine, files: Sequence[str], keys, pairs: list[tuple[int, int]],
                   columns: dict, layer_columns: dict, other_rows: list[Row] | None) -> list[Row]:
    settings: dict[str, Any] = {}
    if "lpips" in keys:
        settings.update(net=engine.net, version=engine.version, calibrated=engine.lpips)
    for key in keys:
        for name in registry.get(key).settings:
            settings[name] = getattr(ctx, name)
    rows = []
    for n, (i, j) in enumerate(pairs):
        row: Row = {"ref": files[i], "dist": files[j], "status": "ok", "error": ""}
        for key in keys:
            if key in columns:
                row[key] = float(columns[key][n])
            elif other_rows is not None:
                row[key] = other_rows[n][key]
            if key == "lpips":
                row.update({name: float(col[n]) for name, col in layer_columns.items()})
        if other_rows is not None:
            row.update({k: v for k, v in other_rows[n].items() if k not in row})
        row.update(settings)
        rows.append(row)
    return rows


def _other_metric_rows(spec: ScoringSpec, engine, files: Sequence[str], tile: Tile, pairs: list[tuple[int, int]],
                       states: dict[int, ImageState], keys: Sequence[str]) -> list[Row]:
    """Metrics without a pairwise path: each row image prepared once, its partners in batches."""
    from ..comparison import compare, prepare_reference

    by_ref: dict[int, list[int]] = {}
    for i, j in pairs:
        by_ref.setdefault(i, []).append(j)
    found: dict[tuple[int, int], Row] = {}
    for i, partners in by_ref.items():
        prepared = prepare_reference(engine, states[i].image, metrics=tuple(keys), ssim_mode=spec.ssim_mode,
                                     precise=spec.precise)
        for start in range(0, len(partners), spec.batch_size):
            chunk = partners[start:start + spec.batch_size]
            result = compare(engine, prepared, torch.cat([states[j].image for j in chunk]), metrics=tuple(keys),
                             spatial=False)
            for n, j in enumerate(chunk):
                found[(i, j)] = comparison_row(files[i], files[j], result, n)
    return [found[p] for p in pairs]
