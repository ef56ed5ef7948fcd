"""The project's exceptions. Each message says what happened and what to do about it.

Every error derives from :class:`LpipsExplorerError`, so the app and the command line can
catch one type and show ``str(err)`` to a person; the specific classes let callers react
differently (the app offers a crop/resize choice on :class:`ImageSizeMismatchError`, say).
"""

from __future__ import annotations


class LpipsExplorerError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing sentence with the fix."""


class WeightsError(LpipsExplorerError):
    """Network weights are missing, corrupt or do not fit the network."""


class WeightsMissingError(WeightsError):
    """The weights a network needs are not provisioned on this machine."""


class WeightsCorruptError(WeightsError):
    """Weights exist but fail verification (checksum, shapes, unexpected content)."""


class UnsafeWeightsError(WeightsError):
    """A weights file tried to load something other than plain arrays (possible code execution)."""


class ImageLoadError(LpipsExplorerError, ValueError):
    """A file or byte string could not be decoded as an image."""


class ImageTooLargeError(ImageLoadError):
    """The image exceeds the pixel limit (a guard against decompression bombs)."""


class ImageTooSmallError(LpipsExplorerError, ValueError):
    """An image is smaller than the network's smallest accepted input."""


class ImageSizeMismatchError(LpipsExplorerError, ValueError):
    """``ref`` and ``dist`` have different sizes and no crop/resize was requested."""


class InputRangeError(LpipsExplorerError, ValueError):
    """A tensor's values are outside the range the function expects (e.g. 0-255 data)."""


class InputShapeError(LpipsExplorerError, ValueError):
    """A tensor does not have the expected N×C×H×W layout or channel count."""


class InvalidArgumentError(LpipsExplorerError, ValueError):
    """An option (a mode, a network name, a device, a size limit...) has a value the function
    does not accept; the message lists the accepted ones."""
