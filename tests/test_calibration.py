"""Calibration measures and fits (`kao.evaluation.calibration`) on synthetic answers whose
calibration is known."""

from __future__ import annotations

import numpy as np
import pytest

from kao.evaluation.calibration import (
    binary_reliability,
    expected_calibration_error,
    fit_scale_bias,
    fit_temperature,
    reliability,
    tempered,
)


def test_ece_of_overconfident_and_of_calibrated_answers() -> None:
    # 0.9 sure and right 6 times in 10: one bin, error 0.3.
    confidence = np.full(1000, 0.9)
    correct = np.arange(1000) % 10 < 6
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.3)
    # Right with exactly the stated probability: an error of sampling noise only.
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 200_000)
    assert expected_calibration_error(confidence, rng.uniform(size=200_000) < confidence) < 0.01


def test_ece_bins_are_equal_width() -> None:
    # Two answers in different bins (0.5 in (7/15, 8/15], 1.0 in (14/15, 1]), each exact.
    assert expected_calibration_error(np.array([0.5, 0.5, 1.0]), np.array([1, 0, 1])) == 0.0
    # In one bin their errors cancel (mean confidence 0.5, accuracy 0.5); in two they do not.
    assert expected_calibration_error(np.array([0.3, 0.7]), np.array([1, 0]), bins=1) == 0.0
    assert expected_calibration_error(np.array([0.3, 0.7]), np.array([1, 0]), bins=2) == 0.7
    with pytest.raises(ValueError, match="need N"):
        expected_calibration_error(np.array([]), np.array([]))


def test_reliability_counts_confident_answers() -> None:
    report = reliability(np.array([0.95, 0.99, 0.6, 0.9]), np.array([1, 0, 1, 1], bool))
    assert report["confident_share"] == 0.75
    assert report["confident_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["accuracy"] == 0.75
    binary = binary_reliability(np.array([0.05, 0.7]), np.array([False, False]))
    assert binary["accuracy"] == 0.5  # 0.05 male: female, right; 0.7: male, wrong
    assert binary["confident_share"] == 0.5


def test_scale_and_bias_are_recovered() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, 50_000)
    truth = rng.uniform(size=logits.size) < 1 / (1 + np.exp(-(0.5 * logits + 0.3)))
    a, b = fit_scale_bias(logits, truth)
    assert a == pytest.approx(0.5, abs=0.03)
    assert b == pytest.approx(0.3, abs=0.05)


def test_temperature_is_recovered_and_keeps_the_answers() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (20_000, 7))
    true_p = tempered(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 1.0)
    labels = np.array([rng.choice(7, p=row / row.sum()) for row in true_p.astype(np.float64)])
    overconfident = tempered(true_p, 0.5)  # softmax(2 logits): too sure
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(2.0, rel=0.05)
    calibrated = tempered(overconfident, temperature)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), overconfident.argmax(axis=1))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-5)
    right = overconfident.argmax(axis=1) == labels
    before = expected_calibration_error(overconfident.max(axis=1), right)
    after = expected_calibration_error(calibrated.max(axis=1), right)
    assert after < 0.02 < before
