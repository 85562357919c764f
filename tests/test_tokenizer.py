"""Tests for actionclip_jax.tokenizer against OpenAI CLIP's SimpleTokenizer."""

import csv
import html
import importlib.resources
import random
import string

import ftfy
import numpy as np
import pytest

from actionclip_jax import tokenizer as tok_lib
from actionclip_jax.prompts import TEMPLATES
from actionclip_jax.tokenizer import Tokenizer, default_tokenizer, tokenize
from reference import reference_tokenizer

AWKWARD = [
    "",
    "   ",
    "Café crème brûlée, naïve façade, Ångström, Œuvre",
    "日本語のテキスト 中文字符 한국어",
    "Tom &amp; Jerry", "&lt;b&gt;bold&lt;/b&gt;", "it&#39;s", "fish &amp;amp; chips",
    "<b>tag</b> & &amp; &lt;", "&nbsp;&copy;&hellip;&unknownentity;",
    "party 🎉🎉 time 😀", "family 👨‍👩‍👧‍👦 and 🏳️‍🌈", "flags 🇺🇸🇯🇵🇩🇪", "thumbs 👍🏽",
    "ﬁnal ﬂow ﬀ", "Ã©tÃ© cafÃ©", "â€œquotedâ€\x9d", "âœ” No problems",
    "don't", "I'LL GO", "we've", "she's", "they're", "I'M", "you'd", "'s alone", "O'Neil's",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideographic  spaces",
    "2024", "3.14159 and 1,000,000", "Ⅻ ½ ²³ ٣٤٥",
    "!!!???...---***", "hello,world!how-are_you?", "(parens) [brackets] {braces} <angles>",
    "MiXeD CaSe TeXt", "İstanbul ǅemal ß STRASSE", "ſpecial 'ſ",
    "control\x00\x01\x07\x1b[31mred\x1b[0m\x7f chars", "c1 \x85 \x9c controls",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ １２３", "“curly” ‘quotes’ – dashes — …",
    "<|startoftext|>", "a <|endoftext|> b", "<|StartOfText|>",
    "supercalifragilisticexpialidocious", "x" * 200, "abc\u0301def e\u0301",
    "\ud800 lone surrogate", "soft\u00adhyphen zero\u200bwidth",
]


def _labels(filename):
    path = importlib.resources.files("actionclip_jax") / "assets" / "labels" / filename
    with path.open(newline="", encoding="utf-8") as f:
        return [row["name"] for row in csv.DictReader(f)]


def _reference_tokens(texts, context_length=77):
    ref = reference_tokenizer()
    sot, eot = ref.encoder["<|startoftext|>"], ref.encoder["<|endoftext|>"]
    out = np.zeros((len(texts), context_length), dtype=np.int32)
    for row, text in enumerate(texts):
        ids = [sot, *ref.encode(text), eot]
        out[row, :len(ids)] = ids
    return out


def _reference_clean(text):
    # The reference module is loaded by path and not registered; reach its helpers
    # through the globals of one of its functions.
    helpers = type(reference_tokenizer()).encode.__globals__
    return helpers["whitespace_clean"](helpers["basic_clean"](text)).lower()


@pytest.mark.parametrize(
    "filename", ["kinetics_400_labels.csv", "ucf_labels.csv", "hmdb51_labels.csv"])
def test_dataset_prompts_match_reference(filename):
    names = _labels(filename)
    assert names
    prompts = [t.format(n) for t in TEMPLATES for n in names]
    np.testing.assert_array_equal(tokenize(prompts), _reference_tokens(prompts))


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_text_matches_reference(text):
    assert tokenize(text).tolist() == _reference_tokens([text]).tolist()
    assert tok_lib.clean_text(text) == _reference_clean(text)


def test_awkward_text_with_fresh_tokenizer():
    # No cache state carried over from other tests: the first BPE of each word is right too.
    ref = reference_tokenizer()
    fresh = Tokenizer()
    for text in AWKWARD:
        assert fresh.encode(text) == ref.encode(text), text


def test_fast_path_is_identical_to_full_cleaning():
    # The fast path skips ftfy and html.unescape; it must be a no-op for every string it
    # accepts. Check all test strings, all 1- and 2-character printable ASCII strings,
    # and random printable ASCII strings.
    printable = [chr(c) for c in range(0x20, 0x7F)]
    rng = random.Random(0)
    candidates = [t.format(n) for t in TEMPLATES for n in _labels("kinetics_400_labels.csv")]
    candidates += AWKWARD + printable + [a + b for a in printable for b in printable]
    candidates += ["".join(rng.choices(printable, k=rng.randint(1, 60))) for _ in range(3000)]
    candidates += [" ".join(rng.choices(string.ascii_letters + "';,.-", k=40)) for _ in range(500)]
    accepted = 0
    for text in candidates:
        if tok_lib._is_trivially_clean(text):
            accepted += 1
            assert ftfy.fix_text(text) == text, repr(text)
            assert html.unescape(text) == text, repr(text)
            assert tok_lib.clean_text(text) == _reference_clean(text), repr(text)
    assert accepted > 10000
    assert not tok_lib._is_trivially_clean("a &amp; b")
    assert not tok_lib._is_trivially_clean("tab\there")
    assert not tok_lib._is_trivially_clean("café")


def test_known_ids():
    assert tokenize("a photo of action abseiling")[0, :9].tolist() == [
        49406, 320, 1125, 539, 1816, 596, 567, 3299, 49407]
    assert tokenize("brush hair, an action")[0, :7].tolist() == [
        49406, 8594, 2225, 267, 550, 1816, 49407]


def test_shape_dtype_padding():
    one = tokenize("brush hair, an action")
    assert one.shape == (1, 77) and one.dtype == np.int32
    assert (one[0, 7:] == 0).all()

    many = tokenize(["a", "b c", ""])
    assert many.shape == (3, 77) and many.dtype == np.int32
    assert many[2, :3].tolist() == [49406, 49407, 0]

    assert tokenize(("x", "y"), context_length=16).shape == (2, 16)
    assert tokenize([]).shape == (0, 77)


def test_too_long_raises_and_truncates():
    text = "word " * 100
    with pytest.raises(ValueError, match=r"truncate=True") as err:
        tokenize(text)
    assert "102" in str(err.value) and "77" in str(err.value)

    cut = tokenize(text, truncate=True)
    assert cut.shape == (1, 77) and cut[0, -1] == 49407
    ref = reference_tokenizer()
    expected = [49406, *ref.encode(text)]
    assert cut[0, :76].tolist() == expected[:76]

    # Exactly full fits without truncation; one more token does not.
    abc = [49406, *ref.encode("a b c"), 49407]
    assert len(abc) == 5
    assert tokenize("a b c", context_length=5)[0].tolist() == abc
    with pytest.raises(ValueError):
        tokenize("a b c d", context_length=5)
    assert tokenize("a b c d", context_length=5, truncate=True)[0].tolist() == abc


def test_decode_round_trip():
    tok = default_tokenizer()
    for text in ["A photo of action Abseiling", "brush hair", "Playing a kind of action",
                 "  The   WOMAN is  dancing  "]:
        assert tok.decode(tok.encode(text)).strip() == tok_lib.clean_text(text)


def test_decode_matches_reference():
    tok, ref = default_tokenizer(), reference_tokenizer()
    rng = random.Random(1)
    sequences = [tok.encode(t) for t in AWKWARD]
    sequences += [[rng.randrange(49408) for _ in range(20)] for _ in range(200)]
    sequences.append([49406, 320, 49407])
    for ids in sequences:
        assert tok.decode(ids) == ref.decode(ids)


def test_vocabulary():
    tok, ref = default_tokenizer(), reference_tokenizer()
    assert tok.vocab_size == len(tok.vocab) == 49408
    assert tok.sot_id == tok_lib.SOT_ID == 49406
    assert tok.eot_id == tok_lib.EOT_ID == 49407
    assert tok.vocab == ref.encoder
