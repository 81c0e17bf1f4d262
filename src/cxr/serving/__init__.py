"""Seed 002's cascade as a service: ``cxr predict`` on files and folders, ``cxr serve`` on the web.

- :mod:`.inputs`: an uploaded or named file to a gray image, checked by decoding it;
- :mod:`.bundle`: where the three modules come from (the pipeline's results, or the MLflow
  model registry), with Module III's thresholds and each module's preset;
- :mod:`.predictor`: the three models loaded once; one image through the cascade + Grad-CAM;
- :mod:`.overlay`: the heatmap drawn over the image;
- :mod:`.report`: the JSON per image, the overlay PNGs and the summary table;
- :mod:`.app`: the FastAPI application and its page; :mod:`.pyfunc`: MLflow's loader.
"""
