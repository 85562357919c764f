r"""The demo's built-in data set: small synthetic action videos, generated once and cached.

Every video shows one coloured shape sliding across a dark background. Its class is a
sentence saying what the shape does, e.g. ``"a red ring moving left"``:

* colours ``red, green, blue``; shapes ``ring, square, triangle``; motions
  ``left, right, up, down``: 36 classes, in that nested order (colour slowest, motion
  fastest), class id = position in `demo_classes`;
* classes that differ only in the motion have the same frames up to their order in time:
  a left-moving clip played backwards is a right-moving clip, so averaging the frames
  cannot tell them apart; a model has to use the order of the frames.

Held-out combinations (compositional zero-shot). The six classes of
`HELDOUT_COMBINATIONS` never occur in ``train.txt`` or ``val.txt``; their videos are only
in ``heldout.txt``. They are picked Latin-square style: the six ``(colour, shape)`` pairs
with ``shape = colour`` or ``shape = colour + 1`` (mod 3), each given a motion so that no
two held-out classes share two attributes. Every colour, shape and motion, and every
pair of them (colour-shape, colour-motion, shape-motion), still occurs in at least two
seen classes, so a held-out class is a new combination of known words and known visual
parts. ``labels.csv`` lists all 36 classes and every list file uses ids into it, so a
model can be scored against all 36 names; training only ever uses the 30 seen classes as
positives.

Files under the data set root::

    labels.csv        id,name for all 36 classes
    train.txt         <relative video path> <label id>, seen classes only
    val.txt           same format, seen classes only (other videos of them)
    heldout.txt       same format, held-out classes only
    videos/<split>/<id>_<colour>_<shape>_<motion>/<index>.mp4
    MANIFEST.json     parameters and every file with its size; written last

Videos are real H.264 (``libx264``, ``yuv420p``, a keyframe every 16 frames, CRF 20,
8 fps; 32 frames of 64x64 by default) so that the demo reads them through the same decoder
as any real data set. Not 48x48: decord's ``get_batch`` fails on frames 16, 24, 48 or 72
pixels wide (dmlc/decord#336), so generation reads its first video back and refuses a size
decord cannot batch-read.

The frame content is a deterministic function of the parameters: each video draws from its
own generator seeded by ``(seed, split, class id, index)``, so it does not depend on the
counts either. The encoder runs single-threaded without x264's macroblock tree (see
`encode_h264`), which here makes the files byte-identical too; only the content is
promised.

Caching: `make_demo_dataset` returns at once when the root already holds a complete data
set made with the same parameters (the manifest matches and every file it lists is there
with its size). Otherwise it generates into a hidden temporary folder next to the root
and renames it into place, so an interrupted run never leaves a partial data set that
looks complete. It only ever deletes a folder that is a demo data set by its manifest
(and holds nothing the manifest does not list), or an empty one; anything else is an
error.

Usage::

    python -m data_pipeline.synthetic [--root DIR] [--seed 0] [--overwrite]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import shutil
import tempfile
import time
from fractions import Fraction

import av
import numpy as np

COLOURS = ("red", "green", "blue")
SHAPES = ("ring", "square", "triangle")
MOTIONS = ("left", "right", "up", "down")

# Six (colour, shape, motion) combinations kept out of training (see the module docstring).
HELDOUT_COMBINATIONS = (
    ("red", "ring", "left"),
    ("green", "square", "right"),
    ("blue", "triangle", "up"),
    ("red", "square", "down"),
    ("green", "triangle", "left"),
    ("blue", "ring", "right"),
)

FPS = 8
# Shape radius and the distance it travels over a clip, as fractions of the frame side.
RADIUS_RANGE = (0.11, 0.16)
TRAVEL_RANGE = (0.35, 0.6)
CRF = 20
KEYFRAME_INTERVAL = 16

# Bump when the rendering or file layout changes: cached data sets of an older version are
# then regenerated instead of silently reused.
GENERATOR_VERSION = 2
MANIFEST_NAME = "MANIFEST.json"
_MANIFEST_FORMAT = "actionclip_jax synthetic demo data set"

SPLITS = ("train", "val", "heldout")
_SPLIT_CODES = {"train": 0, "val": 1, "heldout": 2}  # Part of each video's seed.

# Unit vectors in image coordinates (x to the right, y downwards).
_DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

_log = logging.getLogger(__name__)


class NotADemoDatasetError(FileExistsError):
    """The target folder holds files that are not a demo data set; nothing was deleted."""


# ------------------------------------------------------------------------------- classes


def class_name(colour: str, shape: str, motion: str) -> str:
    """The class sentence, e.g. ``"a red ring moving left"``."""
    return f"a {colour} {shape} moving {motion}"


def demo_combinations() -> list[tuple[str, str, str]]:
    """All 36 ``(colour, shape, motion)`` triples in class-id order."""
    return [(c, s, m) for c in COLOURS for s in SHAPES for m in MOTIONS]


def demo_classes() -> list[str]:
    """The 36 class names; the id of a class is its index in this list."""
    return [class_name(*combo) for combo in demo_combinations()]


def heldout_class_ids() -> list[int]:
    """Ids (into `demo_classes`) of the held-out combinations, ascending."""
    combos = demo_combinations()
    return sorted(combos.index(combo) for combo in HELDOUT_COMBINATIONS)


def seen_class_ids() -> list[int]:
    """Ids of the 30 classes that appear in ``train.txt`` and ``val.txt``, ascending."""
    heldout = set(heldout_class_ids())
    return [i for i in range(len(demo_combinations())) if i not in heldout]


def default_demo_root() -> str:
    """Where the demo data set is cached: ``$ACTIONCLIP_JAX_DATA`` if set, else
    ``~/.cache/actionclip_jax/demo_v<GENERATOR_VERSION>``."""
    env = os.environ.get("ACTIONCLIP_JAX_DATA")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(
        os.path.expanduser("~"), ".cache", "actionclip_jax", f"demo_v{GENERATOR_VERSION}"
    )


# ----------------------------------------------------------------------------- rendering


def _shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) to a shape centred at the origin.

    Areas are 2.2 r² (triangle), 3.2 r² (square) and 4.0 r² (ring), and r is drawn per clip
    from `RADIUS_RANGE`, which spans a factor of 2.1 in area: size alone does not tell the
    shape. A ring rather than a filled circle: at the model's 32x32 input a disc and a
    square of equal area differ by about a pixel at the corners, and the demo's small ViT,
    trained from scratch as a single-frame shape classifier, still got only 44 % of discs
    and 76 % of squares right after 800 steps; a ring, a square and a triangle it told
    apart without error after 600 (docs/benchmarks.md, "Demo accuracy").
    """
    if shape == "ring":  # Centre line at 1.05 * radius, 0.6 * radius wide.
        return np.abs(np.sqrt(dx * dx + dy * dy) - 1.05 * radius) - 0.3 * radius
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.89 * radius
    if shape == "triangle":
        # Upright equilateral triangle (apex up), circumradius 1.3 * radius; the distance
        # to each edge line is exact, their maximum is a close enough SDF for antialiasing.
        big = 1.3 * radius
        s = np.sqrt(3.0) / 2.0
        return np.maximum(
            np.maximum(dy - big / 2, s * dx - dy / 2 - big / 2), -s * dx - dy / 2 - big / 2
        )
    raise ValueError(f"unknown shape {shape!r}")


def _shape_extent(shape: str, radius: float) -> float:
    """Half-size of the shape's bounding box (pixels), to keep it inside the frame."""
    return {"ring": 1.35 * radius, "square": 0.89 * radius, "triangle": 1.3 * radius}[shape]


def render_clip(
    colour: str, shape: str, motion: str, rng: np.random.Generator, size: int, num_frames: int
) -> np.ndarray:
    """Draws one clip ``[num_frames, size, size, 3]`` uint8 RGB.

    Per clip the generator draws: a dark background colour with a mild linear gradient and
    fixed pixel noise, a few dim grey specks (static distractors), the shape's exact shade,
    its size, its speed and its start position. Fresh noise is added to every frame. The
    shape starts on the side it moves away from and stays wholly inside the frame.
    """
    # Background: dark (each channel 10..60) so that saturated primaries stand out.
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    base = rng.uniform(10.0, 60.0, size=3)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = ((xs - size / 2) * np.cos(angle) + (ys - size / 2) * np.sin(angle)) / size
    background = base + (rng.uniform(0.0, 20.0) * ramp)[..., None]
    background = background + rng.normal(0.0, 2.0, size=(size, size, 3))
    for _ in range(rng.integers(0, 4)):  # Dim grey specks, up to +35 over the background.
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.8, 2.0)
        speck = np.clip(r + 0.5 - np.hypot(xs - cx, ys - cy), 0.0, 1.0)
        background = background + (rng.uniform(15.0, 35.0) * speck)[..., None]
    background = background.astype(np.float32)

    # The shape: one channel high (200..245), the others low (20..60).
    rgb = rng.uniform(20.0, 60.0, size=3)
    rgb[COLOURS.index(colour)] = rng.uniform(200.0, 245.0)
    rgb = rgb.astype(np.float32)
    radius = rng.uniform(*RADIUS_RANGE) * size
    extent = _shape_extent(shape, radius) + 0.5
    lo, hi = extent, size - extent  # Range of the centre that keeps the shape in frame.
    travel = rng.uniform(*TRAVEL_RANGE) * size  # Total distance over the clip.
    travel = min(travel, hi - lo)
    step = travel / max(num_frames - 1, 1)
    ux, uy = _DIRECTIONS[motion]
    along = lo + rng.uniform(0.0, max(hi - lo - travel, 0.0))  # Lower end of the path.
    across = rng.uniform(lo, hi)
    t = np.arange(num_frames, dtype=np.float32)
    start = along if (ux + uy) > 0 else along + travel  # Start opposite to the motion.
    path = start + (ux + uy) * step * t
    if ux != 0:
        cx, cy = path, np.full_like(path, across)
    else:
        cx, cy = np.full_like(path, across), path

    dx = xs[None] - cx[:, None, None]  # [T, S, S]
    dy = ys[None] - cy[:, None, None]
    # Coverage from the signed distance: smooth edges, so sub-pixel motion is visible.
    alpha = np.clip(0.5 - _shape_sdf(shape, dx, dy, radius), 0.0, 1.0)[..., None]
    frames = background[None] * (1.0 - alpha) + rgb * alpha
    # Fresh noise every frame, uniform in -5..5 (std 3.2): integers are several times
    # cheaper to draw than normals, and noise draws dominate the rendering time.
    frames = np.rint(frames) + rng.integers(-5, 6, size=frames.shape, dtype=np.int16)
    return np.clip(frames, 0, 255).astype(np.uint8)


def _clip_rng(seed: int, split: str, class_id: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_CODES[split], class_id, index])


def encode_h264(path: str, frames: np.ndarray, fps: int = FPS) -> None:
    """Writes ``frames`` ``[T, H, W, 3]`` uint8 RGB as an H.264 MP4 (even H and W)."""
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = KEYFRAME_INTERVAL
        # Fixed GOP without scene-cut keyframes. One thread and no macroblock tree make the
        # output reproducible: with mbtree on, the same frames encoded differently from run
        # to run (decoded pixels off by up to ~10 levels in a macroblock, at every size
        # tried); no-asm=1 cured it too, so presumably x264's SIMD code reads uninitialised
        # memory there. mbtree only tunes the rate control, and these clips are tiny.
        stream.options = {
            "preset": "veryfast",  # 2-3x faster than the default; same size and quality here.
            "crf": str(CRF),
            "keyint_min": str(KEYFRAME_INTERVAL),
            "sc_threshold": "0",
            "threads": "1",
            "x264-params": "mbtree=0",
        }
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():  # Flush the delayed frames.
            container.mux(packet)


# ------------------------------------------------------------------------ data set files


def _params(seed, train_per_class, val_per_class, heldout_per_class, size, num_frames) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "heldout_per_class": heldout_per_class,
        "size": size,
        "num_frames": num_frames,
        "fps": FPS,
        "crf": CRF,
        "keyframe_interval": KEYFRAME_INTERVAL,
        "heldout_combinations": [list(c) for c in HELDOUT_COMBINATIONS],
    }


def _result(root: str) -> dict[str, str]:
    return {
        "root": root,
        "train": os.path.join(root, "train.txt"),
        "val": os.path.join(root, "val.txt"),
        "heldout": os.path.join(root, "heldout.txt"),
        "labels": os.path.join(root, "labels.csv"),
    }


def _read_manifest(root: str) -> dict | None:
    """The root's manifest if it is one of ours, else None."""
    try:
        with open(os.path.join(root, MANIFEST_NAME), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != _MANIFEST_FORMAT:
        return None
    if not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def _is_complete(root: str, params: dict) -> bool:
    """True if ``root`` holds a finished data set made with ``params``."""
    manifest = _read_manifest(root)
    if manifest is None or manifest.get("params") != params:
        return False
    if manifest.get("num_files") != len(manifest["files"]):
        return False
    for rel, size in manifest["files"].items():
        try:
            if os.path.getsize(os.path.join(root, rel)) != size:
                return False
        except OSError:
            return False
    return True


def _tree_files(root: str) -> list[str]:
    """Relative paths of every non-directory entry under ``root`` (links included)."""
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def _check_replaceable(root: str) -> None:
    """Raises unless ``root`` may be deleted: it is empty, or a demo data set by its manifest
    that holds nothing else."""
    if not os.path.lexists(root):
        return
    if os.path.islink(root) or not os.path.isdir(root):
        raise NotADemoDatasetError(
            f"{root} exists and is a link or not a folder; not replacing it with the demo "
            "data set. Remove it or pass another root."
        )
    if not os.listdir(root):
        return
    manifest = _read_manifest(root)
    if manifest is None:
        raise NotADemoDatasetError(
            f"{root} is not empty and has no demo {MANIFEST_NAME}: it is not a demo data set, "
            "so it is left alone. Remove it or pass another root (e.g. set "
            "$ACTIONCLIP_JAX_DATA to a new folder)."
        )
    known = set(manifest["files"]) | {MANIFEST_NAME}
    foreign = sorted(f for f in _tree_files(root) if f.replace(os.sep, "/") not in known)
    if foreign:
        raise NotADemoDatasetError(
            f"{root} is a demo data set but also holds files it did not make "
            f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); not deleting "
            "it. Move those files away or pass another root."
        )


def _check_decodable(path: str, num_frames: int, size: int) -> None:
    """Reads ``path`` back the way the data pipeline does (decord ``get_batch``).

    decord cannot batch-read some small widths (16, 24, 48, 72 px among them: it returns
    4-channel frames and ``get_batch`` fails, dmlc/decord#336). A data set of such videos
    would fail only later, in training, so this fails at once instead.
    """
    import decord  # Lazily: only generation needs it.
    from decord._ffi.base import DECORDError

    try:
        frames = decord.VideoReader(path).get_batch(list(range(num_frames))).asnumpy()
    except (DECORDError, RuntimeError, AssertionError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"decord cannot read back {size}x{size} videos ({first[:200]}); a known decord "
            "bug with some small widths (dmlc/decord#336). Use another size, e.g. 64."
        ) from None
    if frames.shape != (num_frames, size, size, 3):
        raise ValueError(
            f"decord reads {path} as {frames.shape}, expected {(num_frames, size, size, 3)}; "
            "use another size, e.g. 64"
        )


def _video_rel_path(split: str, class_id: int, index: int) -> str:
    colour, shape, motion = demo_combinations()[class_id]
    return f"videos/{split}/{class_id:02d}_{colour}_{shape}_{motion}/{index:03d}.mp4"


def _generate(folder: str, params: dict) -> None:
    """Writes the whole data set into the empty ``folder``; the manifest last."""
    names = demo_classes()
    combos = demo_combinations()
    seen, heldout = seen_class_ids(), heldout_class_ids()
    plan = {
        "train": (seen, params["train_per_class"]),
        "val": (seen, params["val_per_class"]),
        "heldout": (heldout, params["heldout_per_class"]),
    }
    files: dict[str, int] = {}

    def write_text(rel: str, text: str) -> None:
        with open(os.path.join(folder, rel), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        files[rel] = os.path.getsize(os.path.join(folder, rel))

    for split in SPLITS:
        class_ids, per_class = plan[split]
        lines = []
        for class_id in class_ids:
            for index in range(per_class):
                rel = _video_rel_path(split, class_id, index)
                path = os.path.join(folder, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                rng = _clip_rng(params["seed"], split, class_id, index)
                clip = render_clip(*combos[class_id], rng, params["size"], params["num_frames"])
                encode_h264(path, clip, params["fps"])
                if not files:
                    _check_decodable(path, params["num_frames"], params["size"])
                files[rel] = os.path.getsize(path)
                lines.append(f"{rel} {class_id}\n")
        write_text(f"{split}.txt", "".join(lines))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name"])
    writer.writerows(enumerate(names))
    write_text("labels.csv", out.getvalue())

    manifest = {
        "format": _MANIFEST_FORMAT,
        "params": params,
        "classes": names,
        "heldout_class_ids": heldout,
        "num_files": len(files),
        "files": files,
    }
    # Written to a side name and renamed: the manifest is either whole or absent.
    side = os.path.join(folder, MANIFEST_NAME + ".partial")
    with open(side, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(side, os.path.join(folder, MANIFEST_NAME))


@contextlib.contextmanager
def _lock(parent: str, name: str):
    """Holds an exclusive lock for generating ``parent/name`` (no-op without fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows: no concurrent generation protection.
        yield
        return
    with open(os.path.join(parent, f".{name}.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_stale(parent: str, name: str) -> None:
    """Deletes temporary folders that a killed generation left (the caller holds the lock)."""
    for entry in os.listdir(parent):
        if entry.startswith((f".{name}.tmp-", f".{name}.old-")):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def make_demo_dataset(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_per_class: int = 24,
    val_per_class: int = 6,
    heldout_per_class: int = 6,
    size: int = 64,
    num_frames: int = 32,
    overwrite: bool = False,
) -> dict[str, str]:
    """Generates the synthetic demo data set in ``root``, or reuses the one already there.

    Args:
      root: Folder of the data set (created if missing). Must be missing, empty, or a demo
        data set written by this function.
      seed: Non-negative integer; the frame content is a function of all the parameters.
      train_per_class: Training videos per seen class (30 classes).
      val_per_class: Validation videos per seen class (other videos of the same classes).
      heldout_per_class: Videos per held-out class (6 classes) in ``heldout.txt``.
      size: Frame height and width in pixels; even, at least 16.
      num_frames: Frames per video, at least 2.
      overwrite: Regenerate even if a complete data set with these parameters is there.

    Returns:
      Absolute paths: ``root``, the list files ``train``, ``val``, ``heldout`` (lines
      ``<video path relative to root> <label id>``) and ``labels`` (``labels.csv``, all 36
      classes).

    Raises:
      NotADemoDatasetError: ``root`` exists and is not an empty folder or a demo data set
        (by its manifest, holding only the files listed there). Nothing is deleted.
      ValueError: A parameter is out of range, or decord cannot read back videos of this
        ``size`` (then nothing is written).
    """
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if train_per_class < 1 or val_per_class < 0 or heldout_per_class < 0:
        raise ValueError(
            "need train_per_class >= 1 and val_per_class, heldout_per_class >= 0, got "
            f"{train_per_class}, {val_per_class}, {heldout_per_class}"
        )
    if size < 16 or size % 2:
        raise ValueError(f"size must be even (yuv420p) and at least 16, got {size}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    params = _params(int(seed), train_per_class, val_per_class, heldout_per_class, size, num_frames)
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    result = _result(root)
    if not overwrite and _is_complete(root, params):
        return result

    parent, name = os.path.dirname(root), os.path.basename(root)
    os.makedirs(parent, exist_ok=True)
    with _lock(parent, name):
        # Another process may have finished the same data set while this one waited.
        if not overwrite and _is_complete(root, params):
            return result
        _check_replaceable(root)  # Before any work: refuse early, delete nothing.
        _remove_stale(parent, name)
        num_seen, num_heldout = len(seen_class_ids()), len(heldout_class_ids())
        num_videos = num_seen * (train_per_class + val_per_class) + num_heldout * heldout_per_class
        _log.info("Generating the demo data set (%d videos) in %s", num_videos, root)
        start = time.perf_counter()
        tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
        try:
            _generate(tmp, params)
            if os.path.lexists(root):
                old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
                os.rename(root, os.path.join(old, "data"))
                os.rename(tmp, root)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _log.info("Demo data set written in %.1f s", time.perf_counter() - start)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", default=None, help="default: default_demo_root()")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train_per_class", type=int, default=24)
    parser.add_argument("--val_per_class", type=int, default=6)
    parser.add_argument("--heldout_per_class", type=int, default=6)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--num_frames", type=int, default=32)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    paths = make_demo_dataset(
        args.root or default_demo_root(),
        seed=args.seed,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        heldout_per_class=args.heldout_per_class,
        size=args.size,
        num_frames=args.num_frames,
        overwrite=args.overwrite,
    )
    print(json.dumps(paths, indent=1))
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
