"""TextVectorization: text -> integer token ids, exactly as Keras's TextVectorization(output_mode="int").

The rules (standardize, split, ngrams, lookup, length) are rnncompile/tokenizer.py's, which is
this kind's reference and is checked against goldens made with Keras (tests/goldens/text/).

    input:   text, dtype string, [batch] or [batch, 1] (split=None needs [batch, 1])
    output:  int64 ids [batch, L]: L = output_sequence_length, or (None) the longest row of the
             batch, at least 1. 0 is padding ("" with split=None too), 1 out-of-vocabulary.
             No mask: an Embedding(mask_zero=True) after it masks the padding, as in Keras.

Where it runs (Target.tokenizer, `--tokenizer`): in the graph with standard ONNX string ops where
they are exact on the target (rnncompile/onnx_text.py), or on the host: the graph then takes the
ids as an input named after this layer, the manifest describes the tokenizer ("preprocessing",
with the vocabulary in OUT/<layer>.vocabulary.json), and the Python and C++ sessions tokenize
before running the graph. TensorRT runs no string op, so there it always runs on the host.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


from ..errors import RunError, SpecError
from ..layer import Layer, LayerError, Tensor, TensorType, register
from ..tokenizer import (OOV_TOKEN, SPLIT, STANDARDIZE, TextVectorizer, VocabularyError, full_vocabulary,
                         ngram_widths)

#: Most ids a vocabulary may have (Keras has no limit; this bounds memory and graph size).
MAX_VOCABULARY = 1 << 22
MAX_LENGTH = 1 << 16


def _read_vocabulary_file(path: Path) -> list[str]:
    """Keras's vocabulary file format (one term per line, UTF-8; "\\n" ends a line, a final empty
    line is no term) or, for a .json file, a JSON array of strings."""
    from ..jsonfile import read_json_file, read_text_lines

    if path.suffix.lower() == ".json":
        data = read_json_file(path, "vocabulary file", SpecError)
        if not isinstance(data, list):
            raise SpecError("expected a JSON array of strings", where=str(path))
        return data
    return read_text_lines(path, "vocabulary file", SpecError, limit=256 << 20)


@register
class TextVectorization(Layer):
    class_name = "TextVectorization"
    description = ("Text to token ids (Keras TextVectorization, output_mode=\"int\"): standardize, split, "
                   "ngrams, vocabulary lookup; in the graph or as a host-side tokenizer")
    attributes = {
        "vocabulary": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_VOCABULARY,
                       "description": "the terms (ids from 2; may start with \"\" and \"[UNK]\", as an adapted "
                                      "layer saves it)"},
        "vocabulary_file": {"type": "string",
                            "description": "instead of `vocabulary`: a file, one term per line (Keras's format), "
                                           "or a .json array; relative to the spec"},
        "max_tokens": {"type": ["integer", "null"], "minimum": 1, "default": None,
                       "description": "most ids, \"\" and \"[UNK]\" included (Keras: a vocabulary over it is refused)"},
        "standardize": {"enum": list(STANDARDIZE), "default": "lower_and_strip_punctuation"},
        "split": {"enum": list(SPLIT), "default": "whitespace"},
        "ngrams": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1, "maximum": 16},
                             {"type": "array", "minItems": 1, "maxItems": 16,
                              "items": {"type": "integer", "minimum": 1, "maximum": 16}}],
                   "default": None, "description": "n: widths 1..n; a list: those widths, in order"},
        "output_mode": {"enum": ["int"], "default": "int",
                        "description": "only \"int\" (ids for an Embedding)"},
        "output_sequence_length": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_LENGTH,
                                   "default": None, "description": "pad/truncate to this many ids; null: the "
                                                                   "longest text of the batch"},
    }
    host_capable = True

    # -- spec ---------------------------------------------------------------------------------
    @classmethod
    def resolve_files(cls, config: dict, base_dir: Path, path: str) -> dict:
        """Read `vocabulary_file` into `vocabulary`, so the spec (and OUT/spec.json) holds it."""
        if not isinstance(config.get("vocabulary_file"), str):
            return config   # absent, or of the wrong type: the schema check says so
        if "vocabulary" in config:
            raise SpecError("give either `vocabulary` or `vocabulary_file`, not both", where=f"{path}.vocabulary_file")
        file = Path(config["vocabulary_file"])
        file = file if file.is_absolute() else base_dir / file
        try:
            terms = _read_vocabulary_file(file)
        except SpecError as e:
            raise SpecError([type(p)(f"{path}.vocabulary_file ({p.where})", p.message) for p in e.problems]) from None
        if not all(isinstance(t, str) for t in terms):
            raise SpecError("expected a JSON array of strings", where=f"{path}.vocabulary_file ({file})")
        out = {k: v for k, v in config.items() if k != "vocabulary_file"}
        out["vocabulary"] = terms
        return out

    def check(self):
        if "vocabulary" not in self.config:
            return [(None, "needs `vocabulary` (a list of terms) or `vocabulary_file` (Keras's adapt() is not "
                           "run here: adapt in Keras and import the model, or pass its get_vocabulary())")]
        try:
            full_vocabulary(self["vocabulary"], self["max_tokens"])
        except VocabularyError as e:
            return [("vocabulary", str(e))]
        if self["split"] is None and self["ngrams"] is not None:
            return [("ngrams", "ngrams need split \"whitespace\" or \"character\" (with split=null each text is "
                               "one token; Keras then pairs up the texts of a (batch,) batch, and fails on some "
                               "(batch, 1) ones)")]
        return []

    @property
    def vectorizer(self) -> TextVectorizer:
        v = self.__dict__.get("_vectorizer")
        if v is None:
            v = self.__dict__["_vectorizer"] = TextVectorizer(
                tuple(full_vocabulary(self["vocabulary"], self["max_tokens"])), self["standardize"],
                self["split"], ngram_widths(self["ngrams"]), self["output_sequence_length"])
        return v

    # -- shape rule and reference -------------------------------------------------------------
    def output_types(self, inputs):
        (x,) = inputs
        if x.dtype != "string":
            raise LayerError(f"expects text (an Input with dtype string), got {x.dtype} input")
        if x.rank not in (1, 2) or (x.rank == 2 and x.shape[1] != 1):
            raise LayerError(f"expects one text per batch row, shape (batch,) or (batch, 1), got {x}")
        if self["split"] is None and x.rank != 2:
            raise LayerError("split=null (one token per text) needs text of shape (batch, 1), as in Keras")
        return [TensorType((x.shape[0], self["output_sequence_length"]), "int64")]

    def reference(self, inputs, weights):
        (x,) = inputs
        try:
            return [Tensor(self.vectorizer(x.data))]
        except (ValueError, UnicodeDecodeError) as e:
            raise RunError(str(e), where=f"layer {self.name!r} (TextVectorization)") from None

    def id_range(self):
        return len(self.vectorizer.vocabulary)

    def text_words(self):
        words = []
        for term in self.vectorizer.vocabulary[2:]:
            words.extend(term.split(" ") if self["split"] == "whitespace" else [term])
        return tuple(dict.fromkeys(w for w in words if w))

    # -- lowering: in the graph or on the host ------------------------------------------------
    def in_graph_blocker(self, target) -> str | None:
        """Why the graph cannot tokenize exactly on `target`; None when it can."""
        if not target.string_ops:
            return f"{target.name} runs no ONNX string op"
        from ..onnx_text import in_graph_blocker

        return in_graph_blocker(self.vectorizer)

    def runs_on_host(self, target) -> bool:
        return target.tokenizer == "host" or (target.tokenizer == "auto" and self.in_graph_blocker(target) is not None)

    def target_blocker(self, target):
        if target.tokenizer == "graph":
            why = self.in_graph_blocker(target)
            if why is not None:
                return f"cannot tokenize in the graph ({why}); build with --tokenizer host (or auto)"
        return None

    def min_opset(self, target) -> int:
        if self.runs_on_host(target):
            return 17
        from ..onnx_text import REQUIRED_OPSET

        return REQUIRED_OPSET

    def lowering(self, target=None) -> str:
        from ..targets import get_target

        target = get_target(target)
        if self.runs_on_host(target):
            why = self.in_graph_blocker(target) if target.tokenizer == "auto" else None
            return "host tokenizer (manifest \"preprocessing\")" + (f": {why}" if why else "")
        return "ONNX string ops"

    def lower(self, g, inputs, weights):
        from ..onnx_text import lower_text_vectorization

        (x,) = inputs
        return [self.sym(lower_text_vectorization(g, x.name, self.vectorizer, x.type.rank))]

    def host_entry(self):
        entry = self.__dict__.get("_host_entry")   # built once: the vocabulary may have millions of terms
        if entry is None:
            vocab = json.dumps(list(self.vectorizer.vocabulary), ensure_ascii=False).encode("utf-8")
            file = f"{self.name}.vocabulary.json"
            fields = {**self.vectorizer.to_dict(), "vocabulary": file,
                      "vocabulary_sha256": hashlib.sha256(vocab).hexdigest()}
            entry = self.__dict__["_host_entry"] = (fields, {file: vocab})
        return entry

    def host_apply(self, value):
        return self.vectorizer(value)

    @classmethod
    def host_function(cls, entry, out_dir):
        from ..jsonfile import parse_json
        from ..limits import current

        name = entry.get("vocabulary")
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise RunError(f"vocabulary {name!r}: expected the name of a file in the build directory",
                           where=f"manifest.json layer {entry.get('layer')!r}")
        path = Path(out_dir) / name
        if not path.is_file():
            raise RunError("the tokenizer's vocabulary file is missing", where=str(path))
        if path.stat().st_size > current().json_bytes:
            raise RunError(f"vocabulary file of {path.stat().st_size} bytes is over the {current().json_bytes}-byte "
                           f"limit (--max-json-bytes)", where=str(path))
        raw = path.read_bytes()   # read once: hashed, then parsed
        if hashlib.sha256(raw).hexdigest() != entry.get("vocabulary_sha256"):
            raise RunError("the vocabulary file is not the one this manifest describes (sha256 differs)",
                           where=str(path))
        vocab = parse_json(raw, str(path), RunError)
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise RunError("expected a JSON array of strings", where=str(path))
        try:
            return TextVectorizer.from_dict(entry, vocab)
        except (ValueError, TypeError) as e:
            raise RunError(f"damaged tokenizer description: {e}", where=f"manifest.json layer {entry.get('layer')!r}")

    # -- Keras import -------------------------------------------------------------------------
    keras_classes = ("TextVectorization",)

    @classmethod
    def from_keras(cls, f):
        mode = f.get("output_mode", "int")
        if mode != "int":
            f.refuse("output_mode", mode, "only output_mode=\"int\" (ids for an Embedding) is supported")
        for key in ("standardize", "split"):
            v = f.get(key)
            if v is not None and not isinstance(v, str):
                f.refuse(key, v, "a custom (callable) function cannot be imported: only the built-in options")
        standardize, split = f.get("standardize", "lower_and_strip_punctuation"), f.get("split", "whitespace")
        if standardize not in STANDARDIZE:
            f.refuse("standardize", standardize, f"expected one of {STANDARDIZE}")
        if split not in SPLIT:
            f.refuse("split", split, f"expected one of {SPLIT}")
        for flag in ("ragged", "sparse"):
            if f.get(flag):
                f.refuse(flag, True, "dense int output only")
        enc = f.get("encoding", "utf-8")
        if str(enc).lower().replace("-", "") != "utf8":
            f.refuse("encoding", enc, "only UTF-8 text is supported")
        if f.get("idf_weights") is not None:
            f.refuse("idf_weights", "...", "TF-IDF output is not supported (output_mode=\"int\" only)")
        ngrams = f.get("ngrams")
        if ngrams is not None and not (isinstance(ngrams, int) and ngrams >= 1
                                       or isinstance(ngrams, list) and ngrams
                                       and all(isinstance(n, int) and n >= 1 for n in ngrams)):
            f.refuse("ngrams", ngrams, "expected None, a width >= 1 or a list of widths")
        vocab = f.get("vocabulary")
        if isinstance(vocab, str):
            f.refuse("vocabulary", vocab, "a vocabulary file path from the machine that saved the model cannot "
                                          "be read; save the model after set_vocabulary(list) or adapt()")
        out = {"standardize": standardize, "split": split, "ngrams": ngrams,
               "output_sequence_length": f.get("output_sequence_length"), "max_tokens": f.get("max_tokens")}
        if vocab is None:   # adapted: Keras saves get_vocabulary() joined by "\n" as an asset of the .keras zip
            data = f.asset("vocabulary.txt")
            if data is None:
                raise LayerError("the layer's vocabulary is not in the file: Keras saves an adapted "
                                 "TextVectorization's vocabulary only in .keras files (assets/), not in .h5; "
                                 "save the model as .keras (or pass vocabulary= to the layer)")
            try:   # read back as Keras does: str.splitlines(), trailing empty lines dropped
                vocab = data.decode("utf-8").splitlines()
            except UnicodeDecodeError as e:
                raise LayerError(f"its vocabulary.txt asset is not UTF-8 (byte {e.start})") from None
            while vocab and vocab[-1] == "":
                vocab.pop()
        out["vocabulary"] = list(vocab)
        for k in ("pad_to_max_tokens", "vocabulary_size", "has_input_vocabulary"):
            f.get(k)   # inert for output_mode="int"
        return out


__all__ = ["TextVectorization", "OOV_TOKEN", "MAX_VOCABULARY"]
