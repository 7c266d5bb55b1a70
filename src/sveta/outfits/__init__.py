"""Outfits: outfit sets (Polyvore, CSV, a synthetic test set), the type-aware compatibility model, its metrics."""
