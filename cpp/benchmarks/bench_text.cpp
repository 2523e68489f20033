// rnncompile_text_bench: host tokenization throughput of rnncompile::TextVectorizer on one thread.
//
//   rnncompile_text_bench [--seconds 1.0] [--batch 32]
//   rnncompile_text_bench --build OUT --texts FILE [--seconds 1.0] [--batch 32]
//
// The second form times the tokenizer of a build directory (its first manifest "preprocessing"
// entry) on the texts of FILE (UTF-8, one per line), as tools/text_bench.py runs it beside the Python
// and in-graph tokenizers on the same texts: prints {"texts_per_s": ..., "ms_per_batch": ...}.
//
// Synthetic movie reviews (mixed case, ASCII punctuation, some non-ASCII words, tabs and newlines) of
// about 20 and about 250 words, a 20,000-term vocabulary (so that ~10% of the words are out of it), the
// default options (lower_and_strip_punctuation, whitespace) and ngrams (1, 2), batches of `batch`
// texts to the [batch, L] int64 tensor. Prints one JSON object: texts per second and MB per second for
// each case (best of 3 runs of `seconds` each).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "rnncompile/runtime.hpp"
#include "rnncompile/text.hpp"

using namespace rnncompile;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> make_words(std::size_t n) {
  std::mt19937 rng(7);
  const std::string letters = "etaoinshrdlucmfwypvbgkjqxz";
  std::vector<std::string> words;
  for (std::size_t i = 0; i < n; ++i) {
    std::string w;
    std::size_t len = 2 + rng() % 8;
    for (std::size_t k = 0; k < len; ++k) w += letters[std::min<std::size_t>(rng() % 26, rng() % 26)];
    words.push_back(w + std::to_string(i));  // unique
  }
  return words;
}

std::vector<std::string> make_reviews(const std::vector<std::string>& words, std::size_t count, std::size_t length,
                                      unsigned seed) {
  std::mt19937 rng(seed);
  const char* seps[] = {" ", " ", " ", " ", " ", ", ", ". ", "! ", "\t", "\n", "  ", " -- "};
  const char* extra[] = {"caf\xc3\xa9", "na\xc3\xafve", "\xf0\x9f\x98\x80", "don't", "(really)", "\"quoted\""};
  std::vector<std::string> out;
  for (std::size_t r = 0; r < count; ++r) {
    std::string t;
    for (std::size_t w = 0; w < length; ++w) {
      std::string word = rng() % 20 == 0 ? extra[rng() % 6] : words[(rng() % words.size() + rng() % 300) % words.size()];
      if (rng() % 10 == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      t += word;
      t += seps[rng() % 12];
    }
    out.push_back(t);
  }
  return out;
}

struct Result {
  double texts_per_s, mb_per_s;
};

Result measure(const TextVectorizer& tv, const std::vector<std::string>& texts, std::size_t batch, double seconds) {
  std::size_t bytes_all = 0;
  for (const auto& t : texts) bytes_all += t.size();
  double best_rate = 0, best_mb = 0;
  std::vector<std::vector<std::string>> batches;
  for (std::size_t i = 0; i + batch <= texts.size(); i += batch)
    batches.emplace_back(texts.begin() + static_cast<std::ptrdiff_t>(i), texts.begin() + static_cast<std::ptrdiff_t>(i + batch));
  const double bytes_per_text = double(bytes_all) / double(texts.size());
  volatile int64_t sink = 0;
  for (int run = 0; run < 3; ++run) {
    std::size_t done = 0;
    const auto start = Clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
      for (const auto& b : batches) {
        Tensor ids = tv(b);
        sink = sink + ids.data<int64_t>()[0];
        done += b.size();
      }
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    }
    const double rate = double(done) / elapsed;
    if (rate > best_rate) {
      best_rate = rate;
      best_mb = rate * bytes_per_text / 1e6;
    }
  }
  return {best_rate, best_mb};
}

}  // namespace

int main(int argc, char** argv) try {
  double seconds = 1.0;
  std::size_t batch = 32;
  std::string build_dir, texts_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (a == "--batch") batch = static_cast<std::size_t>(std::atoi(argv[i + 1]));
    else if (a == "--build") build_dir = argv[i + 1];
    else if (a == "--texts") texts_file = argv[i + 1];
    else throw Error("unknown option", a);
  }
  if (!build_dir.empty()) {
    const Manifest manifest = Manifest::load(build_dir);
    if (manifest.preprocessing.empty()) throw Error("the build has no host tokenizer (manifest \"preprocessing\")", build_dir);
    const TextVectorizer tv = TextVectorizer::from_manifest(build_dir, manifest.preprocessing[0]);
    std::ifstream in(texts_file, std::ios::binary);
    if (!in) throw Error("cannot read the texts file", texts_file);
    std::vector<std::string> texts;
    for (std::string line; std::getline(in, line);) texts.push_back(line);
    if (texts.size() < batch) throw Error("fewer texts than one batch", texts_file);
    const Result r = measure(tv, texts, batch, seconds);
    std::cout << "{\"texts_per_s\": " << static_cast<int64_t>(r.texts_per_s)
              << ", \"ms_per_batch\": " << double(batch) / r.texts_per_s * 1e3 << "}\n";
    return 0;
  }
  const auto words = make_words(22000);
  std::vector<std::string> vocab = {"", "[UNK]"};
  vocab.insert(vocab.end(), words.begin(), words.begin() + 20000);  // the last 2,000 words are out of it
  TextOptions unigrams;
  TextOptions bigrams;
  bigrams.ngrams = std::vector<int64_t>{1, 2};
  std::vector<std::string> vocab2 = vocab;
  for (std::size_t i = 0; i < 20000; ++i) vocab2.push_back(words[i] + " " + words[(i * 7 + 1) % 20000]);
  const TextVectorizer tv1(vocab, unigrams), tv2(vocab2, bigrams);
  const auto short_reviews = make_reviews(words, 2048, 20, 1);
  const auto long_reviews = make_reviews(words, 512, 250, 2);
  std::cout << "{\"batch\": " << batch << ", \"threads\": 1";
  for (const auto& [name, tv, texts] : {std::tuple{"short_20_words", &tv1, &short_reviews},
                                       std::tuple{"long_250_words", &tv1, &long_reviews},
                                       std::tuple{"short_20_words_bigrams", &tv2, &short_reviews},
                                       std::tuple{"long_250_words_bigrams", &tv2, &long_reviews}}) {
    Result r = measure(*tv, *texts, batch, seconds);
    std::cout << ", \"" << name << "\": {\"texts_per_s\": " << static_cast<int64_t>(r.texts_per_s)
              << ", \"mb_per_s\": " << static_cast<int64_t>(r.mb_per_s * 10) / 10.0 << "}";
  }
  std::cout << "}\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 2;
}
