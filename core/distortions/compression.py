"""Compression distortions: JPEG encoding and decoding through Pillow (libjpeg) on the CPU."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ..images.tensors import to_uint8
from .spec import Param, _register


@_register(
    "jpeg",
    "JPEG compression",
    "compression",
    "Lossy compression in 8×8 blocks: blocking, ringing and colour bleeding; quality 100 here "
    "means no compression at all.",
    (
        Param("quality", "JPEG quality", 5, 100, 1, 30, 100, "", kind="int",
              help="Encoder quality; 100 = off (not encoded at all), 75 = typical web, 10 = heavy."),
        Param("subsampling", "Chroma subsampling", None, None, None, "4:2:0", None, "", kind="choice",
              choices=("4:2:0", "4:2:2", "4:4:4"),
              help="4:2:0 (what cameras and the web use) halves colour resolution in both directions."),
    ),
)
def jpeg(
    image: torch.Tensor, quality: int, subsampling: str = "4:2:0", *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Encode and decode each image as an 8-bit JPEG with Pillow (libjpeg) at ``quality``.

    ``quality`` 100 returns the input untouched; every other value goes through the codec.

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> y = jpeg(x, 10)
    >>> y.shape, bool((y * 255 - (y * 255).round()).abs().max() < 1e-4)  # 8-bit output
    (torch.Size([1, 3, 16, 16]), True)
    """
    out = []
    for img in image:
        buf = io.BytesIO()
        Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
        buf.seek(0)
        with Image.open(buf) as decoded:
            arr = np.asarray(decoded.convert("RGB"))
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
    return torch.stack(out).to(device=image.device, dtype=image.dtype).div_(255.0)
