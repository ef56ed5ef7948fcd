"""Input checks (core/images/tensors.py): a range check is skipped only for the very same, unmodified
tensor that passed it."""

from __future__ import annotations

import pytest
import torch

from core.errors import InputRangeError
from core.images.tensors import check_range, check_unit_batch


def test_a_checked_tensor_modified_in_place_is_checked_again():
    image = torch.rand(1, 3, 8, 8)
    check_unit_batch(image)
    check_unit_batch(image)  # remembered: no second pass needed
    image[0, 0, 0, 0] = 3.0  # in place: the version counter moves
    with pytest.raises(InputRangeError, match="0-255"):
        check_unit_batch(image)


def test_a_view_modified_through_its_base_is_checked_again():
    base = torch.rand(2, 3, 8, 8)
    view = base[1:]
    check_range(view, 0.0, 1.0)
    base.mul_(-1.0)
    with pytest.raises(InputRangeError, match=r"\[-1, 1\]"):
        check_range(view, 0.0, 1.0)


def test_a_wider_range_does_not_vouch_for_a_narrower_one():
    image = torch.full((1, 3, 4, 4), 0.5)
    image[0, 0, 0, 0] = -0.5
    check_range(image, -1.0, 1.0)
    with pytest.raises(InputRangeError):
        check_range(image, 0.0, 1.0)


def test_inference_tensors_are_always_checked():
    with torch.inference_mode():
        image = torch.rand(1, 3, 4, 4)
        check_range(image, 0.0, 1.0)
        image[0, 0, 0, 0] = 5.0
        with pytest.raises(InputRangeError):
            check_range(image, 0.0, 1.0)


def test_nan_is_refused():
    image = torch.rand(1, 3, 4, 4)
    image[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputRangeError, match="NaN"):
        check_unit_batch(image)
