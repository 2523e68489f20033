// ctest cases for text: `rnncompile_text_tests CASE [PATH]`. PATH: the cases file (text_cases), Keras's
// goldens (text_goldens; exit 77 = skipped when absent) or the models folder (text_host, text_in_graph:
// hand-made models written by tests/test_cpp.py).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "rnncompile/runtime.hpp"
#include "test_util.hpp"
#include "rnncompile/text.hpp"

namespace fs = std::filesystem;
using namespace rnncompile;
using rnncompile_test::TempDir;
using rnncompile_test::failures;
using rnncompile_test::expect_error;
using nlohmann::json;

namespace {

std::string path_arg;
constexpr int kSkip = 77;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return json::parse(in);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TextOptions options_of(const json& o) {
  TextOptions opt;
  const json& st = o.value("standardize", json());
  opt.standardize = st.is_null()                         ? Standardize::None
                    : st == "lower"                      ? Standardize::Lower
                    : st == "strip_punctuation"          ? Standardize::StripPunctuation
                                                         : Standardize::LowerAndStripPunctuation;
  const json& sp = o.value("split", json());
  opt.split = sp.is_null() ? Split::None : sp == "character" ? Split::Character : Split::Whitespace;
  const json& ng = o.value("ngrams", json());
  if (ng.is_number_integer()) {  // Keras's ngrams=n: widths 1..n
    std::vector<int64_t> widths;
    for (int64_t w = 1; w <= ng.get<int64_t>(); ++w) widths.push_back(w);
    opt.ngrams = widths;
  } else if (ng.is_array()) {
    opt.ngrams = ng.get<std::vector<int64_t>>();
  }
  const json& len = o.value("output_sequence_length", json());
  if (!len.is_null()) opt.output_sequence_length = len.get<int64_t>();
  return opt;
}

// The [batch, L] batch must be each ragged row cut or padded with 0 to L.
bool matches_padded(const Tensor& t, const std::vector<std::vector<int64_t>>& ragged, int64_t length) {
  if (t.shape() != std::vector<int64_t>{static_cast<int64_t>(ragged.size()), length}) return false;
  const int64_t* v = t.data<int64_t>();
  for (std::size_t r = 0; r < ragged.size(); ++r)
    for (int64_t k = 0; k < length; ++k) {
      int64_t want = k < static_cast<int64_t>(ragged[r].size()) ? ragged[r][static_cast<std::size_t>(k)] : 0;
      if (v[static_cast<int64_t>(r) * length + k] != want) return false;
    }
  return true;
}

std::string describe(const std::vector<int64_t>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

// ---- model-free ----------------------------------------------------------------------------------

// Every text x option set x length of tools/make_tokenizer_cases.py: ids identical to Python's.
void test_text_cases() {
  json doc = read_json(path_arg);
  const auto texts = doc.at("texts").get<std::vector<std::string>>();
  const auto& vocabularies = doc.at("vocabularies");
  int checked = 0;
  for (const auto& c : doc.at("cases")) {
    const auto vocab = vocabularies.at(c.at("vocabulary").get<std::size_t>()).get<std::vector<std::string>>();
    const auto ragged = c.at("ids").get<std::vector<std::vector<int64_t>>>();
    const auto lengths = c.at("lengths");
    for (std::size_t k = 0; k < lengths.size(); ++k) {
      json o = c.at("options");
      o["output_sequence_length"] = lengths[k];
      TextVectorizer tv(vocab, options_of(o));
      const auto shape = c.at("shapes")[k].get<std::vector<int64_t>>();
      Tensor batch = tv(texts);
      if (!matches_padded(batch, ragged, shape[1])) {
        std::cerr << c.at("name").get<std::string>() << " length " << lengths[k].dump() << ": batch differs\n";
        ++failures;
      }
      for (std::size_t r = 0; r < texts.size(); ++r)
        if (tv.ids(texts[r]) != ragged[r]) {
          std::cerr << c.at("name").get<std::string>() << " text " << r << ": got " << describe(tv.ids(texts[r]))
                    << ", Python gives " << describe(ragged[r]) << "\n";
          ++failures;
        }
      // One row alone, and an empty batch ([0, L], L at least 1).
      Tensor one = tv({texts.back()});
      CHECK(one.shape()[0] == 1);
      Tensor none = tv({});
      CHECK(none.shape() == (std::vector<int64_t>{0, lengths[k].is_null() ? 1 : lengths[k].get<int64_t>()}));
      ++checked;
    }
  }
  CHECK(checked >= 60);
  std::cout << checked << " option sets x " << texts.size() << " texts: ids identical to Python's\n";
}

// Keras's own ids (tests/goldens/text/goldens.json, tools/make_text_goldens.py), where present.
int test_text_goldens() {
  if (!fs::exists(path_arg)) {
    std::cout << "no Keras goldens at " << path_arg << ": skipped\n";
    return kSkip;
  }
  json doc = read_json(path_arg);
  std::vector<std::string> vocab = {"", "[UNK]"};
  for (const auto& t : doc.at("vocabulary")) vocab.push_back(t.get<std::string>());
  int checked = 0, refused = 0;
  int unusable = 0;
  auto run_case = [&](const json& c, std::vector<std::string> texts, const std::vector<std::string>& table,
                      const TextOptions& opt) {
    const auto ragged = c.at("ids").get<std::vector<std::vector<int64_t>>>();
    if (c.contains("texts")) texts = c.at("texts").get<std::vector<std::string>>();
    if (ragged.size() != texts.size()) {  // a case whose own texts the file does not hold
      ++unusable;
      return;
    }
    TextVectorizer tv(table, opt);
    Tensor batch = tv(texts);
    int64_t longest = 0;
    for (const auto& r : ragged) longest = std::max<int64_t>(longest, static_cast<int64_t>(r.size()));
    // Keras gives a batch of token-less texts zero steps; rnncompile pads to at least one.
    const int64_t length = opt.output_sequence_length ? *opt.output_sequence_length : std::max<int64_t>(1, longest);
    if (!matches_padded(batch, ragged, length)) {
      std::cerr << "golden " << c.at("name").get<std::string>() << ": ids differ from Keras's\n";
      ++failures;
    }
    ++checked;
  };
  const auto corpus = doc.at("corpus").get<std::vector<std::string>>();
  const auto emptyish = doc.at("emptyish").get<std::vector<std::string>>();
  for (const char* key : {"cases", "emptyish_cases"}) {
    for (const auto& c : doc.at(key)) {
      TextOptions opt;
      bool ngrams_without_split = c.at("options").value("split", json()).is_null() &&
                                  !c.at("options").value("ngrams", json()).is_null();
      if (ngrams_without_split) {  // refused, as rnncompile.tokenizer does
        EXPECT_ERROR(TextVectorizer(vocab, options_of(c.at("options"))), "ngrams need a split");
        ++refused;
        continue;
      }
      if (c.contains("error")) continue;
      run_case(c, std::string(key) == "cases" ? corpus : emptyish, vocab, options_of(c.at("options")));
    }
  }
  for (const auto& c : doc.value("vocabulary_cases", json::array())) {
    if (c.contains("error")) continue;  // refused by Keras when the vocabulary is set (the build's job)
    run_case(c, c.at("texts").get<std::vector<std::string>>(), c.at("vocabulary").get<std::vector<std::string>>(),
             TextOptions{});
  }
  std::cout << checked << " Keras golden cases identical, " << refused << " refused as rnncompile does, " << unusable
            << " without their texts in the file\n";
  CHECK(checked > 100);
  return 0;
}

void test_text_refusals() {
  TextVectorizer tv({"", "[UNK]", "a"}, TextOptions{});
  // Invalid UTF-8, each named by input, row and byte.
  const std::vector<std::string> bad = {"\xff", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82", "\x80", "ok \xc3"};
  for (const auto& b : bad)
    EXPECT_ERROR(tv({"fine", "also fine", b}, "text input 'review'"), "text input 'review': row 2: invalid UTF-8 at byte",
                 "expected UTF-8 text");
  EXPECT_ERROR(tv.ids("ab\xfe"), "invalid UTF-8 at byte 2 (0xfe)");
  for (const std::string& good : std::vector<std::string>{"", "a", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                                 "\xed\x9f\xbf", std::string("nul\0inside", 10)})
    CHECK(invalid_utf8_offset(good) == std::string::npos);
  CHECK(invalid_utf8_offset("0123456789abcdef\xff") == 16);
  // Vocabularies and options a build never writes.
  EXPECT_ERROR(TextVectorizer({"a", "b"}, TextOptions{}, "v.json"), "v.json", "must start with \"\" (id 0) and \"[UNK]\"");
  EXPECT_ERROR(TextVectorizer({"", "[UNK]", "a", ""}, TextOptions{}), "term 3 is \"\"");
  EXPECT_ERROR(TextVectorizer({"", "[UNK]", "a", "a"}, TextOptions{}), "term 3 \"a\" is repeated");
  EXPECT_ERROR(TextVectorizer({"", "[UNK]", "a\xff"}, TextOptions{}), "term 2 is not valid UTF-8");
  TextOptions o;
  o.ngrams = std::vector<int64_t>{1, 0};
  EXPECT_ERROR(TextVectorizer({"", "[UNK]"}, o), "n-gram widths must be >= 1");
  o.ngrams.reset();
  o.output_sequence_length = 0;
  EXPECT_ERROR(TextVectorizer({"", "[UNK]"}, o), "output_sequence_length must be >= 1");
  o = TextOptions{};
  o.split = Split::None;
  o.ngrams = std::vector<int64_t>{2};
  EXPECT_ERROR(TextVectorizer({"", "[UNK]"}, o), "ngrams need a split");
  // "[UNK]" again as an ordinary term takes that id (as Keras's and Python's lookup do).
  o = TextOptions{};
  o.standardize = Standardize::None;
  CHECK(TextVectorizer({"", "[UNK]", "[UNK]", "x"}, o).ids("[UNK] x y") == (std::vector<int64_t>{2, 3, 1}));
  // SHA-256 against Python's hashlib, across the padding boundaries.
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha256_hex(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  CHECK(sha256_hex(std::string(119, 'a')) == "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  std::string bytes;
  for (int k = 0; k < 5; ++k)
    for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
  CHECK(sha256_hex(bytes) == "d414b085826eb06778483ba35564dc849e643359f69ed9747878ba6e54985bed");
}

// The manifest's "preprocessing" entry and its vocabulary file.
std::string manifest_text(const std::string& entry_fields) {
  return R"({"inputs": [{"name": "ids", "dtype": "int64", "shape": ["batch", "time"], "token_range": 4}],
             "outputs": [{"name": "out", "dtype": "float32", "shape": ["batch", 1]}],
             "preprocessing": [{"kind": "TextVectorization", "layer": "tv",
               "input": {"name": "review", "dtype": "string", "shape": ["batch", 1]}, "output": "ids",
               "standardize": "lower_and_strip_punctuation", "split": "whitespace", "ngrams": null,
               "output_sequence_length": null, "vocabulary": "vocabulary.json")" +
         entry_fields + "}]}";
}

void test_text_manifest() {
  TempDir dir;
  const std::string vocab = R"(["", "[UNK]", "the", "cat"])";
  dir.write("vocabulary.json", vocab);
  dir.write("manifest.json", manifest_text(", \"vocabulary_sha256\": \"" + sha256_hex(vocab) + "\""));
  Manifest m = Manifest::load(dir.path.string());
  CHECK(m.preprocessing.size() == 1 && m.preprocessing[0].input.name == "review");
  CHECK(m.text_inputs().size() == 1 && m.preprocessing_of("review") && !m.preprocessing_of("ids"));
  CHECK(m.preprocessing[0].options.split == Split::Whitespace && !m.preprocessing[0].options.ngrams);
  TextVectorizer tv = TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]);
  CHECK(tv({"The CAT!", "dog"}).to_vector<int64_t>() == (std::vector<int64_t>{2, 3, 1, 0}));
  // A damaged or missing vocabulary is refused, naming the file.
  const std::string file = (dir.path / "vocabulary.json").string();
  dir.write("vocabulary.json", R"(["", "[UNK]", "the", "cow"])");
  EXPECT_ERROR(TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]), file, "damaged vocabulary: its sha256 is");
  m.preprocessing[0].vocabulary_sha256.clear();  // no hash: the content is still checked
  dir.write("vocabulary.json", R"({"the": 2})");
  EXPECT_ERROR(TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]), file, "expected a JSON array");
  dir.write("vocabulary.json", R"(["", "[UNK]", 7])");
  EXPECT_ERROR(TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]), "$[2]: expected a string");
  dir.write("vocabulary.json", R"(["the", "cat"])");
  EXPECT_ERROR(TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]), "damaged vocabulary", "must start with");
  dir.write("vocabulary.json", R"(["", "[UNK]", "the)");
  EXPECT_ERROR(TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]), file, "damaged vocabulary");
  fs::remove(dir.path / "vocabulary.json");
  EXPECT_ERROR(TextVectorizer::from_manifest(dir.path.string(), m.preprocessing[0]), file,
               "the vocabulary of text input 'review' is missing");
  // Damaged entries name their JSON path.
  auto parse = [](const std::string& fields) { Manifest::parse(manifest_text(fields), "manifest.json"); };
  EXPECT_ERROR(parse(", \"standardize\": \"upper\""), "$.preprocessing[0].standardize", "expected \"lower_and_strip_punctuation\"");
  EXPECT_ERROR(parse(", \"split\": 3"), "$.preprocessing[0].split");
  EXPECT_ERROR(parse(", \"ngrams\": [1, 0]"), "$.preprocessing[0].ngrams", "widths >= 1");
  EXPECT_ERROR(parse(", \"output_sequence_length\": 0"), "$.preprocessing[0].output_sequence_length");
  EXPECT_ERROR(parse(", \"vocabulary\": \"../../etc/passwd\""), "$.preprocessing[0].vocabulary", "inside the build directory");
  EXPECT_ERROR(parse(", \"output\": \"nope\""), "$.preprocessing[0].output", "\"nope\" is not one of $.inputs");
  EXPECT_ERROR(parse(", \"kind\": \"StringLookup\""), "$.preprocessing[0].kind");
  EXPECT_ERROR(parse(", \"input\": {\"name\": \"review\", \"dtype\": \"string\", \"shape\": [\"batch\", 2]}"),
               "$.preprocessing[0].input.shape", "[batch] or [batch, 1]");
  EXPECT_ERROR(parse(", \"input\": {\"name\": \"ids\", \"dtype\": \"string\", \"shape\": [\"batch\"]}"),
               "\"ids\" is also a graph input");
  EXPECT_ERROR(parse(", \"vocabulary_sha256\": \"abc\""), "$.preprocessing[0].vocabulary_sha256");
  // Left-out option fields read as null, as Python's from_dict.
  Manifest bare = Manifest::parse(R"({"inputs": [{"name": "ids", "dtype": "int64", "shape": ["batch", "time"]}],
      "outputs": [{"name": "out", "dtype": "float32", "shape": ["batch", 1]}],
      "preprocessing": [{"kind": "TextVectorization", "input": {"name": "t", "dtype": "string", "shape": ["batch"]},
                         "output": "ids", "vocabulary": "v.json"}]})",
                                  "manifest.json");
  CHECK(bare.preprocessing[0].options.standardize == Standardize::None &&
        bare.preprocessing[0].options.split == Split::None);
  // String tensors do not exist: texts go in a TextMap.
  EXPECT_ERROR(Tensor(DType::String, {2}), "tensors hold no strings");
  CHECK(std::string(dtype_name(DType::String)) == "string");
}

void test_text_threads() {
  TextOptions o;
  o.ngrams = std::vector<int64_t>{1, 2};
  std::vector<std::string> vocab = {"", "[UNK]"};
  for (int i = 0; i < 500; ++i) vocab.push_back("w" + std::to_string(i));
  TextVectorizer tv(vocab, o);
  std::vector<std::string> texts;
  for (int r = 0; r < 64; ++r) {
    std::string t;
    for (int w = 0; w < 30; ++w) t += "W" + std::to_string((r * 31 + w * 7) % 600) + (w % 5 ? " " : ",\t");
    texts.push_back(t);
  }
  const auto expected = tv(texts).to_vector<int64_t>();
  std::vector<int> same(4, 0);
  std::vector<std::thread> pool;
  for (int i = 0; i < 4; ++i)
    pool.emplace_back([&, i] {
      int ok = 1;
      for (int k = 0; k < 20; ++k) ok &= tv(texts).to_vector<int64_t>() == expected;
      same[static_cast<std::size_t>(i)] = ok;
    });
  for (auto& t : pool) t.join();
  for (int s : same) CHECK(s == 1);
}

// ---- hand-made models (tests/test_cpp.py writes them into the models folder) -----------------

Options one_thread() {
  Options o;
  o.threads = 1;
  return o;
}

// text_host: model.onnx passes its int64 ids input "ids" through as "token_ids"; the manifest has a
// host tokenizer for text input "review" (ngrams 1, 2; vocabulary in tests/test_cpp.py).
void test_text_host() {
  const std::string dir = path_arg + "/text_host";
  auto model = Model::open(dir, one_thread());
  auto session = model.session();
  const TextMap texts = {{"review", {"The cat sat.", "CAF\xc3\x89 caf\xc3\xa9 \xf0\x9f\x98\x80", ""}}};
  auto outs = session.run(texts);
  const Tensor& ids = outs.at("token_ids");
  CHECK(ids.shape() == (std::vector<int64_t>{3, 5}));
  CHECK(ids.to_vector<int64_t>() == (std::vector<int64_t>{2, 3, 4, 7, 8, 1, 9, 10, 1, 1, 0, 0, 0, 0, 0}));
  CHECK(session.run(TensorMap{}, texts).at("token_ids").to_vector<int64_t>() == ids.to_vector<int64_t>());
  CHECK(model.tokenizer("review")(texts.at("review")).to_vector<int64_t>() == ids.to_vector<int64_t>());
  // Ids computed elsewhere may be fed directly.
  auto direct = session.run({{"ids", Tensor::from_vector<int64_t>({1, 2}, {2, 3})}});
  CHECK(direct.at("token_ids").to_vector<int64_t>() == (std::vector<int64_t>{2, 3}));
  // An empty text batch: [0, 1].
  CHECK(session.run(TextMap{{"review", {}}}).at("token_ids").shape() == (std::vector<int64_t>{0, 1}));
  EXPECT_ERROR(session.run(TextMap{{"reviews", {"x"}}}), "text input 'reviews'",
               "unknown text input; the model's text inputs are: review");
  EXPECT_ERROR(session.run(TextMap{}), "text input 'review'", "missing text input; expected one UTF-8 string per batch row",
               "its token ids as input 'ids'");
  EXPECT_ERROR(session.run({{"ids", Tensor::from_vector<int64_t>({1, 1}, {2})}}, texts), "input 'ids'", "given twice");
  EXPECT_ERROR(session.run(TextMap{{"review", {"ok", std::string("bad \xc3\x28")}}}), "text input 'review'", "row 1",
               "invalid UTF-8 at byte 4");
  EXPECT_ERROR(model.tokenizer("ids"), "text input 'ids'", "no host tokenizer");
  // The vocabulary is read and checked when the model opens.
  TempDir copy;
  for (const char* f : {"model.onnx", "manifest.json"}) fs::copy_file(dir + "/" + f, copy.path / f);
  EXPECT_ERROR(Model::open(copy.path.string()), (copy.path / "vocabulary.json").string(), "missing");
  copy.write("vocabulary.json", read_file(dir + "/vocabulary.json") + " ");
  EXPECT_ERROR(Model::open(copy.path.string()), "damaged vocabulary: its sha256 is");
}

// text_in_graph: model.onnx takes the strings ("review" [batch, 1], "title" [batch]) and maps them
// with ai.onnx.ml LabelEncoder: the(2) cat(3) "a\0b"(4) café(5), else 1.
void test_text_in_graph() {
  auto model = Model::open(path_arg + "/text_in_graph", one_thread());
  CHECK(model.manifest().text_inputs().size() == 2 && model.manifest().preprocessing.empty());
  auto session = model.session();
  const TextMap texts = {{"review", {"the", "cat", std::string("a\0b", 3), "dog"}},
                         {"title", {"caf\xc3\xa9", "", "the", "Cat"}}};
  auto outs = session.run(texts);
  CHECK(outs.at("label").shape() == (std::vector<int64_t>{4, 1}));
  CHECK(outs.at("label").to_vector<int64_t>() == (std::vector<int64_t>{2, 3, 4, 1}));
  CHECK(outs.at("title_label").shape() == (std::vector<int64_t>{4}));
  CHECK(outs.at("title_label").to_vector<int64_t>() == (std::vector<int64_t>{5, 1, 2, 1}));
  EXPECT_ERROR(session.run(TextMap{{"review", {"the"}}}), "text input 'title'", "missing text input");
  EXPECT_ERROR(session.run(TextMap{{"review", {"the"}}, {"title", {"a", "b"}}}), "text input 'title'",
               "batch size 2 differs from the other inputs' 1");
  EXPECT_ERROR(session.run(TextMap{{"review", {"\xff"}}, {"title", {"a"}}}), "text input 'review'", "row 0",
               "invalid UTF-8");
  EXPECT_ERROR(session.run({{"review", Tensor::from_vector<int64_t>({1, 1}, {2})}}), "input 'review'",
               "a text input: pass its strings");
  EXPECT_ERROR(session.run(TextMap{{"body", {"x"}}}), "text input 'body'", "the model's text inputs are: review, title");
  EXPECT_ERROR(session.run(TensorMap{}), "text input 'review'", "missing text input");
  // Still right after refusals (no stale feeds).
  CHECK(session.run(texts).at("label").to_vector<int64_t>() == (std::vector<int64_t>{2, 3, 4, 1}));
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, std::function<int()>> cases = {
      {"text_cases", [] { return test_text_cases(), 0; }},
      {"text_goldens", [] { return test_text_goldens(); }},
      {"text_refusals", [] { return test_text_refusals(), 0; }},
      {"text_manifest", [] { return test_text_manifest(), 0; }},
      {"text_threads", [] { return test_text_threads(), 0; }},
      {"text_host", [] { return test_text_host(), 0; }},
      {"text_in_graph", [] { return test_text_in_graph(), 0; }},
  };
  if (argc < 2 || !cases.count(argv[1])) {
    std::cerr << "usage: rnncompile_text_tests CASE [PATH]; cases:";
    for (const auto& c : cases) std::cerr << " " << c.first;
    std::cerr << "\n";
    return 2;
  }
  if (argc > 2) path_arg = argv[2];
  int rc = 0;
  try {
    rc = cases.at(argv[1])();
  } catch (const std::exception& e) {
    std::cerr << "unexpected exception: " << e.what() << "\n";
    return 1;
  }
  if (failures) std::cerr << failures << " check(s) failed\n";
  return failures ? 1 : rc;
}
