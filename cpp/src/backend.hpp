// The interface every backend implements: an Engine is loaded once per Model (shared, thread-safe);
// each Session gets its own Runner. Tensors come in manifest input order (carried states included,
// already checked and converted to the declared dtypes) and go out in manifest output order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rnncompile/runtime.hpp"

namespace rnncompile::detail {

class Runner {
 public:
  virtual ~Runner() = default;
  virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::unique_ptr<Runner> runner() const = 0;
  virtual std::string name() const = 0;
};

/// OUT/model.onnx on onnxruntime.
std::unique_ptr<Engine> onnxruntime_engine(const std::string& out_dir, const Manifest& manifest, const Options& options);
/// OUT/model.plan on TensorRT; throws Error when this build has no TensorRT backend.
std::unique_ptr<Engine> tensorrt_engine(const std::string& out_dir, const Manifest& manifest, const Options& options);

/// The CPUs this process may use (sched_getaffinity), at least 1.
int available_cpus();

}  // namespace rnncompile::detail
