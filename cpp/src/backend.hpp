// The interface every backend implements: an Engine is loaded once per Model (shared, thread-safe);
// each Session gets its own Runner. Tensors come in manifest input order (carried states included,
// already checked and converted to the declared dtypes) and go out in manifest output order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rnncompile/runtime.hpp"

namespace rnncompile::detail {

/// The strings of a graph input of dtype String (rows: one per batch row; shape: [batch] or [batch, 1]).
struct TextFeed {
  const std::vector<std::string>* rows = nullptr;
  std::vector<int64_t> shape;
};

class Runner {
 public:
  virtual ~Runner() = default;
  virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
  /// Models whose graph takes text: `texts` by manifest input index (rows == nullptr for the others,
  /// whose `inputs` entries are used). Backends without string tensors keep this refusal.
  virtual std::vector<Tensor> run_with_texts(const std::vector<Tensor>& inputs, const std::vector<TextFeed>& texts) {
    for (const auto& t : texts)
      if (t.rows)
        throw Error("this backend takes no text (TensorRT runs no string op): build the model with its tokenizer "
                    "on the host",
                    "model");
    return run(inputs);
  }
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
