// rnncompile C++ runtime: run a model compiled by `rnncompile build spec.json -o OUT` (OUT/model.onnx
// and OUT/manifest.json) from C++, with the same checks and state carry as the Python Session.
//
//   auto model = rnncompile::Model::open("out/sentiment");         // once; share across threads
//   auto session = model.session();                               // one per thread / stream
//   auto ids = rnncompile::Tensor::from_vector<int32_t>({1, 4}, {12, 7, 9, 3});
//   auto outs = session.run({{"tokens", ids}});
//   float p = outs.at("dense").data<float>()[0];
//
// Every error is an rnncompile::Error naming where (an input, a file, a manifest field) and what was
// expected. The public headers do not include onnxruntime's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace rnncompile {

/// Bad input, a damaged build directory, or a runtime refusal. what() is "<where>: <message>".
class Error : public std::runtime_error {
 public:
  Error(std::string message, std::string where);
  const std::string& where() const noexcept { return where_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string where_, message_;
};

/// String is the dtype of text inputs only (IoSpec of a model.onnx that takes the text itself); tensors
/// never hold it: texts are passed to Session::run as a TextMap.
enum class DType { Float32, Float64, Int32, Int64, String, Bool };
const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

template <class T>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t> ||
                    std::is_same_v<T, int64_t> || std::is_same_v<T, bool>,
                "rnncompile tensors hold float, double, int32_t, int64_t or bool");
  if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else if constexpr (std::is_same_v<T, double>) return DType::Float64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::Int32;
  else if constexpr (std::is_same_v<T, bool>) return DType::Bool;
  else return DType::Int64;
}

/// A dense row-major array. Copies share the buffer (like a shared_ptr); clone() copies the data.
/// A tensor either owns its values or is a view of memory the caller keeps alive.
class Tensor {
 public:
  Tensor() = default;
  /// Zero-filled tensor of the given type and shape.
  Tensor(DType dtype, std::vector<int64_t> shape);

  template <class T>
  static Tensor from_vector(std::vector<int64_t> shape, std::vector<T> values) {
    auto owner = std::make_shared<std::vector<T>>(std::move(values));
    check_count(shape, static_cast<int64_t>(owner->size()));
    T* data = owner->data();
    return Tensor(dtype_of<T>(), std::move(shape), std::move(owner), data, true);
  }
  /// No copy: `data` must outlive every use of the tensor (and of the session run it is fed to).
  template <class T>
  static Tensor view(std::vector<int64_t> shape, const T* data) {
    return Tensor(dtype_of<T>(), std::move(shape), nullptr, const_cast<T*>(data), false);
  }
  /// For backends: a tensor whose memory is owned by `owner`.
  static Tensor adopt(DType dtype, std::vector<int64_t> shape, std::shared_ptr<void> owner, void* data);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  std::size_t rank() const { return shape_.size(); }
  int64_t size() const;  ///< number of elements
  const void* raw() const { return data_; }

  /// Typed access; throws Error when T is not the tensor's dtype.
  template <class T>
  const T* data() const {
    expect(dtype_of<T>());
    return static_cast<const T*>(data_);
  }
  /// Throws Error for views (read-only) and for a dtype other than T.
  template <class T>
  T* mutable_data() {
    expect(dtype_of<T>());
    expect_writable();
    return static_cast<T*>(data_);
  }
  template <class T>
  std::vector<T> to_vector() const {
    const T* p = data<T>();
    return std::vector<T>(p, p + size());
  }
  /// An owning copy converted to `dtype` (values cast as NumPy's astype does).
  Tensor cast(DType dtype) const;
  Tensor clone() const { return cast(dtype_); }
  /// "(2, 5, 50)", as NumPy prints shapes.
  std::string shape_text() const;

 private:
  Tensor(DType dtype, std::vector<int64_t> shape, std::shared_ptr<void> owner, void* data, bool writable);
  static void check_count(const std::vector<int64_t>& shape, int64_t count);
  void expect(DType dtype) const;
  void expect_writable() const;

  DType dtype_ = DType::Float32;
  std::vector<int64_t> shape_;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  bool writable_ = false;
};

using TensorMap = std::map<std::string, Tensor>;

/// One axis of a declared shape: a fixed size (> 0) or a named dynamic axis ("batch", "time").
struct Dim {
  int64_t size = -1;
  std::string symbol;
  bool fixed() const { return size > 0; }
};

/// An input or output as the manifest declares it.
struct IoSpec {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<Dim> shape;
  std::optional<int64_t> token_range;  ///< ids must lie in [0, token_range)
  std::optional<double> pad_value;     ///< the value the model masks (Embedding mask_zero: 0, Masking)
  std::string shape_text() const;      ///< "(batch, time, 50)"
};

/// A carried state of a stateful layer: fed as `input`, returned as `output`, [batch, *shape].
struct StateSpec {
  std::string layer, input, output;
  std::vector<int64_t> shape;
};

/// Keras TextVectorization's standardize and split options (see rnncompile/text.hpp).
enum class Standardize { None, Lower, StripPunctuation, LowerAndStripPunctuation };
enum class Split { None, Whitespace, Character };

struct TextOptions {
  Standardize standardize = Standardize::LowerAndStripPunctuation;
  Split split = Split::Whitespace;
  std::optional<std::vector<int64_t>> ngrams;     ///< widths in order ({1, 2}); none: no n-grams
  std::optional<int64_t> output_sequence_length;  ///< none: pad to the longest row, at least 1
};

/// One entry of the manifest's "preprocessing": a tokenizer run on the host, whose ids feed the graph
/// input `output` (int64 [batch, L]).
struct TextPreprocessing {
  std::string kind;     ///< "TextVectorization"
  std::string layer;    ///< the layer it came from
  IoSpec input;         ///< the text input: dtype String, shape (batch,) or (batch, 1)
  std::string output;   ///< the graph input fed with the ids
  TextOptions options;
  std::string vocabulary;         ///< file in the build directory: JSON array, index = id
  std::string vocabulary_sha256;  ///< hex of the file's bytes
};

/// OUT/manifest.json (fields this runtime does not know are ignored).
struct Manifest {
  std::string name, rnncompile_version;
  int64_t opset = 0;
  std::vector<IoSpec> inputs;   ///< every graph input, carried states included, in graph order
  std::vector<IoSpec> outputs;  ///< every graph output, carried states included
  std::vector<StateSpec> states;
  std::vector<TextPreprocessing> preprocessing;  ///< host-side tokenizers (empty for most models)

  static Manifest load(const std::string& out_dir);
  static Manifest parse(const std::string& json_text, const std::string& where);
  bool stateful() const { return !states.empty(); }
  bool is_state_input(const std::string& name) const;
  bool is_state_output(const std::string& name) const;
  /// The inputs a caller feeds (states excluded), in graph order.
  std::vector<const IoSpec*> model_inputs() const;
  /// The outputs a session returns (states excluded), in graph order.
  std::vector<const IoSpec*> model_outputs() const;
  const IoSpec& input(const std::string& name) const;  ///< throws Error for an unknown name
  /// The inputs a caller feeds texts to: the host tokenizers' inputs, then graph inputs of dtype String.
  std::vector<const IoSpec*> text_inputs() const;
  /// The host tokenizer of a text input, or nullptr (an in-graph text input, or no text input).
  const TextPreprocessing* preprocessing_of(const std::string& text_input) const;
};

struct Options {
  enum class Backend { OnnxRuntime, TensorRT };
  Backend backend = Backend::OnnxRuntime;
  /// onnxruntime intra-op threads; 0 = the CPUs this process may use (as the Python session).
  int threads = 0;
  /// onnxruntime execution providers in order of preference: "CPU", "CUDA", "TensorRT". Asking for
  /// one the onnxruntime library was built without is an Error.
  std::vector<std::string> providers = {"CPU"};
  /// onnxruntime graph optimization: "none", "basic", "extended" or "all".
  std::string optimization = "all";
  int device_id = 0;  ///< GPU for CUDA / TensorRT
};

class Session;
class TextVectorizer;

/// An opened build directory. Opening loads the model once; copies share it, and sessions made from
/// it on several threads run concurrently.
class Model {
 public:
  static Model open(const std::string& out_dir, const Options& options = {});
  const Manifest& manifest() const;
  const std::string& directory() const;
  std::string backend_name() const;  ///< e.g. "onnxruntime 1.32.0 (CPUExecutionProvider)"
  Session session() const;
  /// The host tokenizer of a text input listed in the manifest's "preprocessing" (its vocabulary is
  /// read and checked once, by open()); throws Error for any other name.
  const TextVectorizer& tokenizer(const std::string& text_input) const;

  struct Impl;

 private:
  friend class Session;
  explicit Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

enum class Padding { Right, Left };

/// Texts by text input name: one UTF-8 string per batch row.
using TextMap = std::map<std::string, std::vector<std::string>>;

/// One session: runs the model and, for stateful models, carries the `<layer>_state_*` tensors from
/// each call to the next until reset_states(), exactly as the Python Session does. Not thread-safe:
/// use one session per thread (they share the Model).
class Session {
 public:
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  /// Inputs by name (states excluded). Integer inputs take int32/int64 (and floats holding whole
  /// numbers), float inputs take any dtype; values are converted to the declared dtype. Returns every
  /// output but the carried states.
  TensorMap run(const TensorMap& inputs);
  /// For single-input models.
  TensorMap run(const Tensor& input);
  /// Models with text inputs (Manifest::text_inputs()): texts by input name, one string per batch row,
  /// next to the other inputs' tensors. A host tokenizer ("preprocessing") turns its texts into the ids
  /// of its graph input (which may instead be fed as a tensor, ids computed elsewhere); a graph input of
  /// dtype String gets the strings themselves. Invalid UTF-8 is an Error naming the input and row.
  TensorMap run(const TensorMap& inputs, const TextMap& texts);
  TensorMap run(const TextMap& texts);

  void reset_states();  ///< the next call starts from zero states
  bool stateful() const;
  /// The carried states by input name ("reader_state_h_in"); empty before the first call and after
  /// reset_states(). Copies of the data.
  TensorMap states() const;
  /// Start from these states (by state input name, [batch, *shape] each) instead of zeros.
  void set_states(const TensorMap& states);

  /// Batch sequences of different lengths into one tensor for `input`, padded on `side` with the
  /// value the model masks (the manifest's pad_value). Each row holds steps * features values
  /// (features: the input's last axis for [batch, time, features] inputs, else 1).
  template <class T>
  Tensor pad(const std::string& input, const std::vector<std::vector<T>>& rows, Padding side = Padding::Right) const;

  const Model& model() const { return model_; }

 private:
  friend class Model;
  struct State;
  explicit Session(Model model);
  TensorMap run_checked(const TensorMap& inputs, const TextMap& texts);
  Model model_;
  std::unique_ptr<State> state_;
};

/// Keras-style pad_sequences: rows of steps * features values -> [batch, longest, features] (or
/// [batch, longest] when features == 0), padded on `side` with `pad_value`.
template <class T>
Tensor pad_sequences(const std::vector<std::vector<T>>& rows, Padding side, T pad_value, int64_t features = 0);

extern template Tensor pad_sequences<float>(const std::vector<std::vector<float>>&, Padding, float, int64_t);
extern template Tensor pad_sequences<int32_t>(const std::vector<std::vector<int32_t>>&, Padding, int32_t, int64_t);
extern template Tensor pad_sequences<int64_t>(const std::vector<std::vector<int64_t>>&, Padding, int64_t, int64_t);

}  // namespace rnncompile
