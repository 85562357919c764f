"""CLIP byte-level BPE tokenizer, producing the same ids as OpenAI CLIP's.

The vocabulary is the one shipped with CLIP (``assets/bpe_simple_vocab_16e6.txt.gz``):
256 byte symbols, the same 256 marked as word endings (``</w>``), 48,894 merges, and
the two special tokens ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

Example:
    >>> from actionclip_jax.tokenizer import tokenize
    >>> tokenize(["a photo of action abseiling"]).shape
    (1, 77)
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.resources
from collections.abc import Sequence

import ftfy
import numpy as np
import regex

__all__ = [
    "CONTEXT_LENGTH",
    "EOT_ID",
    "SOT_ID",
    "Tokenizer",
    "bytes_to_unicode",
    "clean_text",
    "default_tokenizer",
    "tokenize",
]

CONTEXT_LENGTH = 77
SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
SOT_ID = 49406
EOT_ID = 49407

# CLIP uses only the first 48,894 merges of the file (line 0 is a version header), which
# together with 512 byte symbols and 2 specials gives a vocabulary of 49,408.
_NUM_MERGES = 49152 - 256 - 2

_WHITESPACE = regex.compile(r"\s+")
# Same pattern and flags as CLIP: the special tokens, English contractions, runs of
# letters, single digits, and runs of anything else that is not whitespace.
_SPLIT = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d"
    r"|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)


def default_vocab_path():
    """Returns the packaged BPE merges file (a ``Traversable``)."""
    return importlib.resources.files("actionclip_jax") / "assets" / "bpe_simple_vocab_16e6.txt.gz"


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """Maps each of the 256 byte values to a visible unicode character.

    Printable Latin-1 bytes map to themselves; the rest (controls, space, soft hyphen)
    are moved to code points 256 and up, so BPE never sees whitespace or controls.
    """
    visible = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in visible}
    extra = 256
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(extra)
            extra += 1
    return mapping


def _is_trivially_clean(text: str) -> bool:
    # ftfy.fix_text and html.unescape leave printable ASCII without '&' unchanged: every
    # ftfy fixer targets non-ASCII characters, control characters or HTML entities, and
    # entities need '&'. Skipping them is the main speed-up (ftfy is ~100x slower than BPE).
    return text.isascii() and text.isprintable() and "&" not in text


def clean_text(text: str) -> str:
    """Normalizes text exactly as CLIP does before splitting it into words.

    Fixes mojibake and unicode oddities with ftfy, unescapes HTML entities twice, collapses
    whitespace runs to one space, strips, and lowercases.

    Args:
        text: Raw input text.

    Returns:
        The cleaned text.
    """
    if _is_trivially_clean(text):
        # Only ' ' can be whitespace here, so str.split() agrees with the regex below.
        return " ".join(text.split()).lower()
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


class Tokenizer:
    """CLIP's BPE tokenizer.

    Attributes:
        vocab: Token string to id, 49,408 entries.
        sot_id: Id of ``<|startoftext|>``.
        eot_id: Id of ``<|endoftext|>``.
    """

    def __init__(self, vocab_path=None):
        """Builds the vocabulary and merge ranks.

        Args:
            vocab_path: Path (or ``Traversable``) of the gzipped merges file. Defaults to
                the copy shipped with the package.
        """
        path = default_vocab_path() if vocab_path is None else vocab_path
        with path.open("rb") if hasattr(path, "open") else open(path, "rb") as f:
            # Only the first lines are used; the file holds ~262k merges.
            lines = gzip.decompress(f.read()).decode("utf-8").split("\n", _NUM_MERGES + 1)
        merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]

        symbols = list(bytes_to_unicode().values())
        tokens = symbols + [s + "</w>" for s in symbols]
        tokens += [a + b for a, b in merges]
        tokens += [SOT_TOKEN, EOT_TOKEN]
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self._tokens = tokens
        self._ranks = {pair: i for i, pair in enumerate(merges)}
        self.sot_id = self.vocab[SOT_TOKEN]
        self.eot_id = self.vocab[EOT_TOKEN]

        # Maps a raw regex piece to its ids. Pieces repeat a lot (prompt templates share
        # most words), so each distinct piece is merged only once.
        self._cache: dict[str, tuple[int, ...]] = {
            SOT_TOKEN: (self.sot_id,),
            EOT_TOKEN: (self.eot_id,),
        }
        # Translating latin-1-decoded utf-8 bytes maps bytes to symbols in one C call.
        self._byte_table = dict(bytes_to_unicode())
        self._byte_decoder = {c: b for b, c in bytes_to_unicode().items()}

    @property
    def vocab_size(self) -> int:
        """Number of token ids (49,408 for CLIP)."""
        return len(self._tokens)

    def _bpe(self, piece: str) -> tuple[int, ...]:
        symbols = piece.encode("utf-8").decode("latin-1").translate(self._byte_table)
        word = [*symbols[:-1], symbols[-1] + "</w>"]
        ranks = self._ranks
        while len(word) > 1:
            # Merge the lowest-ranked adjacent pair everywhere it occurs, left to right,
            # as in training; stop when no adjacent pair is a known merge.
            best, best_rank = None, len(ranks)
            for pair in zip(word, word[1:]):
                rank = ranks.get(pair, best_rank)
                if rank < best_rank:
                    best, best_rank = pair, rank
            if best is None:
                break
            first, second = best
            merged, i, n = [], 0, len(word)
            while i < n:
                if i < n - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return tuple(self.vocab[s] for s in word)

    def encode(self, text: str) -> list[int]:
        """Converts text to BPE ids, without start/end tokens.

        Args:
            text: Raw input text; it is cleaned as CLIP does (see `clean_text`).

        Returns:
            The token ids.
        """
        ids: list[int] = []
        cache = self._cache
        for piece in _SPLIT.findall(clean_text(text)):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                piece_ids = cache[piece] = self._bpe(piece)
            ids.extend(piece_ids)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Converts ids back to text, as CLIP does.

        Word ends become spaces (so the result has a trailing space after the last
        word) and invalid utf-8 is replaced with U+FFFD.

        Args:
            ids: Token ids, e.g. from `encode`. Special tokens decode to their names.

        Returns:
            The decoded text.
        """
        chars = "".join(self._tokens[int(i)] for i in ids)
        data = bytes(self._byte_decoder[c] for c in chars)
        return data.decode("utf-8", errors="replace").replace("</w>", " ")

    def __call__(
        self,
        texts: str | Sequence[str],
        context_length: int = CONTEXT_LENGTH,
        truncate: bool = False,
    ) -> np.ndarray:
        """Same as the module-level `tokenize`, with this tokenizer."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), context_length), dtype=np.int32)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > context_length:
                if not truncate:
                    shown = text if len(text) <= 80 else text[:77] + "..."
                    raise ValueError(
                        f"Text {shown!r} has {len(ids)} tokens (with start/end tokens), more "
                        f"than the context length {context_length}; pass truncate=True to "
                        "cut it."
                    )
                # Like clip.tokenize(truncate=True): keep the end marker as the last token.
                ids = ids[:context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = ids
        return out


@functools.cache
def default_tokenizer() -> Tokenizer:
    """Returns a shared `Tokenizer` over the packaged vocabulary, built on first use."""
    return Tokenizer()


def tokenize(
    texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False
) -> np.ndarray:
    """Tokenizes text(s) into CLIP's fixed-length id arrays.

    Each row is ``[49406] + bpe_ids + [49407]`` followed by zeros.

    Args:
        texts: One string or a sequence of strings.
        context_length: Length of each row (77 for all CLIP models).
        truncate: If a text is too long, cut it to `context_length` tokens, the last
            being 49407, instead of raising.

    Returns:
        int32 array of shape ``[len(texts), context_length]`` (``[1, ...]`` for a str).

    Raises:
        ValueError: If a text does not fit and `truncate` is False.
    """
    return default_tokenizer()(texts, context_length=context_length, truncate=truncate)
