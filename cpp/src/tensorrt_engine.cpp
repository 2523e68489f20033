// OUT/model.plan on TensorRT (10.x / 11.x runtime API), behind the same Engine/Runner interface as
// onnxruntime. Compiled only with -DRNNCOMPILE_TENSORRT=ON (TensorRT and CUDA found). Not testable in
// our CI (TensorRT cannot be installed there); a plan is tied to the GPU and the TensorRT version.
//
// The engine is deserialized once per Model; each Session's Runner owns an execution context, a
// CUDA stream and device buffers (grown as needed). Inputs are copied to the GPU, the dynamic
// shapes set with setInputShape, the outputs' shapes read back after that, enqueueV3 run, and the
// outputs copied back before run() returns. Plan IO types must be the manifest's (float32 / int32 /
// int64): an engine built with other IO types is refused by name.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iterator>
#include <mutex>

#include "backend.hpp"

namespace rnncompile::detail {

namespace {

void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(std::string(what) + " failed: " + cudaGetErrorString(status), "CUDA");
}

class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, char const* msg) noexcept override {
    if (severity > Severity::kWARNING) return;
    std::lock_guard<std::mutex> lock(mutex_);
    last_ = msg;
  }
  std::string last() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

 private:
  mutable std::mutex mutex_;
  std::string last_;
};

nvinfer1::DataType trt_type(DType dtype) {
  switch (dtype) {
    case DType::Float32: return nvinfer1::DataType::kFLOAT;
    case DType::Int32: return nvinfer1::DataType::kINT32;
    case DType::Int64: return nvinfer1::DataType::kINT64;
    case DType::Bool: return nvinfer1::DataType::kBOOL;
    case DType::Float64: break;
    case DType::String:
      throw Error("TensorRT runs no string op: build the model with its tokenizer on the host", "model.plan");
  }
  throw Error("TensorRT has no float64 tensors", "model.plan");
}

struct DeviceBuffer {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  void reserve(std::size_t want) {
    want = want ? want : 1;  // TensorRT wants an address even for empty tensors
    if (want <= bytes) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
    cuda_check(cudaMalloc(&ptr, want), "cudaMalloc");
    bytes = want;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

class TrtEngine;

class TrtRunner final : public Runner {
 public:
  TrtRunner(const TrtEngine& engine);
  ~TrtRunner() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override;

 private:
  const TrtEngine& engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  cudaStream_t stream_ = nullptr;
  std::vector<DeviceBuffer> in_buffers_, out_buffers_;
};

class TrtEngine final : public Engine {
 public:
  TrtEngine(const std::string& out_dir, const Manifest& manifest, const Options& options)
      : manifest_(manifest), device_(options.device_id) {
    const std::string path = out_dir + "/model.plan";
    std::ifstream in(path, std::ios::binary);
    if (!in)
      throw Error("model.plan is missing (build one for this GPU, e.g. trtexec --onnx=model.onnx "
                  "--saveEngine=model.plan with min/opt/max shapes for every dynamic input)",
                  out_dir);
    std::vector<char> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw Error("cannot create the TensorRT runtime: " + logger_.last(), path);
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_)
      throw Error("TensorRT cannot load this plan (built for another GPU or TensorRT version?): " + logger_.last(),
                  path);
    for (const auto& spec : manifest.inputs) check_io(spec, nvinfer1::TensorIOMode::kINPUT, path);
    for (const auto& spec : manifest.outputs) check_io(spec, nvinfer1::TensorIOMode::kOUTPUT, path);
  }

  std::unique_ptr<Runner> runner() const override { return std::make_unique<TrtRunner>(*this); }
  std::string name() const override {
    return "TensorRT " + std::to_string(getInferLibVersion()) + " (device " + std::to_string(device_) + ")";
  }

  const Manifest& manifest_;
  int device_;
  mutable Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;

 private:
  void check_io(const IoSpec& spec, nvinfer1::TensorIOMode mode, const std::string& path) const {
    const char* name = spec.name.c_str();
    if (engine_->getTensorIOMode(name) != mode)
      throw Error(std::string("the plan has no ") + (mode == nvinfer1::TensorIOMode::kINPUT ? "input" : "output") +
                      " named '" + spec.name + "' (was it built from this model.onnx?)",
                  path);
    if (engine_->getTensorDataType(name) != trt_type(spec.dtype))
      throw Error("the plan's tensor '" + spec.name + "' is not " + dtype_name(spec.dtype) + " as in the manifest",
                  path);
  }
};

TrtRunner::TrtRunner(const TrtEngine& engine) : engine_(engine) {
  cuda_check(cudaSetDevice(engine.device_), "cudaSetDevice");
  context_.reset(engine.engine_->createExecutionContext());
  if (!context_) throw Error("cannot create an execution context: " + engine.logger_.last(), "model.plan");
  cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
  in_buffers_.resize(engine.manifest_.inputs.size());
  out_buffers_.resize(engine.manifest_.outputs.size());
}

std::vector<Tensor> TrtRunner::run(const std::vector<Tensor>& inputs) {
  const Manifest& m = engine_.manifest_;
  cuda_check(cudaSetDevice(engine_.device_), "cudaSetDevice");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const char* name = m.inputs[i].name.c_str();
    nvinfer1::Dims dims{};
    if (t.rank() > static_cast<std::size_t>(nvinfer1::Dims::MAX_DIMS))
      throw Error("too many axes for TensorRT", "input '" + m.inputs[i].name + "'");
    dims.nbDims = static_cast<int32_t>(t.rank());
    for (std::size_t a = 0; a < t.rank(); ++a) dims.d[a] = t.shape()[a];
    if (!context_->setInputShape(name, dims))
      throw Error("shape " + t.shape_text() + " is outside the plan's optimization profile: " + engine_.logger_.last(),
                  "input '" + m.inputs[i].name + "'");
    const std::size_t bytes = static_cast<std::size_t>(t.size()) * dtype_size(t.dtype());
    in_buffers_[i].reserve(bytes);
    if (bytes)
      cuda_check(cudaMemcpyAsync(in_buffers_[i].ptr, t.raw(), bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    context_->setTensorAddress(name, in_buffers_[i].ptr);
  }
  std::vector<Tensor> outs;
  for (std::size_t o = 0; o < m.outputs.size(); ++o) {
    const char* name = m.outputs[o].name.c_str();
    nvinfer1::Dims dims = context_->getTensorShape(name);
    std::vector<int64_t> shape(dims.d, dims.d + std::max<int32_t>(dims.nbDims, 0));
    for (int64_t d : shape)
      if (d < 0) throw Error("TensorRT could not infer this output's shape", "output '" + m.outputs[o].name + "'");
    outs.emplace_back(m.outputs[o].dtype, shape);
    out_buffers_[o].reserve(static_cast<std::size_t>(outs.back().size()) * dtype_size(m.outputs[o].dtype));
    context_->setTensorAddress(name, out_buffers_[o].ptr);
  }
  if (!context_->enqueueV3(stream_)) throw Error("TensorRT enqueueV3 failed: " + engine_.logger_.last(), "model.plan");
  for (std::size_t o = 0; o < outs.size(); ++o) {
    const std::size_t bytes = static_cast<std::size_t>(outs[o].size()) * dtype_size(outs[o].dtype());
    if (bytes)
      cuda_check(cudaMemcpyAsync(const_cast<void*>(outs[o].raw()), out_buffers_[o].ptr, bytes, cudaMemcpyDeviceToHost,
                                 stream_),
                 "cudaMemcpyAsync");
  }
  cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  return outs;
}

}  // namespace

std::unique_ptr<Engine> tensorrt_engine(const std::string& out_dir, const Manifest& manifest, const Options& options) {
  return std::make_unique<TrtEngine>(out_dir, manifest, options);
}

}  // namespace rnncompile::detail
