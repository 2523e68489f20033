// ctest cases for the rnncompile C++ runtime: `rnncompile_runtime_tests CASE [MODELS_DIR]`.
// Hostile calls must end in an rnncompile::Error whose message names the input (or file) and what
// was expected; semantic cases check stateful carry and padding against the model itself.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include "rnncompile/runtime.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace rnncompile;
using rnncompile_test::TempDir;
using rnncompile_test::failures;
using rnncompile_test::expect_error;

namespace {

std::string models_dir;

std::string model_path(const std::string& name) { return models_dir + "/" + name; }

Options one_thread() {
  Options o;
  o.threads = 1;
  return o;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  CHECK(a.shape() == b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const float* x = a.data<float>();
  const float* y = b.data<float>();
  double worst = 0;
  for (int64_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(x[i]) - double(y[i])));
  return worst;
}

Tensor features(int64_t batch, int64_t steps, int64_t width, float phase) {
  std::vector<float> v(static_cast<std::size_t>(batch * steps * width));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * float(i) + phase) * 0.8f;
  return Tensor::from_vector<float>({batch, steps, width}, std::move(v));
}

// ---- model-free cases ----------------------------------------------------------------------------

void test_tensor() {
  auto t = Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t.size() == 6 && t.rank() == 2 && t.shape_text() == "(2, 3)");
  CHECK(t.data<int32_t>()[5] == 6);
  EXPECT_ERROR(t.data<float>(), "holds int32, not float32");
  EXPECT_ERROR(Tensor::from_vector<float>({2, 2}, {1, 2, 3}), "holds 4 values, got 3");
  EXPECT_ERROR(Tensor(DType::Float32, {2, -1}), "negative");
  float raw[2] = {1.5f, 2.5f};
  auto v = Tensor::view<float>({2}, raw);
  CHECK(v.shape_text() == "(2,)");
  EXPECT_ERROR(v.mutable_data<float>(), "read-only");
  auto c = v.cast(DType::Int64);
  CHECK(c.data<int64_t>()[1] == 2);
  auto z = Tensor(DType::Float64, {3});
  CHECK(z.data<double>()[2] == 0.0);
  auto shared = t;  // copies share the buffer; clone() does not
  auto deep = t.clone();
  t.mutable_data<int32_t>()[0] = 42;
  CHECK(shared.data<int32_t>()[0] == 42 && deep.data<int32_t>()[0] == 1);
  // bool (mask inputs): one byte per value, cast both ways as NumPy's astype does
  auto m = Tensor::from_vector<int64_t>({2, 2}, {0, 1, 2, 0}).cast(DType::Bool);
  CHECK(m.dtype() == DType::Bool && dtype_size(DType::Bool) == 1 && std::string(dtype_name(m.dtype())) == "bool");
  CHECK(!m.data<bool>()[0] && m.data<bool>()[1] && m.data<bool>()[2] && !m.data<bool>()[3]);
  CHECK(m.cast(DType::Float32).to_vector<float>() == (std::vector<float>{0, 1, 1, 0}));
  EXPECT_ERROR(m.data<int64_t>(), "holds bool, not int64");
  auto zb = Tensor(DType::Bool, {3});
  CHECK(!zb.data<bool>()[0] && !zb.data<bool>()[2]);
}

void test_pad_sequences() {
  auto r = pad_sequences<int32_t>({{1, 2, 3}, {4}}, Padding::Right, 0);
  CHECK(r.shape() == (std::vector<int64_t>{2, 3}));
  CHECK(r.to_vector<int32_t>() == (std::vector<int32_t>{1, 2, 3, 4, 0, 0}));
  auto l = pad_sequences<int32_t>({{1, 2, 3}, {4}}, Padding::Left, 0);
  CHECK(l.to_vector<int32_t>() == (std::vector<int32_t>{1, 2, 3, 0, 0, 4}));
  auto f = pad_sequences<float>({{1, 2, 3, 4}, {5, 6}}, Padding::Left, -1.f, 2);
  CHECK(f.shape() == (std::vector<int64_t>{2, 2, 2}));
  CHECK(f.to_vector<float>() == (std::vector<float>{1, 2, 3, 4, -1, -1, 5, 6}));
  EXPECT_ERROR(pad_sequences<float>({{1, 2, 3}}, Padding::Right, 0.f, 2), "row 0", "not a whole number of steps of 2");
}

void test_manifest_missing() {
  TempDir dir;
  EXPECT_ERROR(Model::open(dir.path.string()), dir.path.string(), "not an rnncompile build directory");
  EXPECT_ERROR(Model::open((dir.path / "absent").string()), "no readable manifest.json");
}

void test_manifest_corrupt() {
  TempDir dir;
  dir.write("manifest.json", "{\"inputs\": [");
  EXPECT_ERROR(Model::open(dir.path.string()), "manifest.json", "damaged manifest.json");
  dir.write("manifest.json", "");
  EXPECT_ERROR(Model::open(dir.path.string()), "damaged manifest.json");
  dir.write("manifest.json", "[1, 2]");
  EXPECT_ERROR(Model::open(dir.path.string()), "damaged manifest: $: expected an object");
  dir.write("manifest.json", std::string("\xff\xfe{}", 4));
  EXPECT_ERROR(Model::open(dir.path.string()), "damaged manifest.json");
}

void test_manifest_fields() {
  TempDir dir;
  auto expect = [&](const std::string& text, const std::string& fragment, int line) {
    dir.write("manifest.json", text);
    expect_error([&] { Model::open(dir.path.string()); }, {"manifest.json", fragment}, line);
  };
  expect("{\"outputs\": []}", "$.inputs: missing", __LINE__);
  expect("{\"inputs\": {}, \"outputs\": []}", "$.inputs: expected an array", __LINE__);
  expect("{\"inputs\": [{\"name\": \"x\", \"dtype\": \"bytes\", \"shape\": []}], \"outputs\": []}",
         "$.inputs[0].dtype: expected float32, float64, int32, int64, bool or string, found \"bytes\"", __LINE__);
  expect("{\"inputs\": [{\"name\": \"x\", \"dtype\": \"float32\", \"shape\": [\"batch\"], \"pad_value\": false}],"
         " \"outputs\": []}",
         "$.inputs[0].pad_value: expected a number", __LINE__);  // false is a bool input's pad value only
  expect("{\"inputs\": [{\"name\": \"x\", \"dtype\": \"string\", \"shape\": []}], \"outputs\": []}",
         "$.inputs[0].shape: a text input has shape [batch] or [batch, 1], found ()", __LINE__);
  expect("{\"inputs\": [{\"name\": 3, \"dtype\": \"int32\", \"shape\": []}], \"outputs\": []}",
         "$.inputs[0].name: expected a string, found 3", __LINE__);
  expect("{\"inputs\": [{\"name\": \"x\", \"dtype\": \"int32\", \"shape\": [true]}], \"outputs\": []}",
         "$.inputs[0].shape[0]: expected an integer, a name or null", __LINE__);
  expect("{\"inputs\": [{\"name\": \"x\", \"dtype\": \"int32\", \"shape\": [\"batch\"], \"token_range\": 0}],"
         " \"outputs\": []}",
         "$.inputs[0].token_range: expected an integer >= 1", __LINE__);
  expect("{\"inputs\": [{\"name\": \"x\", \"dtype\": \"float32\", \"shape\": [\"batch\"]}], \"outputs\": [],"
         " \"states\": [{\"layer\": \"l\", \"input\": \"h_in\", \"output\": \"h_out\", \"shape\": [4]}]}",
         "$.states[0].input: \"h_in\" is not one of $.inputs", __LINE__);
  // Unknown fields are ignored; a readable manifest without model.onnx is refused by name.
  dir.write("manifest.json",
            "{\"target\": \"cpu\", \"precision\": \"fp32\", \"inputs\": [{\"name\": \"x\", \"dtype\": \"float32\","
            " \"shape\": [\"batch\", 3], \"future\": 1}], \"outputs\": []}");
  auto m = Manifest::load(dir.path.string());
  CHECK(m.inputs.size() == 1 && m.inputs[0].shape_text() == "(batch, 3)");
}

void test_model_onnx_missing() {
  TempDir dir;
  dir.write("manifest.json",
            "{\"inputs\": [{\"name\": \"x\", \"dtype\": \"float32\", \"shape\": [\"batch\", 3]}], \"outputs\": []}");
  EXPECT_ERROR(Model::open(dir.path.string()), dir.path.string(), "model.onnx is missing");
  dir.write("model.onnx", "this is not an onnx file");
  EXPECT_ERROR(Model::open(dir.path.string()), "model.onnx", "onnxruntime cannot load the model");
}

// ---- model cases ---------------------------------------------------------------------------------

void test_hostile_names() {
  auto model = Model::open(model_path("encoder_decoder"), one_thread());
  auto s = model.session();
  auto ids = Tensor::from_vector<int32_t>({1, 3}, {1, 2, 3});
  EXPECT_ERROR(s.run({{"encoder_tokens", ids}, {"decoder_tokens", ids}, {"tokens", ids}}), "input 'tokens'",
               "unknown input 'tokens'; the model's inputs are: encoder_tokens, decoder_tokens");
  EXPECT_ERROR(s.run({{"encoder_tokens", ids}}), "input 'decoder_tokens'",
               "missing input; expected int32 with shape (batch, decoder_tokens_time)");
  EXPECT_ERROR(s.run(ids), "inputs", "pass them by name");
  auto stateful = Model::open(model_path("stateful_lstm"), one_thread()).session();
  // Carried states are the session's, not the caller's.
  EXPECT_ERROR(stateful.run({{"paragraph", features(1, 2, 50, 0)}, {"reader_state_h_in", Tensor(DType::Float32, {1, 64})}}),
               "unknown input 'reader_state_h_in'");
  EXPECT_ERROR(stateful.pad<float>("nope", {{1.f}}), "input 'nope'", "unknown input");
}

void test_hostile_shapes() {
  auto s = Model::open(model_path("stateful_lstm"), one_thread()).session();
  EXPECT_ERROR(s.run(Tensor(DType::Float32, {2, 50})), "input 'paragraph'",
               "expected 3-D (batch, time, 50), got shape (2, 50)");
  EXPECT_ERROR(s.run(Tensor(DType::Float32, {2, 3, 49})), "input 'paragraph'", "axis 2 must be 50, got shape (2, 3, 49)");
  auto ed = Model::open(model_path("encoder_decoder"), one_thread()).session();
  EXPECT_ERROR(ed.run({{"encoder_tokens", Tensor(DType::Int32, {2, 3})}, {"decoder_tokens", Tensor(DType::Int32, {3, 3})}}),
               "input 'decoder_tokens'", "batch size 3 differs from the other inputs' 2");
  auto lstm = Model::open(model_path("lstm_classifier"), one_thread()).session();
  EXPECT_ERROR(lstm.run(Tensor::view<int32_t>({1, 4}, nullptr)), "input 'tokens'", "no data");
}

void test_hostile_dtypes() {
  auto s = Model::open(model_path("lstm_classifier"), one_thread()).session();
  EXPECT_ERROR(s.run(Tensor::from_vector<float>({1, 3}, {1.f, 2.5f, 3.f})), "input 'tokens'",
               "expected integer token ids, got float32");
  EXPECT_ERROR(s.run(Tensor::from_vector<double>({1, 2}, {1.0, NAN})), "expected integer token ids, got float64");
  EXPECT_ERROR(s.run(Tensor::from_vector<int64_t>({1, 2}, {1, 3000000000LL})), "input 'tokens'",
               "value 3000000000 does not fit the input's int32");
  // Accepted as Python accepts them: int64 ids, floats holding whole numbers; same result as int32.
  auto a = s.run(Tensor::from_vector<int32_t>({1, 3}, {5, 6, 7}));
  auto b = s.run(Tensor::from_vector<int64_t>({1, 3}, {5, 6, 7}));
  auto c = s.run(Tensor::from_vector<double>({1, 3}, {5, 6, 7}));
  const std::string out = a.begin()->first;
  CHECK(max_abs_diff(a.at(out), b.at(out)) == 0 && max_abs_diff(a.at(out), c.at(out)) == 0);
  // Float inputs take any number type, converted to float32.
  auto f = Model::open(model_path("bidirectional_stack"), one_thread()).session();
  auto x = features(2, 5, 10, 0.3f);
  std::vector<double> wide(x.data<float>(), x.data<float>() + x.size());
  auto y32 = f.run(x), y64 = f.run(Tensor::from_vector<double>(x.shape(), wide));
  CHECK(max_abs_diff(y32.begin()->second, y64.begin()->second) == 0);
}

void test_hostile_tokens() {
  auto s = Model::open(model_path("lstm_classifier"), one_thread()).session();
  EXPECT_ERROR(s.run(Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 1000, 6})), "input 'tokens'",
               "token id 1000 at index (1, 1) is outside the vocabulary [0, 1000)");
  EXPECT_ERROR(s.run(Tensor::from_vector<int64_t>({1, 2}, {-1, 2})), "token id -1 at index (0, 0)");
  auto ok = s.run(Tensor::from_vector<int32_t>({1, 2}, {0, 999}));
  CHECK(ok.size() == 1);
}

void test_stateful_batch() {
  auto s = Model::open(model_path("stateful_lstm"), one_thread()).session();
  CHECK(s.stateful() && s.states().empty());
  s.run(features(2, 3, 50, 0));
  CHECK(s.states().size() == 2 && s.states().at("reader_state_h_in").shape() == (std::vector<int64_t>{2, 64}));
  EXPECT_ERROR(s.run(features(3, 3, 50, 0)), "inputs",
               "a stateful model keeps its batch size: got 3, the carried state has 2; call reset_states() first");
  s.reset_states();
  CHECK(s.states().empty());
  auto out = s.run(features(3, 3, 50, 0));
  CHECK(out.size() == 1 && out.begin()->second.shape()[0] == 3);
  EXPECT_ERROR(s.set_states({{"reader_state_h_in", Tensor(DType::Float32, {3, 64})}}), "state 'reader_state_c_in'", "missing");
  EXPECT_ERROR(s.set_states({{"reader_state_h_in", Tensor(DType::Float32, {3, 64})},
                             {"reader_state_c_in", Tensor(DType::Float32, {3, 63})}}),
               "state 'reader_state_c_in'", "expected shape (batch, 64)");
}

void test_stateful_carry() {
  auto model = Model::open(model_path("stateful_lstm"), one_thread());
  auto s = model.session();
  const auto name = model.manifest().model_outputs()[0]->name;
  auto whole = features(2, 9, 50, 0.1f);
  // Three chunks (3 + 4 + 2 steps) carried across calls == one call over all 9 steps.
  auto chunk = [&](int64_t start, int64_t steps) {
    std::vector<float> v;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = start; t < start + steps; ++t)
        for (int64_t f = 0; f < 50; ++f) v.push_back(whole.data<float>()[(b * 9 + t) * 50 + f]);
    return Tensor::from_vector<float>({2, steps, 50}, v);
  };
  auto first = s.run(chunk(0, 3)).at(name);
  auto saved = s.states();
  s.run(chunk(3, 4));
  auto last = s.run(chunk(7, 2)).at(name);
  auto fresh = model.session();
  auto once = fresh.run(whole).at(name);
  CHECK(max_abs_diff(last, once) < 1e-5);
  // reset_states(): the next call starts from zeros again, bit for bit.
  s.reset_states();
  CHECK(max_abs_diff(s.run(chunk(0, 3)).at(name), first) == 0);
  // set_states(): resuming from saved states gives the carried result.
  s.set_states(saved);
  s.run(chunk(3, 4));
  CHECK(max_abs_diff(s.run(chunk(7, 2)).at(name), last) == 0);
}

void test_padding_matches_single_rows() {
  auto model = Model::open(model_path("sentiment"), one_thread());
  auto s = model.session();
  const auto name = model.manifest().model_outputs()[0]->name;
  std::vector<std::vector<int32_t>> rows = {{5, 17, 300, 2, 9}, {42}, {7, 7, 7}};
  for (Padding side : {Padding::Right, Padding::Left}) {
    auto batch = s.pad<int32_t>("tokens", rows, side);
    CHECK(batch.shape() == (std::vector<int64_t>{3, 5}));
    auto out = s.run(batch).at(name);
    const int64_t width = out.size() / 3;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      auto alone = s.run(Tensor::from_vector<int32_t>({1, int64_t(rows[r].size())}, rows[r])).at(name);
      std::vector<float> row(out.data<float>() + r * width, out.data<float>() + (r + 1) * width);
      CHECK(max_abs_diff(Tensor::from_vector<float>(alone.shape(), row), alone) < 1e-5);
    }
  }
  // Models that do not mask an input refuse to pad it with an implicit value.
  auto plain = Model::open(model_path("bidirectional_stack"), one_thread()).session();
  EXPECT_ERROR(plain.pad<float>("features", {{1.f}}), "input 'features'", "does not mask this input");
}

void test_options() {
  Options bad;
  bad.providers = {"NPU"};
  EXPECT_ERROR(Model::open(model_path("lstm_classifier"), bad), "options.providers", "unknown execution provider \"NPU\"");
  Options opt;
  opt.optimization = "max";
  EXPECT_ERROR(Model::open(model_path("lstm_classifier"), opt), "options.optimization");
  Options neg;
  neg.threads = -2;
  EXPECT_ERROR(Model::open(model_path("lstm_classifier"), neg), "options.threads");
  Options trt;
  trt.backend = Options::Backend::TensorRT;
  try {  // without TensorRT in this build (or without model.plan): a clear refusal
    Model::open(model_path("lstm_classifier"), trt);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("TensorRT") != std::string::npos ||
          std::string(e.what()).find("model.plan") != std::string::npos);
  }
  auto m = Model::open(model_path("lstm_classifier"));  // default threads: the available CPUs
  CHECK(m.backend_name().find("onnxruntime") == 0);
}

void test_manifest_mismatch() {
  TempDir dir;
  fs::copy_file(model_path("lstm_classifier") + "/model.onnx", dir.path / "model.onnx");
  fs::copy_file(model_path("stateful_lstm") + "/manifest.json", dir.path / "manifest.json");
  EXPECT_ERROR(Model::open(dir.path.string()), "manifest.json does not describe model.onnx");
}

void test_threads_share_model() {
  auto model = Model::open(model_path("gru_simplernn"), one_thread());
  auto ids = Tensor::from_vector<int32_t>({2, 6}, {1, 2, 3, 4, 5, 6, 9, 8, 7, 6, 5, 4});
  const auto name = model.manifest().model_outputs()[0]->name;
  auto expected = model.session().run(ids).at(name);
  std::vector<double> diffs(4, INFINITY);
  std::vector<std::thread> pool;
  for (int i = 0; i < 4; ++i)
    pool.emplace_back([&, i] {
      auto s = model.session();
      double worst = 0;
      for (int k = 0; k < 5; ++k) worst = std::max(worst, max_abs_diff(s.run(ids).at(name), expected));
      diffs[static_cast<std::size_t>(i)] = worst;
    });
  for (auto& t : pool) t.join();
  for (double d : diffs) CHECK(d == 0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, void (*)()> cases = {
      {"tensor", test_tensor},
      {"pad_sequences", test_pad_sequences},
      {"manifest_missing", test_manifest_missing},
      {"manifest_corrupt", test_manifest_corrupt},
      {"manifest_fields", test_manifest_fields},
      {"model_onnx_missing", test_model_onnx_missing},
      {"hostile_names", test_hostile_names},
      {"hostile_shapes", test_hostile_shapes},
      {"hostile_dtypes", test_hostile_dtypes},
      {"hostile_tokens", test_hostile_tokens},
      {"stateful_batch", test_stateful_batch},
      {"stateful_carry", test_stateful_carry},
      {"padding_matches_single_rows", test_padding_matches_single_rows},
      {"options", test_options},
      {"manifest_mismatch", test_manifest_mismatch},
      {"threads_share_model", test_threads_share_model},
  };
  if (argc < 2 || !cases.count(argv[1])) {
    std::cerr << "usage: rnncompile_runtime_tests CASE [MODELS_DIR]; cases:";
    for (const auto& c : cases) std::cerr << " " << c.first;
    std::cerr << "\n";
    return 2;
  }
  if (argc > 2) models_dir = argv[2];
  try {
    cases.at(argv[1])();
  } catch (const std::exception& e) {
    std::cerr << "unexpected exception: " << e.what() << "\n";
    return 1;
  }
  if (failures) std::cerr << failures << " check(s) failed\n";
  return failures ? 1 : 0;
}
