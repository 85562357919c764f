r"""Ranks free-text labels for one video.

  python -m actionclip_jax.predict --checkpoint=ViT-B-16.pt --video=clip.mp4 \
      --labels="riding a bike,playing guitar"
  python -m actionclip_jax.predict --checkpoint=DIR --video=clip.mp4 --labels_file=kinetics400

The checkpoint may be an OpenAI CLIP `.pt` (frame averaging, `meanP`), an ActionCLIP training
checkpoint, a ViFi-CLIP or Open-VCLIP checkpoint (ViFi-CLIP's with `--clip=ViT-B-16.pt`, the
token embedding its files leave out) or a converted directory. Frames follow the test protocol: T
segment centres, the short side resized to 256/224 of the input size (bicubic), centre crop,
normalised as the weights expect. ActionCLIP scores each label under its 16 prompt templates
(softmax per template, then the mean); a recipe's checkpoint is scored as the recipe scores
(ViFi-CLIP: its one template; Open-VCLIP: the 28-template ensemble classifier), softmax over the
labels.
"""

import json
import sys

import jax
import numpy as np
from absl import app, flags
from etils import epath

from actionclip_jax import augment, importers, prompts, scoring
from actionclip_jax.objectives import class_texts, video_text
from actionclip_jax.weights import load_actionclip
from data_pipeline import labels as label_files
from data_pipeline import sampling, transforms, video as video_io

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "CLIP/ActionCLIP .pt or converted dir.")
_VIDEO = flags.DEFINE_string("video", None, "Video file (anything decord/FFmpeg reads).")
_LABELS = flags.DEFINE_string("labels", None, "Comma-separated label texts.")
_LABELS_FILE = flags.DEFINE_string(
    "labels_file", None, "CSV `id,name` file, or a built-in list: kinetics400, ucf101, hmdb51, ..."
)
_NUM_FRAMES = flags.DEFINE_integer(
    "num_frames", None, "Frames per video (default 8, or what the checkpoint fixes)."
)
_TOP = flags.DEFINE_integer("top", 0, "Print only the best N labels (0: all).")
_JSON = flags.DEFINE_string("json", None, "Also write the ranking to this JSON file.")
_CLIP = flags.DEFINE_string(
    "clip", None, "OpenAI CLIP file: the token embedding that ViFi-CLIP checkpoints leave out."
)


def parse_label_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    return [n for n in names if n]


def test_frames(path, num_frames: int, input_size: int) -> np.ndarray:
    """The test protocol's view of one video: uint8 `[T, S, S, 3]`."""
    n = video_io.video_num_frames(path)
    frames = video_io.read_video_frames(path, sampling.test_indices(n, num_frames))
    frames = transforms.resize_short_side(frames, input_size * 256 // 224)
    return transforms.center_crop(frames, input_size)


def scorer(model, kind: str = "", templates=prompts.TEMPLATES):
    """The objective that scores labels for a checkpoint of `kind` (`load_actionclip`'s info):
    a recipe's (`importers.RECIPES`), else ActionCLIP's with `templates`."""
    recipe = importers.RECIPES.get(kind)
    if recipe is None:
        return video_text.bundle(model, templates)
    return class_texts.bundle(
        model,
        templates=prompts.resolve_templates(recipe["templates"]),
        name_style=recipe["class_names"],
    )


def predict(model, params, frames_uint8, class_names, templates=prompts.TEMPLATES, kind=""):
    """Class probabilities `[C]` for one clip `[T, S, S, 3]` uint8, scored as evaluation does
    (`kind`: the checkpoint's, see `scorer`)."""
    objective = scorer(model, kind, templates)
    video = augment.preprocess_uint8(frames_uint8[None], model.pixel_norm)  # [1, T, S, S, 3]
    video = video.astype(model.dtype)
    text = objective.classes_fn(params, objective.class_info(class_names))  # [K, C, E]
    logits = jax.jit(objective.predict_fn)(params, video, text)  # [1, K, C]
    return np.asarray(scoring.view_scores(logits[:, None]))[0]  # one view


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
        model, params, info = load_actionclip(
            _CHECKPOINT.value, num_frames=_NUM_FRAMES.value, clip_source=_CLIP.value,
            return_info=True,
        )  # fmt: skip
        frames = test_frames(_VIDEO.value, model.num_frames, model.clip_sizes["image_resolution"])
    except (OSError, ValueError) as e:  # missing files, bad checkpoints, undecodable videos
        sys.exit(f"predict: error: {e}")
    ranking = rank(names, predict(model, params, frames, names, kind=info["kind"]))
    shown = ranking[: _TOP.value] if _TOP.value else ranking
    width = max(len(r["label"]) for r in shown)
    source = f"{info['recipe']} checkpoint, " if info["recipe"] else ""
    print(f"{_VIDEO.value}: {source}{model.head} head, {model.num_frames} frames")
    for i, r in enumerate(shown, 1):
        print(f"{i:>4}. {r['label']:<{width}}  {r['probability']:.4f}")
    if _JSON.value:
        out = {"video": _VIDEO.value, "checkpoint": _CHECKPOINT.value, "ranking": ranking}
        epath.Path(_JSON.value).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
