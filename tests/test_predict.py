"""`python -m actionclip_jax.predict` ranks free-text labels like the original's test path."""

import json
import subprocess
import sys

import numpy as np
import pytest

import media
import reference
import reference_actionclip as ref_ac
from data_pipeline import sampling, video as video_io

# A small CLIP that takes the original test path's 224² input.
SIZES = dict(reference.SMALL, image_resolution=224, vision_patch_size=32, vision_layers=2)
T = 8
LABELS = ["riding a bike", "playing guitar", "walking the dog", "surfing", "juggling balls"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    clip_t = reference.make_reference_clip(SIZES, seed=21)
    fusion_t = ref_ac.make_fusion("Transf", clip_t, T, seed=22)
    path = tmp_path_factory.mktemp("predict") / "actionclip_random.pt"
    ref_ac.save_actionclip_checkpoint(path, clip_t, fusion_t, fp16=True, with_optimizer=False)
    # The reference computes with the fp16-rounded weights the file holds.
    saved = __import__("torch").load(path, weights_only=True)["model_state_dict"]
    clip_t.load_state_dict({k: v.float() for k, v in saved.items()})
    return path, clip_t, fusion_t


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "actionclip_jax.predict", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_predict_on_a_real_clip_matches_the_original_test_path(checkpoint, tmp_path):
    path, clip_t, fusion_t = checkpoint
    video = media.bikes_mp4_path()
    out = tmp_path / "ranking.json"
    proc = _run(f"--checkpoint={path}", f"--video={video}", f"--labels={','.join(LABELS)}",
                f"--json={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in LABELS:  # every label printed exactly once
        assert sum(line.split(".", 1)[-1].strip().startswith(label)
                   for line in proc.stdout.splitlines()) == 1, proc.stdout  # fmt: skip
    got = {r["label"]: r["probability"] for r in json.loads(out.read_text())["ranking"]}
    frames = video_io.read_video_frames(
        video, sampling.test_indices(video_io.video_num_frames(video), T)
    )
    want = ref_ac.reference_eval_probs(clip_t, fusion_t, frames, LABELS, T=T)
    np.testing.assert_allclose([got[n] for n in LABELS], want, atol=1e-3, rtol=0)
    assert abs(sum(got.values()) - 1) < 1e-4


def test_predict_reads_a_label_list_name(checkpoint, tmp_path):
    path, _, _ = checkpoint
    out = tmp_path / "hmdb.json"
    proc = _run(f"--checkpoint={path}", f"--video={media.bikes_mp4_path()}",
                "--labels_file=hmdb51", "--top=3", f"--json={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranking = json.loads(out.read_text())["ranking"]
    assert len(ranking) == 51 and "ride bike" in {r["label"] for r in ranking}
    assert len([ln for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]) == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["--video={missing}", "--labels=a,b"], "video not found"),
        (["--video={garbage}", "--labels=a,b"], "garbage.mp4"),
        (["--video={bikes}", "--labels= , ,"], "label list is empty"),
        (["--video={bikes}", "--labels=a,a"], "labels must be distinct"),
    ],
)
def test_predict_bad_input_is_a_clear_error(checkpoint, tmp_path, args, message):
    path, _, _ = checkpoint
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 not a video" * 100)
    fill = dict(missing=tmp_path / "nope.mp4", garbage=garbage, bikes=media.bikes_mp4_path())
    proc = _run(f"--checkpoint={path}", *[a.format(**fill) for a in args])
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
