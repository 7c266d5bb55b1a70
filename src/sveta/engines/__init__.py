"""Engines: search, complete the look, shop the look, wardrobe and audit over the catalog, index and models."""
