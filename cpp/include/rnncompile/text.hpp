// Keras TextVectorization(output_mode="int") on the host, exactly as rnncompile/tokenizer.py (the
// Python reference, itself checked against Keras 3.15 / TensorFlow 2.21):
//
//   standardize  Lower: ASCII A-Z only ("É" stays "É"). StripPunctuation: delete the 32 ASCII
//                punctuation characters of Python's string.punctuation, nothing else. Both: lower first.
//   split        Whitespace: on runs of the six ASCII whitespace bytes (space \t \n \r \v \f); NBSP,
//                U+2003, \x1c ... are not whitespace. Character: one token per Unicode code point.
//                None: the whole standardized text is one token.
//   ngrams       widths {1, 2}: every unigram, then every bigram ("a b"), in order.
//   lookup       "" -> 0, out-of-vocabulary -> 1 ("[UNK]"), the terms from 2.
//   length       output_sequence_length L: the first L ids, padded with 0 at the end; none: padded to
//                the longest row of the batch, at least 1.
//
// Texts are UTF-8 std::strings; invalid UTF-8 is an Error naming the input and the row. A
// TextVectorizer is immutable: copies share it, and any number of threads may use one at once.
//
//   auto tok = rnncompile::TextVectorizer::from_manifest("out/reviews", model.manifest().preprocessing[0]);
//   rnncompile::Tensor ids = tok({"A great film!", "dull"});   // int64 [2, L]
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rnncompile/runtime.hpp"

namespace rnncompile {

class TextVectorizer {
 public:
  /// `vocabulary`: the id table, "" and "[UNK]" first, then every term once (the manifest's
  /// vocabulary.json). `where` names the vocabulary in errors (a file path).
  TextVectorizer(std::vector<std::string> vocabulary, TextOptions options, const std::string& where = "vocabulary");
  /// From a manifest "preprocessing" entry: reads OUT_DIR/<spec.vocabulary> and checks its sha256.
  static TextVectorizer from_manifest(const std::string& out_dir, const TextPreprocessing& spec);

  /// The ids of one text, neither truncated nor padded (Keras's ragged output). `where` names the text
  /// in errors ("text input 'review'").
  std::vector<int64_t> ids(std::string_view text, const std::string& where = "text") const;
  /// int64 [batch, L] ids of a batch of texts (see the length rule above). Errors name `where` and the row.
  Tensor operator()(const std::vector<std::string>& texts, const std::string& where = "texts") const;

  const TextOptions& options() const;
  const std::vector<std::string>& vocabulary() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

/// Byte offset of the first byte that is not valid UTF-8 (overlong forms, surrogates and code points
/// above U+10FFFF included), or npos when all of `text` is valid.
std::size_t invalid_utf8_offset(std::string_view text);

/// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace rnncompile
