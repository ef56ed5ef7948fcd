"""Fitted heads in use: an :class:`~core.lpips.engine.Engine` whose LPIPS uses them. The file
format (safetensors with a manifest, official ``.pth`` in and out, the checks on loading) is
:mod:`core.lpips.heads`, where the engine and the drop-in read it too; its names are importable
from here as well.

>>> from core.judgments.features import uniform_heads
>>> engine = engine_with_heads(uniform_heads("alex"), "alex", device="cpu")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from core.lpips.engine import Engine, LpipsNetwork, get_network, resolve_device
from core.lpips.heads import (MANIFEST_FORMAT, HeadsError, _checked, export_pth, head_key, load_heads,  # noqa: F401
                              manifest_path, read_manifest, save_heads)

__all__ = ["HeadsError", "MANIFEST_FORMAT", "engine_from_file", "engine_with_heads", "export_pth", "load_heads",
           "manifest_path", "read_manifest", "save_heads"]


def engine_with_heads(heads: Mapping[str, torch.Tensor], net: str = "alex", version: str = "0.1",
                      device: str | torch.device | None = None, *, origin: str = "fitted",
                      **engine_options: Any) -> Engine:
    """An :class:`~core.lpips.engine.Engine` whose LPIPS uses ``heads`` (the shared backbone's
    weights); ``origin`` names them in titles and rows (a file name, "fitted")."""
    checked = _checked(heads, net, None, allow_official_extras=False)
    dev = resolve_device(device)
    base = get_network(net, version, True, dev)  # its trunk weights are verified and cached already
    network = LpipsNetwork(net, version, True, base.backbone.features_state(), checked, heads_origin=origin)
    if dev.type != "mps":  # the same layout as the shared models (core.lpips.build_network)
        network = network.to(memory_format=torch.channels_last)
    return Engine(network=network.to(dev), **engine_options)


def engine_from_file(path: str | Path, net: str = "alex", version: str = "0.1",
                     device: str | torch.device | None = None, **engine_options: Any) -> Engine:
    """:func:`engine_with_heads` with the heads of a file (:func:`~core.lpips.heads.load_heads`).
    The network is built once per file, as long as the file is unchanged (folder scoring asks
    for its engine once per task)."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
        identity = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        identity = None  # load_heads says what is wrong with the path
    network = _network_from_file(str(path), identity, net, version, resolve_device(device))
    return Engine(network=network, **engine_options)


@lru_cache(maxsize=8)
def _network_from_file(path: str, identity: tuple | None, net: str, version: str, device: torch.device) -> LpipsNetwork:
    return engine_with_heads(load_heads(path, net), net, version, device, origin=Path(path).name).network
