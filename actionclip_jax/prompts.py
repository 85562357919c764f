"""Text prompts: templates that turn a label name into a sentence.

Template sets by name (`resolve_templates`, config `text.templates`): ActionCLIP's 16
(`actionclip16`), ViFi-CLIP's one (`vificlip`), Open-VCLIP's 28 (`openvclip28`), FROSTER's 29
(`froster29`: the 28 and the bare text), and `single` / `bare` / a file. Class names can be turned into words first (`class_name_words`, config
`text.class_names`): Open-VCLIP writes UCF101's CamelCase names as words.
"""

import re

import jax
import numpy as np

from actionclip_jax.tokenizer import tokenize

# The original's order (`utils/Text_Prompt.py`); a template's index is its `text_id`.
TEMPLATES = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)


# Prompt tables end after their longest prompt, rounded up to a multiple of this: the text
# tower's cost grows with the length, and label prompts are short (at most 17 of CLIP's 77
# tokens for Kinetics-600's names under the 16 templates). The rounding keeps the number of
# distinct lengths, i.e. of text-encoder compilations, small.
TOKEN_MULTIPLE = 16

# ViFi-CLIP's fine-tuning prompt (`CTX_INIT` "a photo of a", then the name and a full stop).
VIFICLIP_TEMPLATES = ("a photo of a {}.",)

# Open-VCLIP's 28 (`text_prompt`): 4 openings × 7 endings, each closed by a full stop. The
# classifier averages them, so their order does not matter.
_OPENINGS = ("a photo of", "a video of", "a example of", "a demonstration of")
_ENDINGS = (
    "{}",
    "a person {}",
    "a person using {}",
    "a person doing {}",
    "a person during {}",
    "a person performing {}",
    "a person practicing {}",
)
OPENVCLIP_TEMPLATES = tuple(f"{o} {e}." for o in _OPENINGS for e in _ENDINGS)
# FROSTER's 29: Open-VCLIP's 28 (in its `text_prompt` order) and the bare class text, last.
FROSTER_TEMPLATES = OPENVCLIP_TEMPLATES + ("{}",)

TEMPLATE_SETS = {
    "actionclip16": TEMPLATES,
    "single": TEMPLATES[:1],
    "bare": ("{}",),
    "vificlip": VIFICLIP_TEMPLATES,
    "openvclip28": OPENVCLIP_TEMPLATES,
    "froster29": FROSTER_TEMPLATES,
}

CLASS_NAME_STYLES = ("verbatim", "words")


def class_name_words(name: str) -> str:
    """A class name as words: CamelCase split (`ApplyEyeMakeup` → `Apply Eye Makeup`), `_` a space.

    Open-VCLIP's UCF101 names are written this way (its own name files, which are not shipped
    here: a few of them differ, e.g. its `Yoyo` for `YoYo`, which this gives as `Yo Yo`).
    """
    name = name.replace("_", " ")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " ".join(name.split())


def styled_names(class_names, style: str = "verbatim") -> list[str]:
    """`class_names` as the prompts write them (`CLASS_NAME_STYLES`)."""
    if style == "verbatim":
        return list(class_names)
    if style == "words":
        return [class_name_words(n) for n in class_names]
    raise ValueError(f"text.class_names must be one of {CLASS_NAME_STYLES}, got {style!r}")


def prompt_tokens(class_names, templates=TEMPLATES, context_length: int = 77) -> np.ndarray:
    """Tokens of every class under every template, template-major: int32 `[K, C, L]`.

    L: the padding cut off by `trim_padding`.
    """
    if not class_names:
        raise ValueError("no class names: the label list is empty")
    texts = [t.format(name) for t in templates for name in class_names]
    tokens = trim_padding(tokenize(texts, context_length))  # [K*C, L]
    return tokens.reshape(len(templates), len(class_names), -1)


def trim_padding(tokens: np.ndarray) -> np.ndarray:
    """`tokens [..., context]` cut to the longest sequence (start to end token) rounded up to
    `TOKEN_MULTIPLE`, at most the context. Exact: the text tower's attention is causal and it
    reads its output at the end token, so no feature changes."""
    longest = int(tokens.argmax(axis=-1).max()) + 1  # the end token has the largest id
    length = min(tokens.shape[-1], -(-longest // TOKEN_MULTIPLE) * TOKEN_MULTIPLE)
    return tokens[..., :length]


def sample_prompt_tokens(keys, table, labels):
    """Training text: one template per sample, uniformly, as the original's `randint(16, size=B)`.

    Args:
      keys: `[B]` `jax.random` keys, one per sample (`augment.per_sample_keys` of the step's key
        and the samples' dataset indices: the draw does not depend on batch position).
      table: `[K, C, L]` from `prompt_tokens`.
      labels: `[B]` class ids.
    Returns:
      `[B, L]` tokens of sample b's class under its drawn template.
    """
    template = jax.vmap(lambda k: jax.random.randint(k, (), 0, table.shape[0]))(keys)  # [B]
    return table[template, labels]


def resolve_templates(spec: str) -> tuple[str, ...]:
    """Templates by name: `actionclip16` (default), `single` (the first), `bare` (the label
    words alone), `vificlip`, `openvclip28`, `froster29` (`TEMPLATE_SETS`), or a text file with
    one template per line, each holding one `{}`."""
    if spec in TEMPLATE_SETS:
        return TEMPLATE_SETS[spec]
    from etils import epath  # pylint: disable=import-outside-toplevel

    path = epath.Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"text.templates={spec!r} is neither one of {tuple(TEMPLATE_SETS)} nor an existing "
            "file"
        )
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    bad = [i + 1 for i, ln in enumerate(lines) if ln.count("{}") != 1]
    if not lines or bad:
        raise ValueError(f"{path}: every line must hold exactly one '{{}}' (bad lines: {bad})")
    return tuple(lines)
