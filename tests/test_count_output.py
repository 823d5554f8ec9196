"""What `kao count` reports beyond the number: a region of interest (`--roi`), head points
(`--points`), the heat map of maps of any resolution, and the series of a video (`--series`,
`--plot`), on real scenes and a real video made from Mall frames."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.optimize import linear_sum_assignment

from kao.cli import main
from kao.crowd import CrowdCount, CrowdCounter, interval
from kao.crowd.heatmap import DIM, draw_count
from kao.crowd.output import count_output
from kao.crowd.plot import plot_series
from kao.crowd.points import head_points
from kao.crowd.roi import Roi, map_cell
from kao.crowd.series import CentredMedian, Row, Sample, smooth
from kao.errors import KaoError
from kao.image import load_image
from tests.conftest import shared_file

MALL = "data/crowd/mall_train"
MALL_FRAME = f"{MALL}/images/seq_000401.jpg"  # 48 people, 640 x 480
STREET = "data/crowd/shanghaitech_B_train/images/IMG_1.jpg"  # 1024 x 768
CLOSE_UP = "data/widerface_val_subset/images/1_Handshaking_Handshaking_1_827.jpg"  # 3 faces
LEFT_HALF = "0,0 0.5,0 0.5,1 0,1"


@pytest.fixture(scope="module")
def counter() -> CrowdCounter:
    return CrowdCounter()


@pytest.fixture(scope="module")
def mall(counter: CrowdCounter) -> tuple[np.ndarray, CrowdCount]:
    rgb = load_image(shared_file(MALL_FRAME))
    return rgb, counter.count(rgb, "trained-mall")


@pytest.fixture(scope="module")
def street(counter: CrowdCounter) -> tuple[np.ndarray, CrowdCount]:
    rgb = load_image(shared_file(STREET))
    return rgb, counter.count(rgb, "density")


def test_an_edge_through_a_cell_counts_its_share() -> None:
    polygon = Roi.parse("0,0 322,0 322,480 0,480").polygon(640, 480)
    shares = polygon.cell_shares((120, 160), (4.0, 4.0))
    assert np.all(shares[:, :80] == 1) and np.all(shares[:, 81:] == 0)
    assert np.allclose(shares[:, 80], 0.5)  # the cell of x 320-324, cut at 322
    triangle = Roi.parse("3,5 250,17 100,300").polygon(640, 480)
    for cell in (4.0, 16.0):
        area = triangle.cell_shares((480 // int(cell), 640 // int(cell)), (cell, cell)).sum()
        assert area * cell**2 == pytest.approx(triangle.area, rel=0.002)


@pytest.mark.parametrize("fixture", ["mall", "street"])
def test_a_region_and_the_rest_sum_to_the_whole(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    rgb, whole = request.getfixturevalue(fixture)
    height, width = rgb.shape[:2]
    assert whole.density is not None
    # the diagonal cuts cells: each cell's shares on the two sides must add up to the cell
    parts = [
        count_output(whole, width, height, roi=f"0,0 {width},0 0,{height}"),
        count_output(whole, width, height, roi=f"{width},0 {width},{height} 0,{height}"),
    ]
    assert sum(p.shown.count for p in parts) == pytest.approx(whole.count, rel=1e-5)
    left = count_output(whole, width, height, roi=LEFT_HALF)
    columns = whole.density.shape[1]
    assert left.shown.count == pytest.approx(
        float(whole.density[:, : columns // 2].sum()), rel=1e-5
    )
    assert 0 < left.shown.count < whole.count
    assert (left.shown.low, left.shown.high) == interval(whole.method, left.shown.count)
    assert left.shown.high < whole.high
    record = left.to_dict()
    assert record["count"] == round(left.shown.count)
    assert record["roi"] == {
        "polygon": [[0.0, 0.0], [width / 2, 0.0], [width / 2, height], [0.0, height]],
        "image_count": round(whole.count),
    }


def test_detection_counts_the_faces_whose_centre_is_inside(counter: CrowdCounter) -> None:
    rgb = load_image(shared_file(CLOSE_UP))
    height, width = rgb.shape[:2]
    whole = counter.count(rgb, "detection")
    centres = [float(f.box[0] + f.box[2]) / 2 for f in whole.faces]
    assert len(centres) >= 2
    cut = (sorted(centres)[0] + sorted(centres)[1]) / 2  # between the two leftmost faces
    region = count_output(
        whole, width, height, roi=f"0,0 {cut},0 {cut},{height} 0,{height}", points=True
    )
    assert region.shown.count == 1 and region.shown.faces == [
        f for f in whole.faces if (f.box[0] + f.box[2]) / 2 < cut
    ]
    assert region.to_dict()["faces"] == 1 and region.points is not None
    assert region.points.shape == (1, 2) and region.points[0, 0] == pytest.approx(min(centres))


def test_head_points_are_peaks_placed_within_a_cell() -> None:
    density = np.zeros((30, 40), np.float32)
    for x, y in ((100.0, 60.0), (420.0, 300.0)):  # image px; cells of 16 px
        ys, xs = np.mgrid[0:30, 0:40]
        blob = np.exp(-(((xs + 0.5) * 16 - x) ** 2 + ((ys + 0.5) * 16 - y) ** 2) / (2 * 16**2))
        density += (blob / blob.sum()).astype(np.float32)
    points = head_points(density, (16.0, 16.0))
    assert points.shape == (2, 2)
    assert sorted(points.tolist()) == [
        pytest.approx([100.0, 60.0], abs=3),
        pytest.approx([420.0, 300.0], abs=3),
    ]
    assert len(head_points(density, (16.0, 16.0), limit=1)) == 1
    assert len(head_points(np.zeros((30, 40), np.float32), (16.0, 16.0))) == 0


def test_head_points_on_a_mall_frame_lie_near_annotated_heads(
    mall: tuple[np.ndarray, CrowdCount],
) -> None:
    _, whole = mall
    truth = np.array(json.loads(shared_file(f"{MALL}/points.json").read_text())["seq_000401.jpg"])
    output = count_output(whole, 640, 480, points=True)
    points = output.points
    assert points is not None and 10 <= len(points) <= round(whole.count)
    distance = np.linalg.norm(points[:, None] - truth[None], axis=2)
    rows, cols = linear_sum_assignment(distance)
    precision = float((distance[rows, cols] <= 20).sum()) / len(points)
    assert precision >= 0.7  # measured 0.88 over ten Mall frames
    assert output.to_dict()["points"][0] == [round(float(v), 1) for v in points[0]]


def test_the_heat_map_of_a_coarse_map_dims_outside_the_region(
    mall: tuple[np.ndarray, CrowdCount],
) -> None:
    rgb, whole = mall
    assert whole.density is not None and whole.density.shape == (30, 40)  # 1/16 of the frame
    plain = draw_count(rgb, whole)
    assert plain.shape == rgb.shape
    level = cv2.resize(whole.density, (640, 480)) / whole.density.max()
    hot, cold = level > 0.5, level < 0.01
    assert (
        np.abs(plain.astype(int) - rgb)[hot].mean()
        > 3 * np.abs(plain.astype(int) - rgb)[cold].mean()
    )
    region = count_output(whole, 640, 480, roi=LEFT_HALF, points=True)
    drawn = draw_count(rgb, region).astype(float)
    right = (slice(100, 480), slice(340, 640))  # below the banner, off the outline
    assert drawn[right].mean() == pytest.approx(plain[right].mean() * DIM, rel=0.02)
    left = (slice(100, 480), slice(0, 300))
    assert drawn[left].mean() > plain[left].mean() * 0.8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10,10 20,20", "at least 3 vertices"),
        ("10,10 20,20 abc", "not a vertex"),
        ("10,10 20;20 30,5", "not a vertex"),
        ("0,0 100,0 nan,50", "not a vertex"),
        ("0,0 700,0 0,100", "outside the 640 x 480"),
        ("10,10 20,20 30,30", "no area"),
        ("0,0 100,100 100,0 0,100", "edges cross"),
    ],
)
def test_a_bad_region_names_the_option(text: str, message: str) -> None:
    with pytest.raises(KaoError, match=message) as error:
        Roi.parse(text).polygon(640, 480)
    assert str(error.value).startswith("--roi")


def test_fractions_place_a_region_on_any_frame() -> None:
    roi = Roi.parse(LEFT_HALF)
    assert roi.fractions and roi.polygon(1024, 768).area == 512 * 768
    assert not Roi.parse("0,0 2,0 0,2").fractions
    assert map_cell((30, 40), 640, 480) == (16.0, 16.0)


def test_the_centred_median_smooths_a_spike_and_keeps_every_frame() -> None:
    counts = [10, 10, 11, 40, 11, 12, 12, 13, 13, 14]
    samples = [Sample(i, i / 2, c, c - 1, c + 1) for i, c in enumerate(counts)]
    median = CentredMedian(2.0)  # one second each side: 2 frames at 2 fps
    ready = median.push(samples[0]) + median.push(samples[1])
    assert ready == []  # frame 0 waits for a second of later frames
    rows = ready + median.push(samples[2])
    for sample in samples[3:]:
        rows += median.push(sample)
    rows += median.flush()
    assert [r.frame for r in rows] == list(range(10))
    expected = [float(np.median(counts[max(0, i - 2) : i + 3])) for i in range(10)]
    assert [r.smoothed for r in rows] == expected
    assert rows[3].count == 40 and rows[3].smoothed == 11
    assert list(smooth(iter(samples), 0.0)) == [
        Row(s.frame, s.time_s, s.count, s.count, s.low, s.high) for s in samples
    ]
    with pytest.raises(KaoError, match="--smooth"):
        CentredMedian(-1)


def _mall_video(path: Path) -> list[Path]:
    frames = sorted(shared_file(f"{MALL}/images").glob("*.jpg"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (640, 480))
    for frame in frames:
        writer.write(cv2.imread(str(frame)))
    writer.release()
    return frames


def test_kao_count_on_a_video_writes_the_series_plot_and_annotated_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "mall.avi"
    frames = _mall_video(video)
    series, plot, annotated = tmp_path / "s.csv", tmp_path / "plot.png", tmp_path / "a.mp4"
    argv = ["count", str(video), "--method", "trained-mall", "--smooth", "1"]
    argv += ["--series", str(series), "--plot", str(plot), "--out", str(annotated), "--jsonl"]
    assert main(argv) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with series.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(frames) == len(printed)
    assert list(rows[0]) == ["frame", "time_s", "count", "smoothed", "low", "high"]
    assert [int(r["frame"]) for r in rows] == list(range(len(frames)))
    assert float(rows[4]["time_s"]) == pytest.approx(1.0)
    counts = [float(r["count"]) for r in rows]
    truth = json.loads(shared_file(f"{MALL}/gt.json").read_text())
    errors = [abs(c - truth[f.name]) for c, f in zip(counts, frames, strict=True)]
    assert float(np.mean(errors)) < 8  # the trained counter on its own camera
    for i, row in enumerate(rows):  # half a second each side: two frames at 4 fps
        window = counts[max(0, i - 2) : i + 3]
        assert float(row["smoothed"]) == pytest.approx(float(np.median(window)), abs=0.01)
        assert float(row["low"]) <= float(row["count"]) <= float(row["high"])
    assert printed[0] == {k: pytest.approx(float(v)) for k, v in rows[0].items()}
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size == (1000, 500)
    capture = cv2.VideoCapture(str(annotated))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    capture.release()

    every = tmp_path / "every.json"
    argv = ["count", str(video), "--method", "trained-mall", "--every", "5", "--max-frames", "12"]
    assert main([*argv, "--roi", LEFT_HALF, "--series", str(every), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    written = json.loads(every.read_text())
    assert [r["frame"] for r in written] == [0, 5, 10] == [r["frame"] for r in summary["rows"]]
    assert all(r["count"] < c for r, c in zip(written, counts[::5], strict=False))


def test_an_interrupted_camera_keeps_what_was_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "mall.avi"
    _mall_video(video)

    def three_then_ctrl_c(*args: object, **kwargs: object) -> Iterator[Sample]:
        for frame in range(3):
            yield Sample(frame, frame / 4, 10.0 + frame, 5.0, 20.0)
        raise KeyboardInterrupt

    monkeypatch.setattr("kao.crowd.series.count_frames", three_then_ctrl_c)
    series, plot = tmp_path / "s.json", tmp_path / "p.png"
    assert main(["count", str(video), "--series", str(series), "--plot", str(plot)]) == 0
    rows = json.loads(series.read_text())  # the JSON list is closed
    assert [r["frame"] for r in rows] == [0, 1, 2] and [r["smoothed"] for r in rows] == [11] * 3
    assert plot.read_bytes().startswith(b"\x89PNG")
    captured = capsys.readouterr()
    assert "interrupted; writing the frames counted so far" in captured.err
    assert "3 frames counted" in captured.out


def test_kao_count_on_an_image_with_a_region_and_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = shared_file(MALL_FRAME)
    out = tmp_path / "out"
    argv = ["count", str(frame), "--method", "trained-mall", "--roi", LEFT_HALF, "--points"]
    assert main([*argv, "--json", "--out", str(out)]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["roi"]["polygon"][1] == [320.0, 0.0]
    assert 0 < record["count"] < record["roi"]["image_count"]
    assert all(x <= 320 for x, _ in record["points"])
    assert Image.open(record["annotated"]).size == (640, 480)
    assert main([*argv]) == 0
    assert "people in the region (range" in capsys.readouterr().out


def test_bad_inputs_give_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = str(shared_file(MALL_FRAME))
    assert main(["count", frame, "--roi", "1,2 3,4"]) == 1
    assert "--roi: a polygon needs at least 3 vertices" in capsys.readouterr().err
    assert main(["count", frame, "--series", str(tmp_path / "s.csv")]) == 1
    assert "--series needs a video or --camera" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 20)
    assert main(["count", str(corrupt)]) == 1
    assert str(corrupt) in capsys.readouterr().err
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (640, 480)).release()
    assert main(["count", str(empty)]) == 1
    assert str(empty) in capsys.readouterr().err
    video = tmp_path / "mall.avi"
    _mall_video(video)
    assert main(["count", str(video), "--roi", "0,0 700,0 0,100"]) == 1
    assert "--roi: vertex 700,0 lies outside the 640 x 480 px image" in capsys.readouterr().err
    assert main(["count", str(video), "--workers", "2"]) == 1
    assert "are for images; a video is counted here" in capsys.readouterr().err
    assert main(["count", str(video), "--plot", str(tmp_path / "plot.jpg")]) == 1
    assert "--plot" in capsys.readouterr().err
    with pytest.raises(KaoError, match="no frame was counted"):
        plot_series([], tmp_path / "p.png")
    assert main(["count", "--camera", "x"]) == 1
    assert "--camera takes a camera number" in capsys.readouterr().err
    assert main(["count", frame, "--camera", "0"]) == 1
    assert "give no INPUT with it" in capsys.readouterr().err
    assert main(["count", "--camera", "63", "--max-frames", "2"]) == 1  # no such camera here
    assert "camera 63: cannot be opened as a video" in capsys.readouterr().err


def test_the_http_api_counts_in_a_region(tmp_path: Path) -> None:
    from kao.server.app import create_app
    from kao.server.settings import Settings
    from tests.serving import local_client

    frame = shared_file(MALL_FRAME)
    files = [("image", ("mall.jpg", frame.read_bytes(), "image/jpeg"))]
    with local_client(create_app(Settings(db=str(tmp_path / "faces.db")))) as client:
        query = {"method": "trained-mall", "roi": LEFT_HALF, "points": "true"}
        answer = client.post("/v1/count", params=query, files=files)
        assert answer.status_code == 200, answer.text
        record = answer.json()
        whole = client.post("/v1/count", params={"method": "trained-mall"}, files=files).json()
        bad = client.post("/v1/count", params={"roi": "1,2 3,4"}, files=files)
        off = client.post("/v1/count", params={"roi": "0,0 900,0 0,90"}, files=files)
        unknown = client.post("/v1/count", params={"method": "magic"}, files=files)
    assert record["image"] == "mall.jpg" and (record["width"], record["height"]) == (640, 480)
    assert record["method"] == "trained-mall" and record["points"]
    assert record["roi"]["image_count"] == whole["count"] > record["count"] > 0
    assert "roi" not in whole and "points" not in whole
    assert bad.status_code == 400 and "--roi" in bad.json()["error"]
    assert off.status_code == 400 and "outside the 640 x 480" in off.json()["error"]
    assert unknown.status_code == 400 and "method must be one of" in unknown.json()["error"]
