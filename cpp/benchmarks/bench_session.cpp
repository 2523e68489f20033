// rnncompile_bench: per-call latency of rnncompile::Session::run against a bare onnxruntime Run on
// the same model with the same session settings, measured interleaved in one process.
//
//   rnncompile_bench OUT_DIR [--batch 1] [--steps 100] [--calls 200] [--threads 1]
//
// The bare Run is the least a C++ user can write: input (and zero state) tensors created once, then
// Ort::Session::Run in a loop. The session creates its tensors, checks every input (shape, dtype,
// token ids) and carries states on each call. A second bare session, measured the same way, is the
// A/A control: its difference from the first is the noise floor of the comparison. The three run in
// turn, call by call. Prints one JSON object: medians in microseconds per call, and the medians of
// the per-call differences (overhead_us: session - bare; aa_us: bare B - bare A).
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "rnncompile/runtime.hpp"

using namespace rnncompile;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<int64_t> concrete(const IoSpec& spec, int64_t batch, int64_t steps, const Manifest& m) {
  std::vector<int64_t> shape;
  for (std::size_t a = 0; a < spec.shape.size(); ++a)
    shape.push_back(spec.shape[a].fixed() ? spec.shape[a].size : (a == 0 ? batch : steps));
  if (m.is_state_input(spec.name)) shape[0] = batch;
  return shape;
}

Tensor make_input(const IoSpec& spec, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  if (spec.dtype == DType::Bool) return Tensor::from_vector<int64_t>(shape, std::vector<int64_t>(static_cast<std::size_t>(n), 1)).cast(DType::Bool);  // every step valid
  if (spec.dtype == DType::Int32 || spec.dtype == DType::Int64) {
    const int64_t hi = spec.token_range ? *spec.token_range : 10;
    std::vector<int64_t> v(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = 1 + (i * 7919) % std::max<int64_t>(1, hi - 1);
    return Tensor::from_vector<int64_t>(shape, v).cast(spec.dtype);
  }
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = 0.5f * float((i * 37) % 101) / 101.f - 0.25f;
  return Tensor::from_vector<float>(shape, v);
}

ONNXTensorElementDataType onnx_type(DType d) {
  switch (d) {
    case DType::Float32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DType::Float64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DType::Int32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DType::Int64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DType::String: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    case DType::Bool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: rnncompile_bench OUT_DIR [--batch B] [--steps T] [--calls N] [--threads K]\n";
    return 2;
  }
  std::string dir = argv[1];
  int64_t batch = 1, steps = 100, calls = 200;
  int threads = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    long long v = std::stoll(argv[i + 1]);
    if (k == "--batch") batch = v;
    else if (k == "--steps") steps = v;
    else if (k == "--calls") calls = v;
    else if (k == "--threads") threads = static_cast<int>(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    Options opt;
    opt.threads = threads;
    Model model = Model::open(dir, opt);
    Session session = model.session();
    const Manifest& m = model.manifest();

    // Bare onnxruntime: the same settings as the runtime's engine.
    Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "bench");
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(threads);
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    Ort::Session bare(env, (dir + "/model.onnx").c_str(), so);
    // A second bare session: the A/A control (how far two identical bare Runs differ here).
    Ort::Session bare_b(env, (dir + "/model.onnx").c_str(), so);
    Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);

    TensorMap feeds;
    std::vector<Tensor> all;  // every graph input, states included (zeros)
    std::vector<Ort::Value> values;
    std::vector<const char*> in_names, out_names;
    for (const auto& spec : m.inputs) {
      auto shape = concrete(spec, batch, steps, m);
      Tensor t = m.is_state_input(spec.name) ? Tensor(DType::Float32, shape) : make_input(spec, shape);
      if (!m.is_state_input(spec.name)) feeds[spec.name] = t;
      all.push_back(t);
      values.push_back(Ort::Value::CreateTensor(mem, const_cast<void*>(all.back().raw()),
                                                static_cast<std::size_t>(t.size()) * dtype_size(t.dtype()),
                                                all.back().shape().data(), t.rank(), onnx_type(t.dtype())));
      in_names.push_back(spec.name.c_str());
    }
    for (const auto& o : m.outputs) out_names.push_back(o.name.c_str());

    auto bare_call = [&](Ort::Session& which) {
      auto outs = which.Run(Ort::RunOptions{nullptr}, in_names.data(), values.data(), values.size(), out_names.data(),
                           out_names.size());
      return outs.size();
    };
    auto session_call = [&] { return session.run(feeds).size(); };
    for (int w = 0; w < 5; ++w) {
      bare_call(bare);
      bare_call(bare_b);
      session_call();
    }
    std::vector<double> t_bare, t_bare_b, t_session, paired, paired_aa;
    auto timed = [](auto&& call) {
      auto t0 = Clock::now();
      call();
      return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    };
    // One call of each in turn, the order rotating: neighbouring calls see the same machine state,
    // so the per-call differences (session - bare, bare B - bare A) are robust to a busy machine.
    for (int64_t i = 0; i < calls; ++i) {
      double tb = 0, tbb = 0, ts = 0;
      for (int k = 0; k < 3; ++k) {
        switch ((i + k) % 3) {
          case 0: tb = timed([&] { bare_call(bare); }); break;
          case 1: tbb = timed([&] { bare_call(bare_b); }); break;
          default: ts = timed(session_call); break;
        }
      }
      t_bare.push_back(tb);
      t_bare_b.push_back(tbb);
      t_session.push_back(ts);
      paired.push_back(ts - tb);
      paired_aa.push_back(tbb - tb);
    }
    double b = median(t_bare), s = median(t_session);
    std::cout << "{\"model\": \"" << m.name << "\", \"batch\": " << batch << ", \"steps\": " << steps
              << ", \"calls\": " << t_bare.size() << ", \"threads\": " << threads << ", \"bare_run_us\": " << b
              << ", \"session_us\": " << s << ", \"overhead_us\": " << median(paired)
              << ", \"aa_us\": " << median(paired_aa)
              << ", \"bare_run_min_us\": " << *std::min_element(t_bare.begin(), t_bare.end())
              << ", \"session_min_us\": " << *std::min_element(t_session.begin(), t_session.end()) << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
