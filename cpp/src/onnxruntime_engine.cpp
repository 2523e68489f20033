// OUT/model.onnx on onnxruntime (C++ API). Session settings as the Python runner's: intra-op threads
// = available CPUs unless given, one inter-op thread, sequential execution, all graph optimizations.
#include <onnxruntime_cxx_api.h>

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "backend.hpp"

namespace rnncompile::detail {

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

namespace {

Ort::Env& env() {
  static Ort::Env instance(ORT_LOGGING_LEVEL_ERROR, "rnncompile");
  return instance;
}

ONNXTensorElementDataType onnx_type(DType dtype) {
  switch (dtype) {
    case DType::Float32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DType::Float64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DType::Int32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DType::Int64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DType::String: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    case DType::Bool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

GraphOptimizationLevel optimization_level(const std::string& name) {
  if (name == "none") return GraphOptimizationLevel::ORT_DISABLE_ALL;
  if (name == "basic") return GraphOptimizationLevel::ORT_ENABLE_BASIC;
  if (name == "extended") return GraphOptimizationLevel::ORT_ENABLE_EXTENDED;
  if (name == "all") return GraphOptimizationLevel::ORT_ENABLE_ALL;
  throw Error("expected none, basic, extended or all, got \"" + name + "\"", "options.optimization");
}

void add_provider(Ort::SessionOptions& so, const std::string& provider, int device_id) {
  try {
    if (provider == "CPU") return;  // always available, and the fallback for unsupported nodes
    if (provider == "CUDA") {
      OrtCUDAProviderOptions cuda;
      cuda.device_id = device_id;
      so.AppendExecutionProvider_CUDA(cuda);
    } else if (provider == "TensorRT") {
      OrtTensorRTProviderOptions trt{};
      trt.device_id = device_id;
      so.AppendExecutionProvider_TensorRT(trt);
    } else {
      throw Error("unknown execution provider \"" + provider + "\"; expected CPU, CUDA or TensorRT",
                  "options.providers");
    }
  } catch (const Ort::Exception& e) {
    throw Error("this onnxruntime library cannot use the " + provider + " execution provider: " + e.what(),
                "options.providers");
  }
}

std::string names_text(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

class OrtEngine final : public Engine {
 public:
  OrtEngine(const std::string& out_dir, const Manifest& manifest, const Options& options) {
    const std::string path = out_dir + "/model.onnx";
    if (!std::ifstream(path).good()) throw Error("model.onnx is missing", out_dir);
    if (options.threads < 0) throw Error("expected a thread count >= 0 (0: the available CPUs)", "options.threads");
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(options.threads > 0 ? options.threads : available_cpus());
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(optimization_level(options.optimization));
    so.SetLogSeverityLevel(3);
    for (const auto& p : options.providers) add_provider(so, p, options.device_id);
    try {
      session_ = Ort::Session(env(), path.c_str(), so);
    } catch (const Ort::Exception& e) {
      throw Error(std::string("onnxruntime cannot load the model: ") + e.what(), path);
    }
    check_names(manifest, out_dir);
    for (const auto& i : manifest.inputs) in_names_.push_back(i.name);
    for (const auto& o : manifest.outputs) {
      out_names_.push_back(o.name);
      out_dtypes_.push_back(o.dtype);
    }
    for (const auto& n : in_names_) in_ptrs_.push_back(n.c_str());
    for (const auto& n : out_names_) out_ptrs_.push_back(n.c_str());
    name_ = std::string("onnxruntime ") + Ort::GetVersionString() + " (";
    for (std::size_t i = 0; i < options.providers.size(); ++i) name_ += (i ? ", " : "") + options.providers[i];
    name_ += ")";
  }

  std::unique_ptr<Runner> runner() const override;
  std::string name() const override { return name_; }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const std::vector<TextFeed>* texts) const {
    std::vector<Ort::Value> feeds;
    feeds.reserve(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (texts && (*texts)[i].rows) {
        feeds.push_back(string_tensor((*texts)[i]));
        continue;
      }
      const Tensor& t = inputs[i];
      feeds.push_back(Ort::Value::CreateTensor(memory_, const_cast<void*>(t.raw()),
                                               static_cast<std::size_t>(t.size()) * dtype_size(t.dtype()),
                                               t.shape().data(), t.rank(), onnx_type(t.dtype())));
    }
    std::vector<Ort::Value> outs;
    try {
      outs = session_.Run(Ort::RunOptions{nullptr}, in_ptrs_.data(), feeds.data(), feeds.size(), out_ptrs_.data(),
                          out_ptrs_.size());
    } catch (const Ort::Exception& e) {
      throw Error(std::string("onnxruntime failed: ") + e.what(), "model.onnx");
    }
    std::vector<Tensor> result;
    result.reserve(outs.size());
    for (std::size_t i = 0; i < outs.size(); ++i) {
      auto value = std::make_shared<Ort::Value>(std::move(outs[i]));
      auto info = value->GetTensorTypeAndShapeInfo();
      if (info.GetElementType() != onnx_type(out_dtypes_[i]))
        throw Error(std::string("onnxruntime returned another dtype than the manifest's ") + dtype_name(out_dtypes_[i]),
                    "output '" + out_names_[i] + "'");
      void* data = value->GetTensorMutableRawData();
      result.push_back(Tensor::adopt(out_dtypes_[i], info.GetShape(), std::move(value), data));
    }
    return result;
  }

 private:
  // An onnxruntime string tensor holding copies of the rows (byte strings: NULs kept).
  static Ort::Value string_tensor(const TextFeed& feed) {
    Ort::AllocatorWithDefaultOptions alloc;
    Ort::Value value =
        Ort::Value::CreateTensor(alloc, feed.shape.data(), feed.shape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    const auto& rows = *feed.rows;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      char* dst = value.GetResizedStringTensorElementBuffer(r, rows[r].size());
      if (!rows[r].empty()) std::memcpy(dst, rows[r].data(), rows[r].size());
    }
    return value;
  }

  void check_names(const Manifest& manifest, const std::string& out_dir) {
    auto listed = [](const std::vector<IoSpec>& specs) {
      std::vector<std::string> names;
      for (const auto& s : specs) names.push_back(s.name);
      std::sort(names.begin(), names.end());
      return names;
    };
    Ort::AllocatorWithDefaultOptions alloc;
    std::vector<std::string> ins, outs;
    for (std::size_t i = 0; i < session_.GetInputCount(); ++i)
      ins.emplace_back(session_.GetInputNameAllocated(i, alloc).get());
    for (std::size_t i = 0; i < session_.GetOutputCount(); ++i)
      outs.emplace_back(session_.GetOutputNameAllocated(i, alloc).get());
    std::sort(ins.begin(), ins.end());
    std::sort(outs.begin(), outs.end());
    if (ins != listed(manifest.inputs) || outs != listed(manifest.outputs))
      throw Error("manifest.json does not describe model.onnx: the model has inputs [" + names_text(ins) +
                      "] and outputs [" + names_text(outs) + "]",
                  out_dir);
  }

  mutable Ort::Session session_{nullptr};  // Run is thread-safe
  Ort::MemoryInfo memory_ = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<std::string> in_names_, out_names_;
  std::vector<const char*> in_ptrs_, out_ptrs_;
  std::vector<DType> out_dtypes_;
  std::string name_;
};

class OrtRunner final : public Runner {
 public:
  explicit OrtRunner(const OrtEngine& engine) : engine_(engine) {}
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override { return engine_.run(inputs, nullptr); }
  std::vector<Tensor> run_with_texts(const std::vector<Tensor>& inputs, const std::vector<TextFeed>& texts) override {
    return engine_.run(inputs, &texts);
  }

 private:
  const OrtEngine& engine_;
};

std::unique_ptr<Runner> OrtEngine::runner() const { return std::make_unique<OrtRunner>(*this); }

}  // namespace

std::unique_ptr<Engine> onnxruntime_engine(const std::string& out_dir, const Manifest& manifest, const Options& options) {
  return std::make_unique<OrtEngine>(out_dir, manifest, options);
}

}  // namespace rnncompile::detail
