r"""Ranks free-text labels for one video.

  python -m actionclip_jax.predict --checkpoint=ViT-B-16.pt --video=clip.mp4 \
      --labels="riding a bike,playing guitar"
  python -m actionclip_jax.predict --checkpoint=DIR --video=clip.mp4 --labels_file=kinetics400

The checkpoint may be an OpenAI CLIP `.pt` (frame averaging, `meanP`), a Hugging Face `CLIPModel`
folder, an open_clip folder or state dict (plain state dicts need `--activation`), an ActionCLIP
training checkpoint or a converted directory. Frames follow the test protocol: T segment centres,
the short side resized to 256/224 of the input size (bicubic), centre crop; each label is scored
under the 16 prompt templates (softmax per template, then the mean).
"""

import json
import sys

import jax
import numpy as np
from absl import app, flags
from etils import epath

from actionclip_jax import augment, prompts, scoring
from actionclip_jax.models.clip import ACTIVATIONS, l2_normalize
from actionclip_jax.weights import load_actionclip
from data_pipeline import labels as label_files
from data_pipeline import sampling, transforms, video as video_io

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "CLIP/ActionCLIP .pt, Hugging Face/open_clip folder or converted dir."
)
_VIDEO = flags.DEFINE_string("video", None, "Video file (anything decord/FFmpeg reads).")
_LABELS = flags.DEFINE_string("labels", None, "Comma-separated label texts.")
_LABELS_FILE = flags.DEFINE_string(
    "labels_file", None, "CSV `id,name` file, or a built-in list: kinetics400, ucf101, hmdb51, ..."
)
_NUM_FRAMES = flags.DEFINE_integer(
    "num_frames", None, "Frames per video (default 8, or what the checkpoint fixes)."
)
_ACTIVATION = flags.DEFINE_enum(
    "activation", None, list(ACTIVATIONS),
    "MLP activation of a plain state dict with OpenAI key names (which does not say it).",
)  # fmt: skip
_TOP = flags.DEFINE_integer("top", 0, "Print only the best N labels (0: all).")
_JSON = flags.DEFINE_string("json", None, "Also write the ranking to this JSON file.")


def parse_label_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    return [n for n in names if n]


def test_frames(path, num_frames: int, input_size: int) -> np.ndarray:
    """The test protocol's view of one video: uint8 `[T, S, S, 3]`."""
    n = video_io.video_num_frames(path)
    frames = video_io.read_video_frames(path, sampling.test_indices(n, num_frames))
    frames = transforms.resize_short_side(frames, input_size * 256 // 224)
    return transforms.center_crop(frames, input_size)


def predict(model, params, frames_uint8, class_names, templates=prompts.TEMPLATES):
    """Class probabilities `[C]` for one clip `[T, S, S, 3]` uint8."""
    video = augment.preprocess_uint8(frames_uint8[None])  # [1, T, S, S, 3]
    encode = jax.jit(lambda p, v: model.apply({"params": p}, v, method=model.encode_video))
    v = l2_normalize(encode(params, video))
    table = prompts.prompt_tokens(class_names, templates, model.clip_sizes["context_length"])
    text = scoring.encode_class_texts(model, params, table)
    return np.asarray(scoring.class_probs(v, text))[0]


def rank(class_names, probs):
    order = np.argsort(-probs, kind="stable")
    return [{"label": class_names[i], "probability": float(probs[i])} for i in order]


def main(argv):
    del argv
    if not _CHECKPOINT.value or not _VIDEO.value:
        raise app.UsageError("--checkpoint and --video are required")
    if bool(_LABELS.value) == bool(_LABELS_FILE.value):
        raise app.UsageError("give exactly one of --labels and --labels_file")
    if _LABELS.value:
        names = parse_label_list(_LABELS.value)
    else:
        names = label_files.read_labels(label_files.resolve_label_file(_LABELS_FILE.value))
    if not names:
        raise app.UsageError("the label list is empty: pass at least one label")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise app.UsageError(f"labels must be distinct; repeated: {dup}")
    if not epath.Path(_VIDEO.value).exists():
        raise app.UsageError(f"video not found: {_VIDEO.value}")

    try:
        model, params = load_actionclip(
            _CHECKPOINT.value, num_frames=_NUM_FRAMES.value, activation=_ACTIVATION.value
        )
        frames = test_frames(_VIDEO.value, model.num_frames, model.clip_sizes["image_resolution"])
    except (OSError, ValueError, ImportError) as e:  # bad files or videos, a .pt without torch
        sys.exit(f"predict: error: {e}")
    ranking = rank(names, predict(model, params, frames, names))
    shown = ranking[: _TOP.value] if _TOP.value else ranking
    width = max(len(r["label"]) for r in shown)
    print(f"{_VIDEO.value}: {model.head} head, {model.num_frames} frames")
    for i, r in enumerate(shown, 1):
        print(f"{i:>4}. {r['label']:<{width}}  {r['probability']:.4f}")
    if _JSON.value:
        out = {"video": _VIDEO.value, "checkpoint": _CHECKPOINT.value, "ranking": ranking}
        epath.Path(_JSON.value).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
