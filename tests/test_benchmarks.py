"""benchmarks/device_speed.py: its `--tiny` run goes through every kind of row on the CPU (so the
prepared accelerator benchmark cannot rot), and the batch that fits is predicted from peaks."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import device_speed  # noqa: E402

GIB = 2**30


def test_tiny_run_measures_data_training_and_eval_and_says_what_it_skipped(tmp_path):
    out = tmp_path / "speed.json"
    report = device_speed.main(["--tiny", f"--workdir={tmp_path}", f"--json={out}"])
    rows = {device_speed._label(r): r for r in report["rows"]}
    data, train, evaluation = rows["data"], rows["train b=2 remat off xla"], rows["eval b=2 remat off xla"]
    for row in (data, train, evaluation):
        assert row["status"] == "ok", row
    assert data["videos_per_s"] > 0 and data["workers"] == 0
    assert train["videos_per_s"] == pytest.approx(2 * train["devices"] / train["step_s"])
    assert train["model_flops"] > 0 and train["tflops"] > 0 and np.isfinite(train["loss"])
    assert train["mfu"] is None  # a CPU has no peak rate
    assert evaluation["videos_per_s"] > 0 and evaluation["model_flops"] > 0
    cudnn = rows["train b=2 remat off cudnn"]
    assert cudnn["status"] == "skipped" and "NVIDIA GPU" in cudnn["reason"]
    largest = [r for r in report["rows"] if r.get("batch") == "max"]
    assert largest and all(r["status"] == "skipped" and "limit" in r["reason"] for r in largest)
    assert report["verdict"]["keeps_up"] in (True, False)
    assert len(json.loads(out.read_text())["rows"]) == len(report["rows"])


def _row(batch, remat, peak_gib):
    return dict(kind="train", batch=batch, remat=remat, status="ok", peak_bytes=peak_gib * GIB)


def test_largest_batch_is_predicted_from_the_measured_peaks():
    predict = device_speed.predict_max_batch
    # 2 GiB of state and 0.3125 GiB per video without remat.
    rows = [_row(32, "off", 12), _row(64, "off", 22), _row(128, "off", 42)]
    assert predict(rows, "off", 101 * GIB, cap=4096)[0] == 288  # (92.9 - 2) / 0.3125, by 32
    rows.append(_row(128, "nothing_saveable", 7))  # the state + 0.039 GiB per video
    assert predict(rows, "nothing_saveable", 101 * GIB, cap=4096)[0] == 2304
    assert predict(rows, "nothing_saveable", 101 * GIB, cap=1024)[0] == 1024
    # Nothing to predict: no limit (CPU), one point, or no batch above those measured.
    assert predict(rows, "off", None, cap=4096)[0] is None
    assert predict(rows[:1], "off", 101 * GIB, cap=4096)[0] is None
    assert predict(rows, "off", 40 * GIB, cap=4096)[0] is None
