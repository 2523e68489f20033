"""Write cpp/tests/data/tokenizer_cases.json: the ids the C++ TextVectorizer must give, from the
Python one (rnncompile.tokenizer.TextVectorizer, exact against Keras 3.15 / TF 2.21).

    python tools/make_tokenizer_cases.py [--check]

A hostile corpus (ASCII punctuation, mixed and non-ASCII case, the six ASCII whitespace characters,
NBSP, U+2003, \\x1c, emoji, combining marks, NULs, empty and all-space texts, a long review, OOV words)
x every standardize x split x ngrams option (ngrams only with a split, as Keras) x output_sequence_length
None and 5. Each option set has its own vocabulary: the most frequent tokens of the even-numbered texts
(so that the odd ones have out-of-vocabulary tokens), plus a few hostile terms. Ids are stored ragged
(one list per text, Keras's ragged output) with the [batch, L] shape of the padded batch for each
length; the generator checks that the padded batch is the ragged ids cut or padded with 0 to L.
--check: exit 1 when the file differs from what this script writes (CI: the file is up to date).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnncompile.tokenizer import SPLIT, STANDARDIZE, TextVectorizer, full_vocabulary  # noqa: E402

OUT = ROOT / "cpp" / "tests" / "data" / "tokenizer_cases.json"
NGRAMS = (None, (1, 2), (2,), (1, 2, 3))
LENGTHS = (None, 5)
VOCABULARY_SIZE = 150


def long_review(seed: int, words: int) -> str:
    rng = random.Random(seed)
    pool = ("the film was great but the ending felt rushed and the actors seemed bored , honestly I "
            "loved it ! Worst movie ever ... plot twist ? Café naïve résumé ÉCOLE 😀 don't can't it's "
            "(really) [spoiler] \"quoted\" e-mail 3.5/10 #1 @home").split()
    seps = [" "] * 12 + ["  ", "\t", "\n", " \r\n "]
    return "".join(rng.choice(pool) + rng.choice(seps) for _ in range(words)).strip()


def corpus() -> list[str]:
    return [
        "The cat sat on the mat.",
        "the CAT sat... on THE mat!!!",
        "Hello, World! It's a fine day; isn't it?",
        "  leading and trailing spaces  ",
        "tabs\tand\nnewlines\r\nand\x0bvertical\x0cform feeds",
        "",
        "   ",
        "\t\n\r\x0b\x0c",
        "!!!...???",
        "a",
        "A",
        "É école ÉCOLE Ça naïve CAFÉ café",
        "non\u00a0breaking\u00a0space and em\u2003space",
        "file\x1cseparator\x1dgroup\x1erecord\x1funit",
        "emoji 😀 in 👍🏽 the middle 🇫🇷 flag",
        "combining e\u0301 marks a\u0300 o\u0302\u0303",
        "under_score hy-phen slash/ed back\\slash",
        "`~!@#$%^&*()-_=+[{]}\\|;:'\",<.>/? punctuation soup",
        "«guillemets» “curly quotes” — em dash … ellipsis ¿qué? ¡sí!",
        "ΕΛΛΗΝΙΚΑ ελληνικά Русский ТЕКСТ 中文文本 日本語",
        "nul\x00inside and\x00 trailing\x00",
        "numbers 123 4.56 7,890 1e10 -3",
        "MiXeD CaSe WoRdS mixed case words",
        "unseen zzyzx qwertyuiop oov words",
        "repeated repeated repeated repeated words words",
        "x",
        "the the the",
        "ends with space ",
        "\u00a0",
        "one-two three_four five.six",
        long_review(1, 20),
        long_review(2, 250),
        long_review(3, 60),
    ]


HOSTILE_TERMS = ("É", "école", "😀", "\u00a0", "zz top", "[unk]", "Ünïcode", "a b c")


def vocabulary_for(base: TextVectorizer, texts: list[str]) -> list[str]:
    counts = collections.Counter(t for text in texts[::2] for t in base.tokens(text))
    counts.pop("", None)
    for t in [t for t in counts if t.endswith("\x00")]:
        del counts[t]  # Keras drops a term's trailing NULs: such a term cannot be in a vocabulary file
    terms = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:VOCABULARY_SIZE]
    terms += [t for t in HOSTILE_TERMS if t not in counts]
    return full_vocabulary(terms)


def make() -> dict:
    texts = corpus()
    vocabularies: list[list[str]] = []
    cases = []
    for standardize, split, ngrams in itertools.product(STANDARDIZE, SPLIT, NGRAMS):
        if ngrams is not None and split is None:
            continue  # Keras pairs up the texts of a batch there; rnncompile refuses it
        base = TextVectorizer(("", "[UNK]"), standardize, split, ngrams)
        vocab = vocabulary_for(base, texts)
        if vocab not in vocabularies:
            vocabularies.append(vocab)
        tv = TextVectorizer(tuple(vocab), standardize, split, ngrams)
        ragged = [tv.ids(t) for t in texts]
        shapes = []
        for length in LENGTHS:
            tv_l = TextVectorizer(tuple(vocab), standardize, split, ngrams, length)
            batch = tv_l(texts)
            width = length if length is not None else max([1, *map(len, ragged)])
            want = np.zeros((len(texts), width), np.int64)
            for b, r in enumerate(ragged):
                want[b, :min(width, len(r))] = r[:width]
            assert np.array_equal(batch, want), (standardize, split, ngrams, length)
            shapes.append(list(batch.shape))
        cases.append({"name": f"{standardize}_{split}_{'-'.join(map(str, ngrams)) if ngrams else None}",
                      "options": {"standardize": standardize, "split": split,
                                  "ngrams": list(ngrams) if ngrams else None},
                      "vocabulary": vocabularies.index(vocab),
                      "lengths": list(LENGTHS), "shapes": shapes, "ids": ragged})
    return {"generator": "tools/make_tokenizer_cases.py (ids from rnncompile.tokenizer.TextVectorizer)",
            "texts": texts, "vocabularies": vocabularies, "cases": cases}


def render(doc: dict) -> str:
    # ensure_ascii: the file is plain ASCII (\u escapes), whatever the corpus holds.
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is out of date")
    args = parser.parse_args()
    text = render(make())
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python tools/make_tokenizer_cases.py")
            return 1
        return 0
    OUT.write_text(text)
    doc = json.loads(text)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(doc['texts'])} texts x {len(doc['cases'])} option sets "
          f"x {len(LENGTHS)} lengths, {len(doc['vocabularies'])} vocabularies, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
