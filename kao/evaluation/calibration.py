"""Whether probabilities mean what they say: expected calibration error, the accuracy of
confident answers, and the fits that calibrate a model on held-out data (a temperature for a
softmax, a scale and bias for a binary logit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BINS = 15
"""Equal-width confidence bins of `expected_calibration_error`."""
CONFIDENT = 0.9
"""The confidence from which an answer counts as confident in `reliability`."""


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = BINS
) -> float:
    """Expected calibration error of answers given with `confidence` (N,) in [0, 1], `correct`
    (N,) bool: the mean over `bins` equal-width confidence bins of |accuracy - mean confidence|,
    each bin weighted by its share of the answers (a bin holds (lo, hi], the first [0, hi])."""
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or len(confidence) == 0:
        raise ValueError(
            f"need N confidences and N outcomes, got {confidence.shape}, {correct.shape}"
        )
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            error += chosen.mean() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(error)


def reliability(confidence: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """{"ece" (`expected_calibration_error`), "confident_share" (share of answers given with
    at least `CONFIDENT` confidence), "confident_accuracy" (their accuracy; None if none),
    "accuracy"} of answers with `confidence` (N,) and `correct` (N,) bool."""
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    sure = confidence >= CONFIDENT
    return {
        "ece": round(expected_calibration_error(confidence, correct), 4),
        "confident_share": round(float(sure.mean()), 4),
        "confident_accuracy": round(float(correct[sure].mean()), 4) if sure.any() else None,
        "accuracy": round(float(correct.mean()), 4),
    }


def binary_reliability(p_positive: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    """`reliability` of a binary answer: the likelier side of `p_positive` (N,), its
    probability the confidence, against the truth `positive` (N,) bool."""
    p = np.asarray(p_positive, np.float64)
    return reliability(np.maximum(p, 1 - p), (p >= 0.5) == np.asarray(positive, bool))


def fit_scale_bias(logits: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the log-loss of sigmoid(a logit + b) on `logits` (N,) with truth
    `positive` (N,) bool (Newton's method on the two parameters)."""
    design = np.stack([np.asarray(logits, np.float64), np.ones(len(logits))], axis=1)
    y = np.asarray(positive, np.float64)
    theta = np.array([1.0, 0.0])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (p - y)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def tempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) probabilities -> softmax(log(probabilities) / temperature), (N, K) float32: the
    same ranking, sharper for a temperature under 1, softer above."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, None)) / temperature
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def log_scale_minimum(loss: Callable[[float], float], low: float, high: float, steps: int) -> float:
    """The x in [`low`, `high`] (both > 0) minimising `loss(log x)` for a unimodal loss: a
    golden-section search on log x, `steps` steps."""
    lo, hi = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(steps):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the log-loss of `tempered(probabilities, T)` ((N, K),
    labels (N,) class indices): a golden-section search on log T in [1/10, 10]."""
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        p = tempered(probabilities, float(np.exp(log_t)))[rows, labels]
        return float(-np.log(np.clip(p, 1e-12, None)).mean())

    return log_scale_minimum(loss, 0.1, 10.0, 60)
