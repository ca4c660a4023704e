"""Evaluation metrics: image-distribution distances and clustering scores."""
