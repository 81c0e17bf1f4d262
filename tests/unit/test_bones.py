"""Body-part phantoms: valid images, lesions where their boxes say, determinism, separability."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxr.synth.bones import BODY_PARTS, render_part
from cxr.synth.xray_types import XRAY_TYPES, image_shape, render


def shape_of(part: str, side: int = 64) -> tuple[int, int]:
    return (side // 2, side) if part == "dental" else (side, 3 * side // 4)


@pytest.mark.parametrize("part", BODY_PARTS)
def test_renders_valid_images(part: str) -> None:
    height, width = shape_of(part)
    for seed in range(3):
        img, box = render_part(part, np.random.default_rng(seed), height, width)
        assert img.shape == (height, width)
        assert img.dtype == np.float32
        assert img.min() >= 0 and img.max() <= 1
        assert img.std() > 0.03  # not blank
        assert box is None


@pytest.mark.parametrize("part", BODY_PARTS)
def test_lesion_box_holds_the_change(part: str) -> None:
    height, width = shape_of(part, 96)
    for seed in range(4):
        normal, no_box = render_part(part, np.random.default_rng(seed), height, width)
        abnormal, box = render_part(part, np.random.default_rng(seed), height, width, True)
        assert no_box is None
        x, y, w, h = box
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
        change = np.abs(abnormal - normal)
        assert change.max() > 0.01  # severity varies: some lesions are subtle
        inside = np.zeros_like(change, dtype=bool)
        inside[int(y * height) : int(np.ceil((y + h) * height)),
               int(x * width) : int(np.ceil((x + w) * width))] = True  # fmt: skip
        assert change[inside].sum() / change.sum() > 0.8


def test_deterministic_per_generator() -> None:
    for part in ("hand", "spine", "dental"):
        a, box_a = render_part(part, np.random.default_rng(5), 64, 64, abnormal=True)
        b, box_b = render_part(part, np.random.default_rng(5), 64, 64, abnormal=True)
        c, _ = render_part(part, np.random.default_rng(6), 64, 64, abnormal=True)
        assert np.array_equal(a, b) and box_a == box_b
        assert not np.array_equal(a, c)


def test_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown body part"):
        render_part("tail", np.random.default_rng(0), 32, 32)


def features(kind: str, seed: int) -> np.ndarray:
    """A 32x32 downsampled render, as a classifier on tiny images would see it."""
    rng = np.random.default_rng([seed, XRAY_TYPES.index(kind)])
    height, width = image_shape(kind, 64, rng)
    small = cv2.resize(render(kind, rng, height, width), (32, 32), interpolation=cv2.INTER_AREA)
    return small.ravel()


@pytest.mark.slow
def test_types_are_separable() -> None:
    """Logistic regression on 32x32 pixels tells the 14 types apart well above chance (1/14)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_train, n_test = 50, 20
    data = {k: np.stack([features(k, s) for s in range(n_train + n_test)]) for k in XRAY_TYPES}
    x_train = np.concatenate([v[:n_train] for v in data.values()])
    x_test = np.concatenate([v[n_train:] for v in data.values()])
    y_train = np.repeat(np.arange(len(XRAY_TYPES)), n_train)
    y_test = np.repeat(np.arange(len(XRAY_TYPES)), n_test)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.003, max_iter=300, tol=1e-3))
    accuracy = model.fit(x_train, y_train).score(x_test, y_test)
    print(f"\n14-type logistic regression accuracy on 32x32 pixels: {accuracy:.3f}")
    assert accuracy > 0.45
