"""Accuracy evaluations behind `kao eval`: datasets, protocols and baselines."""
