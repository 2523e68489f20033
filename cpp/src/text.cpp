// TextVectorizer: rnncompile/tokenizer.py in C++ (the rules are in rnncompile/text.hpp). Byte-level
// standardization is exact on UTF-8: only ASCII bytes change, and no byte of a multi-byte sequence is
// ASCII. Tokens are string_views into one scratch buffer per call; n-grams are joined into one reused
// string; lookups go through a hash map keyed by views into the vocabulary's own strings.
#include "rnncompile/text.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace rnncompile {

namespace {

constexpr const char* kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // Python's string.punctuation
constexpr const char* kWhitespace = " \t\n\r\v\f";                           // tf.strings.split's (ASCII isspace)

// FNV-1a over 8-byte words: the vocabulary's keys are short, and this beats std::hash on them.
struct ViewHash {
  std::size_t operator()(std::string_view s) const noexcept {
    uint64_t h = 1469598103934665603ull;
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 1099511628211ull;
      h ^= h >> 29;
    }
    for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
    return static_cast<std::size_t>(h ^ (h >> 32));
  }
};

std::string hex_byte(unsigned char b) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

}  // namespace

std::size_t invalid_utf8_offset(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // Skip ASCII eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;        // overlong
      else if (c == 0xED) hi = 0x9F;   // surrogates U+D800..U+DFFF
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;        // overlong
      else if (c == 0xF4) hi = 0x8F;   // above U+10FFFF
    } else {
      return i;  // a continuation byte, C0/C1 (overlong) or F5..FF
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

// ---- SHA-256 (FIPS 180-4) -------------------------------------------------------------------
std::string sha256_hex(std::string_view bytes) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int r) { return (x >> r) | (x << (32 - r)); };
  auto block = [&](const unsigned char* p) {
    uint32_t w[64];
    for (int t = 0; t < 16; ++t)
      w[t] = uint32_t(p[4 * t]) << 24 | uint32_t(p[4 * t + 1]) << 16 | uint32_t(p[4 * t + 2]) << 8 | uint32_t(p[4 * t + 3]);
    for (int t = 16; t < 64; ++t) {
      uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[t] + w[t];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  };
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size(), i = 0;
  for (; i + 64 <= n; i += 64) block(data + i);
  unsigned char tail[128] = {};
  std::size_t rest = n - i;
  if (rest) std::memcpy(tail, data + i, rest);
  tail[rest] = 0x80;
  std::size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  const uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int b = 0; b < 8; ++b) tail[tail_len - 1 - b] = static_cast<unsigned char>(bits >> (8 * b));
  for (std::size_t off = 0; off < tail_len; off += 64) block(tail + off);
  std::string out;
  const char* digits = "0123456789abcdef";
  for (uint32_t v : h)
    for (int s = 28; s >= 0; s -= 4) out += digits[(v >> s) & 15];
  return out;
}

// ---- the tokenizer -------------------------------------------------------------------------
struct TextVectorizer::Impl {
  std::vector<std::string> vocabulary;
  TextOptions options;
  std::unordered_map<std::string_view, int64_t, ViewHash> ids;  // views into `vocabulary`
  std::array<int16_t, 256> standardize{};                        // byte -> byte, or -1: deleted
  std::array<bool, 256> whitespace{};
  bool identity = true;  // standardize leaves every byte as it is

  // Per-call scratch, so that no token allocates.
  struct Scratch {
    std::string text;
    std::vector<std::string_view> tokens;
    std::string joined;
  };

  std::string_view standardized(std::string_view text, Scratch& s) const {
    if (identity) return text;
    s.text.resize(text.size());
    char* out = s.text.data();
    std::size_t k = 0;
    for (char ch : text) {
      int16_t v = standardize[static_cast<unsigned char>(ch)];
      if (v >= 0) out[k++] = static_cast<char>(v);
    }
    return std::string_view(s.text.data(), k);
  }

  int64_t lookup(std::string_view token) const {
    if (token.empty()) return 0;
    auto it = ids.find(token);
    return it == ids.end() ? 1 : it->second;
  }

  // Appends the ids of one (valid UTF-8) text to `out`.
  void append_ids(std::string_view text, Scratch& s, std::vector<int64_t>& out) const {
    const std::string_view t = standardized(text, s);
    s.tokens.clear();
    switch (options.split) {
      case Split::Whitespace: {
        std::size_t i = 0;
        const std::size_t n = t.size();
        while (i < n) {
          while (i < n && whitespace[static_cast<unsigned char>(t[i])]) ++i;
          std::size_t start = i;
          while (i < n && !whitespace[static_cast<unsigned char>(t[i])]) ++i;
          if (i > start) s.tokens.push_back(t.substr(start, i - start));
        }
        break;
      }
      case Split::Character:
        for (std::size_t i = 0; i < t.size();) {
          auto c = static_cast<unsigned char>(t[i]);
          std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
          s.tokens.push_back(t.substr(i, len));
          i += len;
        }
        break;
      case Split::None:
        s.tokens.push_back(t);
        break;
    }
    if (!options.ngrams) {
      for (std::string_view tok : s.tokens) out.push_back(lookup(tok));
      return;
    }
    const std::size_t count = s.tokens.size();
    for (int64_t width : *options.ngrams) {
      const auto w = static_cast<std::size_t>(width);
      if (w > count) continue;
      for (std::size_t i = 0; i + w <= count; ++i) {
        if (w == 1) {
          out.push_back(lookup(s.tokens[i]));
          continue;
        }
        s.joined.assign(s.tokens[i].data(), s.tokens[i].size());
        for (std::size_t j = 1; j < w; ++j) {
          s.joined += ' ';
          s.joined.append(s.tokens[i + j].data(), s.tokens[i + j].size());
        }
        out.push_back(lookup(s.joined));
      }
    }
  }
};

TextVectorizer::TextVectorizer(std::vector<std::string> vocabulary, TextOptions options, const std::string& where) {
  auto impl = std::make_shared<Impl>();
  if (vocabulary.size() < 2 || vocabulary[0] != "" || vocabulary[1] != "[UNK]")
    throw Error("the vocabulary must start with \"\" (id 0) and \"[UNK]\" (id 1)", where);
  if (options.ngrams) {
    if (options.split == Split::None)
      throw Error("ngrams need a split (with split none Keras pairs up the texts of a batch)", where);
    for (int64_t w : *options.ngrams)
      if (w < 1) throw Error("n-gram widths must be >= 1, got " + std::to_string(w), where);
  }
  if (options.output_sequence_length && *options.output_sequence_length < 1)
    throw Error("output_sequence_length must be >= 1 or none, got " + std::to_string(*options.output_sequence_length),
                where);
  impl->vocabulary = std::move(vocabulary);
  impl->options = std::move(options);
  impl->ids.reserve(impl->vocabulary.size());
  for (std::size_t i = 1; i < impl->vocabulary.size(); ++i) {
    const std::string& term = impl->vocabulary[i];
    if (term.empty()) throw Error("term " + std::to_string(i) + " is \"\"; only id 0 may be the mask token", where);
    if (std::size_t bad = invalid_utf8_offset(term); bad != std::string_view::npos)
      throw Error("term " + std::to_string(i) + " is not valid UTF-8 (byte " + std::to_string(bad) + ")", where);
    // "[UNK]" may come again as an ordinary term (Keras gives it that id); any other repeat is damage.
    auto [it, added] = impl->ids.emplace(std::string_view(term), static_cast<int64_t>(i));
    if (!added && term != "[UNK]")
      throw Error("term " + std::to_string(i) + " \"" + term + "\" is repeated; every term needs one id", where);
    it->second = static_cast<int64_t>(i);  // the last one wins, as in Python's dict
  }
  const Standardize st = impl->options.standardize;
  const bool lower = st == Standardize::Lower || st == Standardize::LowerAndStripPunctuation;
  const bool strip = st == Standardize::StripPunctuation || st == Standardize::LowerAndStripPunctuation;
  impl->identity = !lower && !strip;
  for (int b = 0; b < 256; ++b) {
    int16_t v = static_cast<int16_t>(b);
    if (lower && b >= 'A' && b <= 'Z') v = static_cast<int16_t>(b - 'A' + 'a');
    if (strip && b != 0 && std::strchr(kPunctuation, b)) v = -1;
    impl->standardize[static_cast<std::size_t>(b)] = v;
    impl->whitespace[static_cast<std::size_t>(b)] = b != 0 && std::strchr(kWhitespace, b) != nullptr;
  }
  impl_ = std::move(impl);
}

TextVectorizer TextVectorizer::from_manifest(const std::string& out_dir, const TextPreprocessing& spec) {
  const std::string path = out_dir + "/" + spec.vocabulary;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("the vocabulary of text input '" + spec.input.name + "' is missing or unreadable", path);
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string bytes = buf.str();
  if (!spec.vocabulary_sha256.empty()) {
    std::string got = sha256_hex(bytes);
    std::string want = spec.vocabulary_sha256;
    for (char& c : want) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    if (got != want)
      throw Error("damaged vocabulary: its sha256 is " + got + ", the manifest says " + spec.vocabulary_sha256, path);
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(std::string("damaged vocabulary: ") + e.what(), path);
  }
  if (!doc.is_array()) throw Error("damaged vocabulary: expected a JSON array of strings", path);
  std::vector<std::string> terms;
  terms.reserve(doc.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    if (!doc[i].is_string())
      throw Error("damaged vocabulary: $[" + std::to_string(i) + "]: expected a string, found " +
                      doc[i].dump().substr(0, 40),
                  path);
    terms.push_back(doc[i].get<std::string>());
  }
  try {
    return TextVectorizer(std::move(terms), spec.options, path);
  } catch (const Error& e) {
    throw Error("damaged vocabulary: " + e.message(), path);
  }
}

std::vector<int64_t> TextVectorizer::ids(std::string_view text, const std::string& where) const {
  if (std::size_t bad = invalid_utf8_offset(text); bad != std::string_view::npos)
    throw Error("invalid UTF-8 at byte " + std::to_string(bad) + " (" + hex_byte(static_cast<unsigned char>(text[bad])) +
                    "); expected UTF-8 text",
                where);
  Impl::Scratch scratch;
  std::vector<int64_t> out;
  impl_->append_ids(text, scratch, out);
  return out;
}

Tensor TextVectorizer::operator()(const std::vector<std::string>& texts, const std::string& where) const {
  const Impl& impl = *impl_;
  Impl::Scratch scratch;
  std::vector<int64_t> flat;
  std::vector<std::size_t> ends;
  ends.reserve(texts.size());
  std::size_t longest = 0, start = 0;
  for (std::size_t r = 0; r < texts.size(); ++r) {
    const std::string& text = texts[r];
    if (std::size_t bad = invalid_utf8_offset(text); bad != std::string_view::npos)
      throw Error("row " + std::to_string(r) + ": invalid UTF-8 at byte " + std::to_string(bad) + " (" +
                      hex_byte(static_cast<unsigned char>(text[bad])) + "); expected UTF-8 text",
                  where);
    impl.append_ids(text, scratch, flat);
    ends.push_back(flat.size());
    longest = std::max(longest, flat.size() - start);
    start = flat.size();
  }
  const std::size_t length = impl.options.output_sequence_length
                                 ? static_cast<std::size_t>(*impl.options.output_sequence_length)
                                 : std::max<std::size_t>(1, longest);
  std::vector<int64_t> values(texts.size() * length, 0);
  start = 0;
  for (std::size_t r = 0; r < texts.size(); ++r) {
    const std::size_t n = std::min(length, ends[r] - start);
    std::copy(flat.begin() + static_cast<std::ptrdiff_t>(start), flat.begin() + static_cast<std::ptrdiff_t>(start + n),
              values.begin() + static_cast<std::ptrdiff_t>(r * length));
    start = ends[r];
  }
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(texts.size()), static_cast<int64_t>(length)},
                                      std::move(values));
}

const TextOptions& TextVectorizer::options() const { return impl_->options; }
const std::vector<std::string>& TextVectorizer::vocabulary() const { return impl_->vocabulary; }

}  // namespace rnncompile
