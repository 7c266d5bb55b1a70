"""Embedders: images (and text, for CLIP models) -> L2-normalised float32 vectors, chosen by spec string."""
