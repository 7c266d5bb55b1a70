"""Evaluation runners and metrics."""
