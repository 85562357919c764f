r"""Ranks free-text labels for one video.

  python -m actionclip_jax.predict --checkpoint=ViT-B-16.pt --video=clip.mp4 \
      --labels="riding a bike,playing guitar"
  python -m actionclip_jax.predict --checkpoint=DIR --video=clip.mp4 --labels_file=kinetics400

  python -m actionclip_jax.predict --checkpoint=WORKDIR --video=clip.mp4

The checkpoint may be an OpenAI CLIP `.pt` (frame averaging, `meanP`), a Hugging Face `CLIPModel`
folder, an open_clip folder or state dict (plain state dicts need `--activation`), an ActionCLIP
training checkpoint, a ViFi-CLIP, Open-VCLIP or FROSTER checkpoint (ViFi-CLIP's with
`--clip=ViT-B-16.pt`, the token embedding its files leave out), a converted directory, or the
workdir of a training run here: a run scores with the prompt templates and objective it trained
with, and without `--labels` ranks its own classes. Frames follow the test protocol: T segment
centres, the short side resized to 256/224 of the input size (bicubic), centre crop, normalised
as the weights expect. ActionCLIP scores each label under the prompt templates (softmax per
template, then the mean; the 16 of ActionCLIP for checkpoints that record none); a recipe's
checkpoint is scored as the recipe scores (ViFi-CLIP: its one template; Open-VCLIP, FROSTER: the
template-ensemble classifier), softmax over the labels.
"""

import json
import sys

import jax
import ml_collections
import numpy as np
from absl import app, flags
from etils import epath

from actionclip_jax import augment, checkpointing, importers, objectives, prompts, runs, scoring
from actionclip_jax import weights
from actionclip_jax.models.clip import ACTIVATIONS
from actionclip_jax.objectives import class_texts, video_text
from actionclip_jax.weights import load_actionclip
from data_pipeline import labels as label_files
from data_pipeline import sampling, transforms, video as video_io

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None,
    "CLIP/ActionCLIP .pt, Hugging Face/open_clip folder, converted dir, or a training run's workdir.",
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
# Objectives whose runs score an ensemble classifier of class texts (`class_texts`' scoring).
CLASS_TEXT_OBJECTIVES = ("class_texts", "weight_interpolation", "froster")
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


def scorer(model, kind: str = "", templates=prompts.TEMPLATES, recorded=None):
    """The objective that scores labels for a checkpoint of `kind` (`load_actionclip`'s info):
    a recipe's (`importers.RECIPES`); a directory converted from a run whose objective scores
    class texts (`recorded`: its `run` metadata) with that run's ensemble classifier; else
    ActionCLIP's with `templates`."""
    recipe = importers.RECIPES.get(kind)
    if recipe is not None:
        return class_texts.bundle(
            model,
            templates=prompts.resolve_templates(recipe["templates"]),
            name_style=recipe["class_names"],
        )
    if recorded and recorded.get("objective") in CLASS_TEXT_OBJECTIVES:
        return class_texts.bundle(
            model, templates=templates, name_style=recorded.get("class_name_style", "verbatim")
        )
    return video_text.bundle(model, templates)


def predict(model, params, frames_uint8, class_names, templates=prompts.TEMPLATES, objective=None,
            kind=""):  # fmt: skip
    """Class probabilities `[C]` for one clip `[T, S, S, 3]` uint8, scored as evaluation does.

    `objective` (default: `scorer(model, kind, templates)`, ActionCLIP's video–text scoring with
    `templates` unless `kind` names a recipe) is how the model scores classes; a training run's
    own is `run_objective(run)`.
    """
    objective = objective or scorer(model, kind, templates)
    video = augment.preprocess_uint8(frames_uint8[None], model.pixel_norm)  # [1, T, S, S, 3]
    video = video.astype(model.dtype)
    text = objective.classes_fn(params, objective.class_info(class_names))  # [K, C, E]
    logits = jax.jit(objective.predict_fn)(params, video, text)  # [1, K, C]
    return np.asarray(scoring.view_scores(logits[:, None]))[0]  # one view


def run_objective(run):
    """The objective a training run (`runs.load_run`) trained, to score as it does."""
    config = ml_collections.ConfigDict(run.meta["config"])
    return objectives.make(config, run.model, run.class_names)


def rank(class_names, probs):
    order = np.argsort(-probs, kind="stable")
    return [{"label": class_names[i], "probability": float(probs[i])} for i in order]


def main(argv):
    del argv
    if not _CHECKPOINT.value or not _VIDEO.value:
        raise app.UsageError("--checkpoint and --video are required")
    if _LABELS.value and _LABELS_FILE.value:
        raise app.UsageError("give at most one of --labels and --labels_file")
    # A training run, or a directory converted from one, records what it scores with: its
    # classes (the default labels), its prompt templates and its objective.
    run = recorded = None
    try:
        if checkpointing.is_run(_CHECKPOINT.value):
            run = runs.load_run(_CHECKPOINT.value)
            recorded = run.meta.get("run")
        elif weights.is_converted(_CHECKPOINT.value):
            recorded = weights.recorded_run(_CHECKPOINT.value)
    except (OSError, ValueError) as e:
        sys.exit(f"predict: error: {e}")
    if _LABELS.value:
        names = parse_label_list(_LABELS.value)
    elif _LABELS_FILE.value:
        names = label_files.read_labels(label_files.resolve_label_file(_LABELS_FILE.value))
    elif recorded:
        names = list(recorded["class_names"])
    else:
        raise app.UsageError("give --labels or --labels_file (a training run has its own classes)")
    if not names:
        raise app.UsageError("the label list is empty: pass at least one label")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise app.UsageError(f"labels must be distinct; repeated: {dup}")
    if not epath.Path(_VIDEO.value).exists():
        raise app.UsageError(f"video not found: {_VIDEO.value}")

    try:
        if run is not None and not _NUM_FRAMES.value:
            model, params, info = run.model, run.params, {"kind": "run", "recipe": ""}
        else:
            model, params, info = load_actionclip(
                _CHECKPOINT.value, num_frames=_NUM_FRAMES.value, activation=_ACTIVATION.value,
                clip_source=_CLIP.value, return_info=True,
            )  # fmt: skip
        frames = test_frames(_VIDEO.value, model.num_frames, model.clip_sizes["image_resolution"])
        if run is not None:  # scored as the run trained: its objective and templates
            objective = run_objective(run)
        else:
            templates = tuple(recorded["templates"]) if recorded else prompts.TEMPLATES
            objective = scorer(model, info["kind"], templates, recorded)
        probs = predict(model, params, frames, names, objective=objective)
    except (OSError, ValueError, ImportError) as e:  # bad files or videos, a .pt without torch
        sys.exit(f"predict: error: {e}")
    ranking = rank(names, probs)
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
