"""Thresholds users can set: the per-model false-accept-rate table, `--threshold` / `--far` in
verify, identify and group (CLI, Python, HTTP), and the calibrated `far` of a verification."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from kao.cli import main
from kao.errors import KaoError
from kao.evaluation import lfw
from kao.gallery.database import FaceDatabase
from kao.recognition import FaceEmbedder, verify
from kao.recognition.embedder import DEFAULT_MODEL, RECOGNITION_MODELS
from kao.recognition.verify import (
    CALIBRATIONS,
    FAR_TABLES,
    decision_threshold,
    false_accept_rate,
    similarity,
    threshold_at_far,
)
from tests.conftest import lfw_photo as photo

COLIN = [photo("Colin_Powell", n) for n in (40, 49)]
TONY = photo("Tony_Blair", 18)
TWO_PEOPLE = [photo("Tony_Blair", 48), photo("Tony_Blair", 53)]
TWO_PEOPLE += [photo("Gerhard_Schroeder", 17), photo("Gerhard_Schroeder", 25)]
"""Two one-face photos each of two people."""


@pytest.mark.parametrize("model", RECOGNITION_MODELS)
def test_far_table_is_monotone_and_brackets_the_calibrated_threshold(model: str) -> None:
    """Each model's table runs from FAR 0.1 down to 1e-5 (the rates `kao eval lfw` reports),
    with distances falling as the rate falls; the calibrated threshold lies inside it."""
    rates, distances = np.array(FAR_TABLES[model]).T
    assert tuple(rates) == lfw.FARS
    assert np.all(np.diff(distances) < 0)
    assert distances[-1] < CALIBRATIONS[model].threshold < distances[0]
    for rate, limit in FAR_TABLES[model]:
        assert threshold_at_far(rate, model) == pytest.approx(limit)
        assert false_accept_rate(limit, model) == pytest.approx(rate)


@pytest.mark.parametrize("model", RECOGNITION_MODELS)
def test_similarity_spreads_over_its_range_alike_for_every_model(model: str) -> None:
    """0.9 where 1 in 100,000 strangers match, 0.5 at the calibrated threshold, 0.2 where 1 in
    10 do; strictly falling, so a close pair no longer reads 100%."""
    table = dict(FAR_TABLES[model])
    assert similarity(table[1e-5], model) == pytest.approx(0.9)
    assert similarity(CALIBRATIONS[model].threshold, model) == pytest.approx(0.5)
    assert similarity(table[1e-1], model) == pytest.approx(0.2)
    values = [similarity(d, model) for d in np.linspace(0.0, 2.0, 201)]
    assert np.all(np.diff(values) < 0) and values[0] == 1.0 and values[-1] == 0.0
    assert similarity(table[1e-5] * 0.9, model) < 0.95


def test_far_interpolates_log_linearly_and_refuses_outside_the_table() -> None:
    """Between two points the distance moves linearly in log10(far): FAR 10^-3.5 is the
    midpoint of 1e-3 and 1e-4; the reported rate is clamped to the table's ends; a rate outside
    it, both settings at once, or a threshold that is no distance is refused with the reason."""
    model = "dlib_resnet_v1"
    table = dict(FAR_TABLES[model])
    middle = threshold_at_far(10**-3.5, model)
    assert middle == pytest.approx((table[1e-3] + table[1e-4]) / 2)
    assert math.log10(false_accept_rate(middle, model)) == pytest.approx(-3.5)
    assert false_accept_rate(0.0, model) == pytest.approx(1e-5)
    assert false_accept_rate(2.0, model) == pytest.approx(0.1)
    for far in (1e-6, 0.5, 0.0, math.nan):
        with pytest.raises(KaoError, match=r"outside the calibrated range 1e-05 to 0\.1"):
            threshold_at_far(far, model)
    with pytest.raises(KaoError, match="not both"):
        decision_threshold(model, threshold=0.4, far=1e-3)
    with pytest.raises(KaoError, match="not a distance"):
        decision_threshold(model, threshold=3.0)
    assert decision_threshold(model) == CALIBRATIONS[model].threshold


def test_verify_reports_the_calibrated_far(capsys: pytest.CaptureFixture[str]) -> None:
    """Two photos of Colin Powell match more closely than nearly every pair of strangers (far
    small); Colin Powell and Tony Blair no more closely than many strangers (far large). The
    CLI says it in words."""
    embedder = FaceEmbedder()
    same = verify(*COLIN, embedder=embedder)
    different = verify(COLIN[0], TONY, embedder=embedder)
    assert same.same and same.far <= 1e-4
    assert not different.same and different.far >= 1e-2
    assert same.to_dict()["far"] == float(f"{same.far:.3g}")
    assert main(["verify", str(COLIN[0]), str(TONY)]) == 0
    words = "more than 1 in 10" if different.far >= 0.1 else f"1 in {round(1 / different.far):,}"
    assert f"; {words} strangers would match this closely\n" in capsys.readouterr().out
    assert main(["verify", *map(str, COLIN)]) == 0
    assert "fewer than 1 in 100,000 strangers would match" in capsys.readouterr().out


def test_cli_verify_far_uses_the_tables_distance(capsys: pytest.CaptureFixture[str]) -> None:
    """`kao verify --far 1e-4` decides at the table's distance for FAR 1e-4, `--threshold D`
    at D; both together is a usage error (exit 2), a rate outside the table an error (exit 1)."""
    pair = list(map(str, COLIN))
    assert main(["verify", *pair, "--far", "1e-4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == dict(FAR_TABLES[DEFAULT_MODEL])[1e-4]
    assert main(["verify", *pair, "--threshold", "0.1", "--json"]) == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["threshold"] == 0.1 and strict["same"] is False
    with pytest.raises(SystemExit, match="2"):
        main(["verify", *pair, "--far", "1e-4", "--threshold", "0.3"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["verify", *pair, "--far", "1e-7"]) == 1
    assert "far 1e-07 is outside the calibrated range" in capsys.readouterr().err


def test_identify_and_group_take_threshold_or_far(tmp_path: Path) -> None:
    """A face known at the default threshold is unknown at a tiny `threshold`; `far` picks the
        table's distance; `kao.group` sorts two photos each of two people into two at FAR 1e-3, one
    at a loose threshold and four at a tiny one."""
    from kao.recognition import cluster

    embedder = FaceEmbedder()
    with FaceDatabase(f"sqlite:///{tmp_path / 'g.db'}", embedder) as db:
        db.enroll("c", "colin", [COLIN[0]])
        faces = embedder.embed(COLIN[1])
        assert db.identify_faces("c", faces)[0].person == "colin"
        assert db.identify_faces("c", faces, far=1e-5)[0].person == "colin"
        assert db.identify_faces("c", faces, threshold=0.05)[0].person is None
        with pytest.raises(KaoError, match="not both"):
            db.identify_faces("c", faces, threshold=0.3, far=1e-3)
    for settings, people in (({"far": 1e-3}, 2), ({"threshold": 1.9}, 1), ({"threshold": 0.05}, 4)):
        grouping = cluster.group(TWO_PEOPLE, embedder=embedder, **settings).to_dict()
        assert (grouping["faces"], grouping["people"]) == (4, people), settings
    with pytest.raises(KaoError, match="outside the calibrated range"):
        cluster.group(COLIN, far=2.0, embedder=embedder)


def test_http_threshold_and_far(url: str) -> None:
    """`?far=` on /v1/verify decides at the table's distance and 422s outside the table or
    beside `?threshold=`; /v1/group and identify (SQLite and PostgreSQL) take it too."""
    pytest.importorskip("httpx")
    from kao.server.app import create_app
    from kao.server.settings import Settings
    from tests.serving import local_client

    def files(field: str, *paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
        return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]

    with local_client(create_app(Settings(db=url, analysis=False))) as api:
        pair = files("a", COLIN[0]) + files("b", COLIN[1])
        verified = api.post("/v1/verify?far=1e-3", files=pair)
        assert verified.status_code == 200, verified.text
        assert verified.json()["threshold"] == dict(FAR_TABLES[DEFAULT_MODEL])[1e-3]
        assert verified.json()["far"] <= 1e-4
        for query, reason in (
            ("far=5", "outside the calibrated range"),
            ("far=1e-3&threshold=0.3", "not both"),
        ):
            refused = api.post(f"/v1/verify?{query}", files=pair)
            assert refused.status_code == 422 and reason in refused.json()["error"], refused.text
        for query, people in (("far=1e-3", 2), ("far=0.1&model=dlib_resnet_v1", 1)):
            grouped = api.post(f"/v1/group?{query}", files=files("images", *TWO_PEOPLE))
            assert grouped.status_code == 200 and grouped.json()["people"] == people, grouped.text
        bad_group = api.post("/v1/group?far=1e-9", files=files("images", *COLIN))
        assert bad_group.status_code == 422, bad_group.text

        assert api.post("/v1/collections", json={"name": "c"}).status_code == 201
        enrol = api.post(
            "/v1/collections/c/enroll", files=files("images", COLIN[0]), data={"person": "colin"}
        )
        assert enrol.status_code == 201, enrol.text
        identify = "/v1/collections/c/identify"
        known = api.post(f"{identify}?far=1e-5", files=files("image", COLIN[1])).json()
        assert known["faces"][0]["person"] == "colin"
        unknown = api.post(f"{identify}?threshold=0.05", files=files("image", COLIN[1])).json()
        assert unknown["faces"][0]["person"] is None
        bad = api.post(f"{identify}?far=0.9", files=files("image", COLIN[1]))
        assert bad.status_code == 422 and "outside the calibrated range" in bad.json()["error"]
