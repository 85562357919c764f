r"""Class descriptions: FROSTER's "Name: description" class texts, from a user-supplied JSON file.

FROSTER writes every class as a name and a sentence about it, e.g. `"Apply Eye Makeup: This video
demonstrates the process of applying eye makeup, ..."` (its files were written by a language
model and are not shipped here). Its class texts (`text_prompt` in its
`temporalclip_video_model.py`) are, for each of Open-VCLIP's 28 templates,
`template.format(Name) + " " + the whole string`, and for the bare template the whole string
alone. Config field: `text.descriptions` (the `froster` objective); without a file the texts are
the plain class names under the same templates.

The file (UTF-8 JSON) is one object that maps each class name, exactly as the run's label file
writes it, to its string:

    {
      "ApplyEyeMakeup": "Apply Eye Makeup: This video demonstrates how eye makeup is applied",
      "Archery": "Archery: A person draws a bow and shoots arrows at a target"
    }

Every value is a non-empty string holding a ':' after a non-empty name (the part before the first
':' is what the templates name). The file must describe exactly the classes a run scores: the
training classes and those of every evaluation split (a missing class, or an entry that names no
class of the run, is an error naming the file and the classes; a misspelt name shows up as
both). Each class text must fit the text tower's context (77 tokens for CLIP).

FROSTER's own files (`label_rephrase/*_rephrased_classes.json`) are keyed by class index
instead; this command keys one by the names of a label list, checking the count, and lists the
classes whose name part does not read like the label's (an order that differs):

  python -m actionclip_jax.descriptions --input=ucf101_rephrased_classes.json --labels=ucf101 \
      --output=ucf101_descriptions.json

`--input` may also be a name-keyed file; with several `--labels` the output keeps the classes
of those lists (e.g. the three K600 zero-shot splits out of a file for all of K600).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Mapping, Sequence

import numpy as np
from absl import app, flags

from actionclip_jax import prompts, tokenizer

# FROSTER's bare template: the whole "Name: description" string is the class text.
BARE = "{}"


class DescriptionError(ValueError):
    """A descriptions file that cannot be used; the message names the file and the classes."""


def _shown(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def read_json_object(path) -> dict:
    """The top-level JSON object of `path`, with errors that name the file."""
    from etils import epath  # pylint: disable=import-outside-toplevel

    path = epath.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"class descriptions file {path} does not exist (config field text.descriptions; "
            "'' uses the plain class names)"
        )
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DescriptionError(f"{path} is not valid UTF-8 JSON: {err}") from err
    if not isinstance(obj, dict):
        raise DescriptionError(
            f"{path} must hold one JSON object mapping class names to 'Name: description' "
            f"strings, not a {type(obj).__name__}"
        )
    return obj


def _is_index_keyed(obj: Mapping) -> bool:
    return bool(obj) and all(re.fullmatch(r"\d+", k) for k in obj)


def read_descriptions(path) -> dict[str, str]:
    """A name-keyed descriptions file (module docstring), checked for its form.

    Raises:
      FileNotFoundError: no such file.
      DescriptionError: not JSON, not an object, index-keyed (FROSTER's layout: convert it),
        values that are not "Name: description" strings.
    """
    obj = read_json_object(path)
    if not obj:
        raise DescriptionError(f"{path} holds no class descriptions (an empty object)")
    if _is_index_keyed(obj):
        raise DescriptionError(
            f"{path} is keyed by class index (FROSTER's own layout); key it by the class names "
            f"of its label list: python -m actionclip_jax.descriptions --input={path} "
            "--labels=LABELS --output=NEW.json"
        )
    wrong = [k for k, v in obj.items() if not isinstance(v, str)]
    if wrong:
        kinds = sorted({type(obj[k]).__name__ for k in wrong})
        raise DescriptionError(
            f"{path}: the descriptions of {_shown(wrong)} are {'/'.join(kinds)}, not strings; "
            "each value must be a 'Name: description' string"
        )
    malformed = [k for k, v in obj.items() if not v.partition(":")[0].strip() or ":" not in v]
    if malformed:
        raise DescriptionError(
            f"{path}: the descriptions of {_shown(malformed)} are not 'Name: description' "
            "strings (a non-empty name, a ':', then the description)"
        )
    return dict(obj)


def check_classes(descriptions: Mapping[str, str], class_names: Sequence[str], source) -> None:
    """Fails unless every class of `class_names` has a description (naming the missing ones and
    the file's entries that look like them)."""
    missing = [c for c in class_names if c not in descriptions]
    if not missing:
        return
    unused = [k for k in descriptions if k not in set(class_names)]
    close = []
    for name in missing[:8]:
        match = difflib.get_close_matches(name, unused, n=1, cutoff=0.6)
        if match:
            close.append(f"{match[0]!r} for {name!r}")
    raise DescriptionError(
        f"{source} describes {len(class_names) - len(missing)} of the {len(class_names)} classes "
        f"to score: none for {_shown(missing)}"
        + (f" (misspelt? it has {', '.join(close)})" if close else "")
        + "; keys must be the class names exactly as the label file writes them"
    )


def check_no_extra(descriptions: Mapping[str, str], class_lists, source) -> None:
    """Fails when the file describes classes that no list of `class_lists` has."""
    known = {c for names in class_lists for c in names}
    extra = [k for k in descriptions if k not in known]
    if extra:
        raise DescriptionError(
            f"{source} describes {len(extra)} classes this run never scores: {_shown(extra)}; it "
            "must describe exactly the training classes and those of every evaluation split "
            "(keep those with python -m actionclip_jax.descriptions --input=FILE --labels=LIST "
            "[--labels=...] --output=NEW.json)"
        )


def class_texts(class_names, templates, descriptions=None, names=None) -> list[list[str]]:
    """FROSTER's class texts `[K][C]`.

    With `descriptions`: template k of class c is `template.format(Name) + " " + string` (Name:
    the string's part before its first ':'), the bare template `"{}"` the string alone. Without:
    `template.format(name)` of `names` (the class names as the prompts write them; default
    `class_names`).
    """
    names = list(names if names is not None else class_names)
    if descriptions is None:
        return [[t.format(n) for n in names] for t in templates]
    full = [descriptions[c] for c in class_names]
    short = [s.split(":")[0] for s in full]  # as the original's `split(':')[0]`
    return [
        [s if t == BARE else f"{t.format(n)} {s}" for n, s in zip(short, full)] for t in templates
    ]


def tokens(texts: Sequence[Sequence[str]], class_names, context_length: int, source) -> np.ndarray:
    """Tokens `[K, C, L]` of `class_texts` (L: `prompts.trim_padding`); a text longer than the
    context is an error naming the class, its length and `source`."""
    tok = tokenizer.default_tokenizer()
    too_long = {}
    for per_template in texts:
        for name, text in zip(class_names, per_template):
            n = len(tok.encode(text)) + 2
            if n > context_length and n > too_long.get(name, 0):
                too_long[name] = n
    if too_long:
        worst = sorted(too_long.items(), key=lambda kv: -kv[1])
        raise DescriptionError(
            f"{source}: the class texts of {len(too_long)} classes exceed the text tower's "
            f"{context_length} tokens (with the longest template): "
            + ", ".join(f"{c!r} {n}" for c, n in worst[:8])
            + "; shorten their descriptions"
        )
    flat = [t for per_template in texts for t in per_template]
    table = prompts.trim_padding(tokenizer.tokenize(flat, context_length))
    return table.reshape(len(texts), len(class_names), -1)


# ---------------------------------------------------------------------------------- command


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def key_by_names(obj: Mapping, label_lists: Sequence[Sequence[str]], source):
    """`(name-keyed descriptions, mismatches)` of a FROSTER index-keyed or name-keyed object.

    Index-keyed: ids `0..C-1` of the one list given. Name-keyed: kept for the classes of the
    lists. `mismatches`: `(class, string)` pairs whose name part does not read like the class
    name (letters and digits compared, case ignored).
    """
    if _is_index_keyed(obj):
        if len(label_lists) != 1:
            raise DescriptionError(f"{source} is keyed by index: give exactly one --labels")
        names = list(label_lists[0])
        ids = sorted(int(k) for k in obj)
        if ids != list(range(len(names))):
            missing = sorted(set(range(len(names))) - set(ids))
            extra = sorted(set(ids) - set(range(len(names))))
            raise DescriptionError(
                f"{source} has ids {ids[0]}..{ids[-1]} ({len(ids)}) for {len(names)} classes "
                f"(missing ids {missing[:8]}, extra ids {extra[:8]}): not this label list's file"
            )
        out = {names[int(k)]: v for k, v in obj.items()}
    else:
        out = dict(obj)
    wanted = [c for names in label_lists for c in names]
    check_classes(out, wanted, source)
    out = {c: out[c] for c in dict.fromkeys(wanted)}
    bad = [k for k, v in out.items() if not isinstance(v, str) or ":" not in v]
    if bad:
        raise DescriptionError(f"{source}: {_shown(bad)} are not 'Name: description' strings")
    mismatches = [(c, s) for c, s in out.items() if _squash(s.partition(":")[0]) != _squash(c)]
    return out, mismatches


def main(argv):
    del argv
    from data_pipeline import labels as label_files  # pylint: disable=import-outside-toplevel

    f = flags.FLAGS
    if not (f.input and f.labels and f.output):
        raise app.UsageError("give --input, --labels (one or more) and --output")
    try:
        lists = [label_files.read_labels(label_files.resolve_label_file(x)) for x in f.labels]
        out, mismatches = key_by_names(read_json_object(f.input), lists, f.input)
    except (OSError, ValueError) as err:
        sys.exit(f"descriptions: error: {err}")
    with open(f.output, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
    for c, s in mismatches:
        print(f"check: class {c!r} is described as {s.partition(':')[0]!r}")
    print(f"wrote {f.output}: {len(out)} classes ({len(mismatches)} names to check)")


def _define_flags():
    flags.DEFINE_string("input", None, "A descriptions JSON (FROSTER's index-keyed, or by name).")
    flags.DEFINE_multi_string("labels", None, "Label list(s) (CSV or built-in name).")
    flags.DEFINE_string("output", None, "The name-keyed JSON to write.")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
