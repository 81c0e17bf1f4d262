"""A Grad-CAM map drawn over the image it explains, at the image's own aspect ratio."""

from __future__ import annotations

import cv2
import numpy as np

from cxr.data.presets import Preset
from cxr.data.transforms import geometry

#: The longer side of the pictures shown and written (pixels).
DISPLAY_SIDE = 512
ALPHA = 0.45


def display(gray: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """``gray`` resized (area) so that its longer side is at most ``side``."""
    h, w = gray.shape
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def draw(gray: np.ndarray, heat: np.ndarray, preset: Preset) -> np.ndarray:
    """RGB (h, w, 3): ``heat`` (the model's size, in [0, 1]) over ``gray``, each display pixel
    taking the heat of where the preset's resize put it (nothing outside the crop)."""
    shown = display(gray)
    h, w = shown.shape
    g = geometry(gray.shape[1], gray.shape[0], preset)
    sx, sy = gray.shape[1] / w, gray.shape[0] / h  # display -> original pixels
    xs = (np.arange(w, dtype=np.float32) + 0.5) * sx * g.sx + g.ox - 0.5
    ys = (np.arange(h, dtype=np.float32) + 0.5) * sy * g.sy + g.oy - 0.5
    map_x, map_y = np.meshgrid(xs, ys)
    warped = cv2.remap(heat.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)  # fmt: skip
    colours = cv2.applyColorMap(np.clip(warped * 255.0 + 0.5, 0, 255).astype(np.uint8),
                                cv2.COLORMAP_JET)  # fmt: skip
    base = cv2.cvtColor(shown, cv2.COLOR_GRAY2BGR)
    blended = cv2.addWeighted(base, 1.0 - ALPHA, colours, ALPHA, 0.0)
    return cv2.cvtColor(blended, cv2.COLOR_BGR2RGB)


def png_bytes(img: np.ndarray) -> bytes:
    """An 8-bit gray (h, w) or RGB (h, w, 3) image as PNG bytes."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("cannot encode the picture as PNG")
    return buffer.tobytes()
