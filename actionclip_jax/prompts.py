"""ActionCLIP's text prompts: 16 templates that turn a label name into a sentence."""

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


def prompt_tokens(class_names, templates=TEMPLATES, context_length: int = 77) -> np.ndarray:
    """Tokens of every class under every template, template-major: int32 `[K, C, L]`.

    L is the longest prompt's length (start to end token) rounded up to `TOKEN_MULTIPLE`, at most
    `context_length`. The padding cut off changes no feature: the text tower's attention is
    causal, and it reads its output at the end token.
    """
    if not class_names:
        raise ValueError("no class names: the label list is empty")
    texts = [t.format(name) for t in templates for name in class_names]
    tokens = tokenize(texts, context_length)  # [K*C, context_length]
    longest = int(tokens.argmax(axis=-1).max()) + 1  # the end token has the largest id
    length = min(context_length, -(-longest // TOKEN_MULTIPLE) * TOKEN_MULTIPLE)
    return tokens[:, :length].reshape(len(templates), len(class_names), length)


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
    words alone), or a text file with one template per line, each holding one `{}`."""
    if spec == "actionclip16":
        return TEMPLATES
    if spec == "single":
        return TEMPLATES[:1]
    if spec == "bare":
        return ("{}",)
    from etils import epath  # pylint: disable=import-outside-toplevel

    path = epath.Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"text.templates={spec!r} is neither actionclip16, single, bare nor an existing file"
        )
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    bad = [i + 1 for i, ln in enumerate(lines) if ln.count("{}") != 1]
    if not lines or bad:
        raise ValueError(f"{path}: every line must hold exactly one '{{}}' (bad lines: {bad})")
    return tuple(lines)
