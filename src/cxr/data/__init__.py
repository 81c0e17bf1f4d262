"""Images in and out, the uniform index, and preprocessing: decode every image once into a
compact tensor (``cxr preprocess``) and draw sample images (``cxr gallery``)."""
