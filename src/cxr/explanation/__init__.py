"""Explanation stage: class heatmaps (CAM, Grad-CAM, Grad-CAM++), their localisation of
ground-truth boxes, and overlay figures. Entry point: :func:`cxr.explanation.run.cam`."""
