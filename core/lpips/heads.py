"""LPIPS's linear heads on disk (fitted ones, or the official files): a safetensors file with the official key names and a JSON manifest beside it.

``heads.safetensors`` holds ``lin{k}.model.1.weight`` (1×C×1×1 float32), the keys of the official
``.pth`` files, so :func:`export_pth` can write a file that ``lpips.LPIPS(model_path=...)`` loads.
``heads.safetensors.json`` says what the heads are: the network, where the fit started, the data it saw, its
held-out 2AFC, and the sha256 of the safetensors file, which :func:`load_heads` checks.

:func:`load_heads` returns the dict that ``LpipsNetwork(..., heads=...)`` takes, and refuses, with
a message that says what to do: a damaged or truncated file, a file that is not the one the
manifest describes, another network's heads, negative weights (LPIPS's heads are non-negative:
the official training clamps them), NaN or infinite weights. It also reads official ``.pth``
files (the package's own, or a Trainer checkpoint ``*_net_.pth``, whose trunk keys are ignored).

>>> import tempfile, torch
>>> ones = {head_key(k): torch.ones(1, c, 1, 1) for k, c in enumerate(CHANNELS["alex"])}
>>> path = save_heads(tempfile.mkdtemp() + "/ones.safetensors", ones, net="alex",
...                   origin="uniform", data="none")
>>> heads = load_heads(path, "alex")
>>> sorted(heads)[0], tuple(heads["lin1.model.1.weight"].shape)
('lin0.model.1.weight', (1, 192, 1, 1))
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidArgumentError, WeightsError
from .names import CHANNELS

__all__ = ["HeadsError", "MANIFEST_FORMAT", "MAX_HEADS_BYTES", "export_pth", "head_key", "load_heads", "manifest_path",
           "pack_heads", "read_manifest", "save_heads", "unpack_heads"]

MANIFEST_FORMAT = "lpips-explorer fitted heads 1"
_HEAD_KEY = re.compile(r"^lin(\d+)\.model\.1\.weight$")
#: The largest heads file (or bundle member) :func:`unpack_heads` accepts. Heads are small: AlexNet's
#: 1,152 float32 weights take 4.6 kB, SqueezeNet's 2,240 under 10 kB; an official ``.pth`` of
#: heads is about as big. A Trainer checkpoint that also holds the trunk (hundreds of MB) is not
#: a heads file: :func:`load_heads` reads it from disk, an upload does not.
MAX_HEADS_BYTES = 1 << 20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Keys an official .pth (package file or Trainer checkpoint) may hold besides the heads.
_OFFICIAL_EXTRA = re.compile(r"^(net\.|scaling_layer\.)")


def head_key(layer: int) -> str:
    """The official key of layer ``layer``'s head: ``lin{layer}.model.1.weight``."""
    return f"lin{layer}.model.1.weight"


class HeadsError(WeightsError):
    """A heads file is damaged, does not match its manifest, or does not fit the network.

    ``path`` is the file at fault.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest beside a heads file: ``fit.safetensors`` → ``fit.safetensors.json`` (the full
    name, so that a ``fit.pth`` exported beside it is never checked against it)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _which_net(shapes: dict[int, int]) -> str | None:
    for name, channels in CHANNELS.items():
        if shapes == dict(enumerate(channels)):
            return name
    return None


def _checked(state: Mapping[str, Any], net: str, path: Path | None, *, allow_official_extras: bool) -> dict[str, torch.Tensor]:
    """The heads of ``state`` for ``net``, every refusal explained."""
    where = str(path) if path is not None else "The heads"
    if net not in CHANNELS:
        raise InvalidArgumentError(f"Argument `net` must be one of {tuple(CHANNELS)}, got {net!r}.")
    heads: dict[int, torch.Tensor] = {}
    for key, value in state.items():
        match = _HEAD_KEY.match(key)
        if match is None:
            if allow_official_extras and _OFFICIAL_EXTRA.match(key):
                continue  # a Trainer checkpoint also holds the trunk; only the heads are read
            raise HeadsError(f"{where} holds an unexpected entry `{key}`; a heads file holds only "
                             "lin{k}.model.1.weight tensors. Save heads with save_heads().", path)
        if not isinstance(value, torch.Tensor):
            raise HeadsError(f"{where}: `{key}` is a {type(value).__name__}, not a tensor.", path)
        heads[int(match.group(1))] = value
    shapes = {k: int(v.numel()) for k, v in sorted(heads.items())}
    expected = CHANNELS[net]
    if shapes != dict(enumerate(expected)):
        other = _which_net(shapes)
        found = f"{len(shapes)} layers of {tuple(shapes.values())} channels"
        if other is not None:
            raise HeadsError(f"{where} holds heads for {other} ({found}), not {net} ({len(expected)} layers of "
                             f"{expected} channels). Load it with net={other!r}, or fit heads for {net}.", path)
        raise HeadsError(f"{where} holds {found}; {net} needs {len(expected)} layers of {expected} channels. "
                         "The file is not LPIPS heads for this network.", path)
    out = {}
    for k, c in enumerate(expected):
        w = heads[k].detach().to(torch.float32).reshape(1, c, 1, 1).contiguous()
        if not torch.isfinite(w).all():
            raise HeadsError(f"{where}: `{head_key(k)}` holds NaN or infinite weights; the fit diverged or the "
                             "file is damaged. Fit again (a smaller learning rate) or use another file.", path)
        if (w < 0).any():
            i = int(torch.nonzero(w.reshape(-1) < 0)[0])
            raise HeadsError(f"{where}: `{head_key(k)}` has {int((w < 0).sum())} negative weights (e.g. channel {i}: "
                             f"{float(w.reshape(-1)[i]):.4g}). LPIPS heads are non-negative (the official training "
                             "clamps them at 0), so a negative weight would make some differences count as "
                             "similarity. Clamp them (w.clamp(min=0)) or fit again.", path)
        out[head_key(k)] = w
    return out


def save_heads(path: str | os.PathLike, heads: Mapping[str, torch.Tensor], *, net: str, origin: str, data: str,
               heldout_2afc: float | None = None, version: str = "0.1",
               extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``heads`` to ``path`` (safetensors) and its manifest beside it; returns ``path``.

    ``origin`` is where the fit started (``"scratch"``, ``"v0.1"`` …), ``data`` what it was fitted
    on (a folder, a description); ``extra`` adds JSON-serializable fields (epochs, seed,
    history). Both files are written atomically (a reader never sees half a file).
    """
    from safetensors.torch import save as save_bytes

    path = Path(path)
    if path.suffix != ".safetensors":
        raise InvalidArgumentError(f"Heads are saved as safetensors; give a path ending in .safetensors, got {path.name!r}.")
    checked = _checked(heads, net, None, allow_official_extras=False)
    if heldout_2afc is not None and not (isinstance(heldout_2afc, (int, float)) and 0 <= heldout_2afc <= 1):
        raise InvalidArgumentError(f"`heldout_2afc` must be a score in [0, 1] or None, got {heldout_2afc!r}.")
    payload = save_bytes(checked, metadata={"format": MANIFEST_FORMAT, "net": net, "version": version})
    manifest = {
        "format": MANIFEST_FORMAT, "file": path.name, "sha256": _sha256(payload), "net": net, "version": version,
        "channels": list(CHANNELS[net]), "from": origin, "data": data,
        "heldout_2afc": None if heldout_2afc is None else float(heldout_2afc),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **dict(extra or {}),
    }
    text = json.dumps(manifest, indent=2, allow_nan=False)  # refuses NaN in `extra` before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, content in ((path, payload), (manifest_path(path), text.encode())):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)
    return path


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest beside ``path``, or ``None`` when there is none."""
    target = manifest_path(path)
    if not target.is_file():
        return None
    try:
        manifest = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HeadsError(f"{target} could not be read as JSON ({exc}); restore it or delete it to load "
                         f"{Path(path).name} without its record.", target) from None
    if not isinstance(manifest, dict):
        raise HeadsError(f"{target} is not a heads manifest (a JSON object).", target)
    return manifest


def load_heads(path: str | os.PathLike, net: str) -> dict[str, torch.Tensor]:
    """The heads in ``path`` for ``net``, checked, in the format ``LpipsNetwork(..., heads=...)`` takes.

    ``path`` is a ``.safetensors`` file written by :func:`save_heads` (its manifest, when present,
    must match: sha256 and net) or an official ``.pth``. The bytes are read once, then hashed
    and parsed, so a file replaced in between cannot slip past the check.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HeadsError(f"{path} does not exist; give the path of a heads file (.safetensors or .pth).", path) from None
    except OSError as exc:
        raise HeadsError(f"{path} could not be read ({exc}).", path) from None
    manifest = read_manifest(path)
    if manifest is not None:
        recorded = manifest.get("sha256")
        if recorded != _sha256(data):
            raise HeadsError(f"{path} is not the file its manifest {manifest_path(path).name} describes (sha256 "
                             f"{_sha256(data)[:12]}…, manifest {str(recorded)[:12]}…): it was changed or damaged "
                             "after saving. Save the heads again, or restore the file.", path)
        if manifest.get("net") not in (None, net):
            raise HeadsError(f"{path} holds heads for {manifest.get('net')} (see {manifest_path(path).name}), not {net}. "
                             f"Load it with net={manifest.get('net')!r}.", path)
    if path.suffix == ".pth":
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch.load raises many types on damaged input
            raise HeadsError(f"{path} could not be read as a PyTorch state dict ({type(exc).__name__}: {exc}); "
                             "the file is damaged or truncated.", path) from None
        if not isinstance(state, Mapping):
            raise HeadsError(f"{path} holds a {type(state).__name__}, not a state dict of heads.", path)
        return _checked(state, net, path, allow_official_extras=True)
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    try:
        state = load_bytes(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise HeadsError(f"{path} is damaged or truncated: it could not be parsed as safetensors ({exc}). "
                         "Save the heads again, or restore the file.", path) from None
    return _checked(state, net, path, allow_official_extras=False)


def export_pth(heads: Mapping[str, torch.Tensor], path: str | os.PathLike, net: str) -> Path:
    """Write ``heads`` as an official-style ``.pth`` (``torch.save`` of the state dict), which
    ``lpips.LPIPS(net=net, model_path=path)`` loads."""
    path = Path(path)
    checked = _checked(heads, net, None, allow_official_extras=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checked, path)
    return path


def pack_heads(path: str | os.PathLike) -> bytes:
    """A zip holding the heads file ``path`` and its manifest (when there is one), for a download:
    unzipped, ``--heads NAME.safetensors`` and ``LPIPS(model_path=...)`` read it with its record.

    >>> import tempfile
    >>> ones = {head_key(k): torch.ones(1, c, 1, 1) for k, c in enumerate(CHANNELS["alex"])}
    >>> path = save_heads(tempfile.mkdtemp() + "/ones.safetensors", ones, net="alex", origin="uniform", data="none")
    >>> sorted(zipfile.ZipFile(io.BytesIO(pack_heads(path))).namelist())
    ['ones.safetensors', 'ones.safetensors.json']
    """
    path = Path(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(path.name, path.read_bytes())
        if manifest_path(path).is_file():
            bundle.writestr(manifest_path(path).name, manifest_path(path).read_bytes())
    return buffer.getvalue()


def _file_name(name: str) -> str:
    """``name`` reduced to a plain file name (no folders, safe characters) ending in its lower-case
    suffix, ``.safetensors`` or ``.pth``."""
    suffix = ".pth" if str(name).lower().endswith(".pth") else ".safetensors"
    stem = Path(str(name).replace("\\", "/")).name[: -len(suffix)]
    stem = _SAFE_NAME.sub("-", stem).strip(".-")[-80:] or "heads"
    return stem + suffix


def _read_member(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    if info.file_size > MAX_HEADS_BYTES:
        raise HeadsError(f"{what}: `{info.filename}` unpacks to {info.file_size:,} bytes; a heads file is a few kB "
                         f"(at most {MAX_HEADS_BYTES:,} bytes). It is not a heads bundle.")
    with bundle.open(info) as member:  # read at most the limit: a lying header cannot inflate more
        data = member.read(MAX_HEADS_BYTES + 1)
    if len(data) > MAX_HEADS_BYTES:
        raise HeadsError(f"{what}: `{info.filename}` unpacks to more than {MAX_HEADS_BYTES:,} bytes; it is not a heads "
                         "bundle.")
    return data


def unpack_heads(data: bytes, name: str, folder: str | os.PathLike) -> Path:
    """Write uploaded heads into ``folder`` and return the heads file's path there.

    ``data`` is a ``.safetensors`` or ``.pth`` heads file, or a zip from :func:`pack_heads` (the
    heads file and its manifest); ``name`` is the upload's name, used only for its suffix and as a
    plain file name (never as a path). Nothing is checked beyond the sizes and the bundle's shape:
    :func:`load_heads` on the returned path does that (sha256 against the manifest, net, signs).
    """
    what = str(name)[:120] or "The upload"
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidArgumentError(f"`data` must be the file's bytes, got {type(data).__name__}.")
    if len(data) > MAX_HEADS_BYTES:
        raise HeadsError(f"{what} has {len(data):,} bytes; a heads file is a few kB (at most {MAX_HEADS_BYTES:,} "
                         "bytes). A training checkpoint with the whole network is not a heads file: save its heads "
                         "with save_heads() or export_pth().")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lower = str(name).lower()
    if lower.endswith((".safetensors", ".pth")):
        target = folder / _file_name(str(name))
        target.write_bytes(bytes(data))
        manifest_path(target).unlink(missing_ok=True)  # an earlier bundle's manifest must not judge this file
        return target
    if not lower.endswith(".zip"):
        raise HeadsError(f"{what}: a heads file ends in .safetensors or .pth, or is a .zip of one with its manifest; "
                         "got another kind of file.")
    try:
        bundle = zipfile.ZipFile(io.BytesIO(bytes(data)))
        members = [m for m in bundle.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise HeadsError(f"{what} is not a readable zip ({exc}); download the heads again.") from None
    heads = [m for m in members if m.filename.lower().endswith((".safetensors", ".pth"))]
    manifests = [m for m in members if m.filename.lower().endswith(".json")]
    if len(heads) != 1 or len(manifests) > 1 or len(members) != len(heads) + len(manifests):
        listed = ", ".join(m.filename for m in members[:6]) or "nothing"
        raise HeadsError(f"{what} should hold one heads file (.safetensors or .pth) and at most its manifest "
                         f"(.json); it holds {listed}.")
    try:
        payload = _read_member(bundle, heads[0], what)
        record = _read_member(bundle, manifests[0], what) if manifests else None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:  # a damaged member (CRC, truncation)
        raise HeadsError(f"{what} is damaged: `{heads[0].filename}` could not be unpacked ({exc}).") from None
    target = folder / _file_name(heads[0].filename)
    target.write_bytes(payload)
    if record is None:
        manifest_path(target).unlink(missing_ok=True)
    else:
        manifest_path(target).write_bytes(record)
    return target
