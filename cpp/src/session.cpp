// Model and Session: the checks of rnncompile/feeds.py (check_feeds) and the state carry of
// rnncompile/runtime.py (Session), message for message.
#include <cmath>
#include <limits>
#include <sstream>

#include "backend.hpp"
#include "rnncompile/text.hpp"

namespace rnncompile {

struct Model::Impl {
  std::string directory;
  Manifest manifest;
  std::unique_ptr<detail::Engine> engine;
  std::vector<TextVectorizer> tokenizers;  // by manifest.preprocessing index
};

Model Model::open(const std::string& out_dir, const Options& options) {
  auto impl = std::make_shared<Impl>();
  impl->directory = out_dir;
  impl->manifest = Manifest::load(out_dir);
  for (const auto& p : impl->manifest.preprocessing) impl->tokenizers.push_back(TextVectorizer::from_manifest(out_dir, p));
  impl->engine = options.backend == Options::Backend::TensorRT
                     ? detail::tensorrt_engine(out_dir, impl->manifest, options)
                     : detail::onnxruntime_engine(out_dir, impl->manifest, options);
  return Model(std::move(impl));
}

const Manifest& Model::manifest() const { return impl_->manifest; }
const std::string& Model::directory() const { return impl_->directory; }
std::string Model::backend_name() const { return impl_->engine->name(); }
Session Model::session() const { return Session(*this); }

const TextVectorizer& Model::tokenizer(const std::string& text_input) const {
  const auto& pre = impl_->manifest.preprocessing;
  for (std::size_t i = 0; i < pre.size(); ++i)
    if (pre[i].input.name == text_input) return impl_->tokenizers[i];
  std::string names;
  for (const auto& p : pre) names += (names.empty() ? "" : ", ") + p.input.name;
  throw Error(names.empty() ? "the model has no host tokenizer" : "no host tokenizer; the model's are for: " + names,
              "text input '" + text_input + "'");
}

namespace {

std::string where_input(const std::string& name) { return "input '" + name + "'"; }
std::string where_text(const std::string& name) { return "text input '" + name + "'"; }

std::string names_of(const std::vector<const IoSpec*>& specs) {
  std::string names;
  for (const IoSpec* i : specs) names += (names.empty() ? "" : ", ") + i->name;
  return names;
}

std::string index_text(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (std::size_t a = shape.size(); a-- > 0;) {
    idx[a] = flat % shape[a];
    flat /= shape[a];
  }
  std::string s = "(";
  for (std::size_t a = 0; a < idx.size(); ++a) s += (a ? ", " : "") + std::to_string(idx[a]);
  return s + (idx.size() == 1 ? ",)" : ")");
}

template <class T>
std::string number_text(T v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Integer inputs: int32/int64 as they are, floats only when every value is a whole number (as NumPy
// arrays of floats pass check_feeds); each value must fit the declared integer type.
template <class T>
void check_integers(const Tensor& t, const IoSpec& spec) {
  const T* v = t.data<T>();
  const int64_t n = t.size();
  if constexpr (std::is_floating_point_v<T>) {
    bool whole = n > 0;
    for (int64_t i = 0; i < n && whole; ++i) whole = std::isfinite(v[i]) && v[i] == std::round(v[i]);
    if (!whole)
      throw Error(std::string("expected integer token ids, got ") + dtype_name(t.dtype()), where_input(spec.name));
  }
  if (n == 0) return;
  const double lo = spec.dtype == DType::Int32 ? std::numeric_limits<int32_t>::min() : -9223372036854775808.0;
  const double hi = spec.dtype == DType::Int32 ? std::numeric_limits<int32_t>::max() : 9223372036854775807.0;
  T mn = v[0], mx = v[0];
  for (int64_t i = 1; i < n; ++i) {
    mn = v[i] < mn ? v[i] : mn;
    mx = v[i] > mx ? v[i] : mx;
  }
  if (static_cast<double>(mn) < lo || static_cast<double>(mx) > hi)
    throw Error("value " + number_text(static_cast<double>(mn) < lo ? mn : mx) + " does not fit the input's " +
                    dtype_name(spec.dtype),
                where_input(spec.name));
}

// Bool mask inputs take bools, or numbers that are all 0 or 1 (as check_feeds does).
template <class T>
void check_zero_one(const Tensor& t, const IoSpec& spec) {
  const T* v = t.data<T>();
  for (int64_t i = 0, n = t.size(); i < n; ++i)
    if (!(v[i] == T(0) || v[i] == T(1)))
      throw Error(std::string("expected a bool mask (True/False or 1/0), got ") + dtype_name(t.dtype()),
                  where_input(spec.name));
}

template <class T>
void check_token_range(const Tensor& t, const IoSpec& spec) {
  const T* v = t.data<T>();
  const T limit = static_cast<T>(*spec.token_range);
  for (int64_t i = 0, n = t.size(); i < n; ++i)
    if (v[i] < 0 || v[i] >= limit)
      throw Error("token id " + std::to_string(v[i]) + " at index " + index_text(t.shape(), i) +
                      " is outside the vocabulary [0, " + std::to_string(limit) + ")",
                  where_input(spec.name));
}

// check_feeds for one input, in its order: rank, then fixed axes (the batch check follows in run()).
void check_shape(const Tensor& t, const IoSpec& spec) {
  const auto& want = spec.shape;
  if (t.rank() != want.size())
    throw Error("expected " + std::to_string(want.size()) + "-D " + spec.shape_text() + ", got shape " + t.shape_text(),
                where_input(spec.name));
  for (std::size_t a = 0; a < want.size(); ++a)
    if (want[a].fixed() && t.shape()[a] != want[a].size)
      throw Error("axis " + std::to_string(a) + " must be " + std::to_string(want[a].size) + ", got shape " +
                      t.shape_text(),
                  where_input(spec.name));
  if (t.raw() == nullptr && t.size() > 0) throw Error("the tensor has no data", where_input(spec.name));
}

// check_feeds' dtype rule; returns the tensor in the declared dtype (the caller's own when it already is).
Tensor converted(const Tensor& t, const IoSpec& spec) {
  if (spec.dtype == DType::Int32 || spec.dtype == DType::Int64) {
    switch (t.dtype()) {
      case DType::Float32: check_integers<float>(t, spec); break;
      case DType::Float64: check_integers<double>(t, spec); break;
      case DType::Int32: check_integers<int32_t>(t, spec); break;
      case DType::Int64: check_integers<int64_t>(t, spec); break;
      case DType::String: break;
      case DType::Bool:
        throw Error("expected integer token ids, got bool", where_input(spec.name));
    }
  } else if (spec.dtype == DType::Bool) {
    switch (t.dtype()) {
      case DType::Float32: check_zero_one<float>(t, spec); break;
      case DType::Float64: check_zero_one<double>(t, spec); break;
      case DType::Int32: check_zero_one<int32_t>(t, spec); break;
      case DType::Int64: check_zero_one<int64_t>(t, spec); break;
      case DType::String: case DType::Bool: break;
    }
  } else if (t.dtype() == DType::Bool) {
    throw Error("expected numbers, got bool", where_input(spec.name));
  }
  return t.dtype() == spec.dtype ? t : t.cast(spec.dtype);
}

// Session.run's vocabulary check, after every input passed check_feeds.
void check_tokens(const Tensor& t, const IoSpec& spec) {
  if (!spec.token_range) return;
  if (spec.dtype == DType::Int32) check_token_range<int32_t>(t, spec);
  else if (spec.dtype == DType::Int64) check_token_range<int64_t>(t, spec);
}

}  // namespace

struct Session::State {
  std::unique_ptr<detail::Runner> runner;
  std::vector<const IoSpec*> inputs;    // model inputs (states excluded), graph order
  std::vector<std::size_t> feed_slot;   // where each manifest input goes in the runner's feed list
  std::vector<std::size_t> state_in;    // manifest input index of each state
  std::vector<std::size_t> state_out;   // manifest output index of each state
  std::vector<bool> is_state_output;    // by manifest output index
  std::vector<Tensor> carried;          // by state index; empty = zeros next call
  std::vector<Tensor> feeds;            // reused across calls
  std::vector<detail::TextFeed> texts;  // by manifest input index: graph inputs of dtype String
  bool graph_takes_text = false;
};

Session::Session(Model model) : model_(std::move(model)), state_(std::make_unique<State>()) {
  const Manifest& m = model_.manifest();
  state_->runner = model_.impl_->engine->runner();
  state_->inputs = m.model_inputs();
  auto index_of = [](const std::vector<IoSpec>& specs, const std::string& name) {
    for (std::size_t i = 0; i < specs.size(); ++i)
      if (specs[i].name == name) return i;
    throw Error("\"" + name + "\" is not listed", "manifest.json");
  };
  for (const auto& s : m.states) {
    state_->state_in.push_back(index_of(m.inputs, s.input));
    state_->state_out.push_back(index_of(m.outputs, s.output));
  }
  for (const auto& o : m.outputs) state_->is_state_output.push_back(m.is_state_output(o.name));
  state_->feeds.resize(m.inputs.size());
  state_->texts.resize(m.inputs.size());
  for (const auto& i : m.inputs) state_->graph_takes_text = state_->graph_takes_text || i.dtype == DType::String;
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

bool Session::stateful() const { return model_.manifest().stateful(); }

void Session::reset_states() { state_->carried.clear(); }

TensorMap Session::states() const {
  TensorMap out;
  const Manifest& m = model_.manifest();
  for (std::size_t s = 0; s < state_->carried.size(); ++s) out[m.states[s].input] = state_->carried[s].clone();
  return out;
}

void Session::set_states(const TensorMap& states) {
  const Manifest& m = model_.manifest();
  std::vector<Tensor> next;
  int64_t batch = -1;
  for (const auto& kv : states)
    if (!m.is_state_input(kv.first)) throw Error("not a carried state of this model", "state '" + kv.first + "'");
  for (const auto& s : m.states) {
    auto it = states.find(s.input);
    if (it == states.end()) throw Error("missing; set every carried state at once", "state '" + s.input + "'");
    std::vector<int64_t> want = {it->second.rank() ? it->second.shape()[0] : -1};
    want.insert(want.end(), s.shape.begin(), s.shape.end());
    if (it->second.shape() != want || want[0] < 0 || (batch >= 0 && want[0] != batch))
      throw Error("expected shape (batch" + [&] {
        std::string t;
        for (auto d : s.shape) t += ", " + std::to_string(d);
        return t;
      }() + ") with one batch size for every state, got " + it->second.shape_text(), "state '" + s.input + "'");
    batch = want[0];
    next.push_back(it->second.cast(DType::Float32));
  }
  state_->carried = std::move(next);
}

TensorMap Session::run(const Tensor& input) {
  if (state_->inputs.size() != 1) {
    std::string names;
    for (const IoSpec* i : state_->inputs) names += (names.empty() ? "'" : ", '") + i->name + "'";
    throw Error("the model has inputs [" + names + "]: pass them by name", "inputs");
  }
  return run(TensorMap{{state_->inputs[0]->name, input}});
}

TensorMap Session::run(const TensorMap& inputs) { return run(inputs, TextMap{}); }

TensorMap Session::run(const TextMap& texts) { return run(TensorMap{}, texts); }

TensorMap Session::run(const TensorMap& inputs, const TextMap& texts) {
  try {
    return run_checked(inputs, texts);
  } catch (...) {
    for (auto& f : state_->feeds) f = Tensor();  // hold no reference to the caller's memory
    for (auto& t : state_->texts) t = detail::TextFeed();
    throw;
  }
}

TensorMap Session::run_checked(const TensorMap& given_inputs, const TextMap& texts) {
  const Manifest& m = model_.manifest();
  State& st = *state_;
  const auto text_inputs = m.text_inputs();
  for (const auto& kv : texts) {
    bool known = false;
    for (const IoSpec* t : text_inputs) known = known || t->name == kv.first;
    if (!known)
      throw Error(text_inputs.empty() ? "unknown text input; the model takes no text (its inputs are: " +
                                            names_of(st.inputs) + ")"
                                      : "unknown text input; the model's text inputs are: " + names_of(text_inputs),
                  where_text(kv.first));
  }
  for (const auto& kv : given_inputs)
    for (const IoSpec* t : text_inputs)
      if (t->name == kv.first)
        throw Error("a text input: pass its strings (one per batch row) in the TextMap of run(inputs, texts)",
                    where_input(kv.first));
  // Host tokenizers: their texts become the ids of their graph input.
  const TensorMap* feed_map = &given_inputs;
  TensorMap merged;
  if (!m.preprocessing.empty()) {
    merged = given_inputs;
    feed_map = &merged;
    for (std::size_t p = 0; p < m.preprocessing.size(); ++p) {
      const TextPreprocessing& pre = m.preprocessing[p];
      auto it = texts.find(pre.input.name);
      const bool ids_given = given_inputs.count(pre.output) > 0;
      if (it == texts.end()) {
        if (ids_given) continue;  // ids computed by the caller
        throw Error("missing text input; expected one UTF-8 string per batch row (or its token ids as input '" +
                        pre.output + "')",
                    where_text(pre.input.name));
      }
      if (ids_given)
        throw Error("given twice: as texts of text input '" + pre.input.name + "' and as token ids",
                    where_input(pre.output));
      merged[pre.output] = model_.impl_->tokenizers[p](it->second, where_text(pre.input.name));
    }
  }
  const TensorMap& inputs = *feed_map;
  for (const auto& kv : inputs) {  // sorted by name, as Python reports the first unknown one
    bool known = false;
    for (const IoSpec* i : st.inputs) known = known || (i->name == kv.first && i->dtype != DType::String);
    if (!known) {
      std::string names;
      for (const IoSpec* i : st.inputs) names += (names.empty() ? "" : ", ") + i->name;
      throw Error("unknown input '" + kv.first + "'; the model's inputs are: " + names, where_input(kv.first));
    }
  }
  int64_t batch = -1;
  bool first = true;
  std::size_t k = 0;
  for (std::size_t i = 0; i < m.inputs.size(); ++i) {
    if (k >= st.inputs.size() || &m.inputs[i] != st.inputs[k]) continue;  // a state input
    const IoSpec& spec = *st.inputs[k++];
    if (spec.dtype == DType::String) {  // the graph takes the text itself
      auto t = texts.find(spec.name);
      if (t == texts.end())
        throw Error("missing text input; expected one UTF-8 string per batch row, in the TextMap of run(inputs, texts)",
                    where_text(spec.name));
      const auto& rows = t->second;
      for (std::size_t r = 0; r < rows.size(); ++r)
        if (std::size_t bad = invalid_utf8_offset(rows[r]); bad != std::string::npos)
          throw Error("row " + std::to_string(r) + ": invalid UTF-8 at byte " + std::to_string(bad) +
                          "; expected UTF-8 text",
                      where_text(spec.name));
      const auto n = static_cast<int64_t>(rows.size());
      if (first) {
        batch = n;
        first = false;
      } else if (n != batch) {
        throw Error("batch size " + std::to_string(n) + " differs from the other inputs' " + std::to_string(batch),
                    where_text(spec.name));
      }
      st.texts[i].rows = &rows;
      st.texts[i].shape = spec.shape.size() == 2 ? std::vector<int64_t>{n, 1} : std::vector<int64_t>{n};
      continue;
    }
    auto it = inputs.find(spec.name);
    if (it == inputs.end())
      throw Error(std::string("missing input; expected ") + dtype_name(spec.dtype) + " with shape " + spec.shape_text(),
                  where_input(spec.name));
    const Tensor& given = it->second;
    check_shape(given, spec);
    if (given.rank()) {
      if (first) {
        batch = given.shape()[0];
        first = false;
      } else if (given.shape()[0] != batch) {
        throw Error("batch size " + std::to_string(given.shape()[0]) + " differs from the other inputs' " +
                        std::to_string(batch),
                    where_input(spec.name));
      }
    }
    st.feeds[i] = converted(given, spec);
  }
  for (std::size_t i = 0; i < m.inputs.size(); ++i)
    if (!m.is_state_input(m.inputs[i].name) && m.inputs[i].dtype != DType::String) check_tokens(st.feeds[i], m.inputs[i]);
  if (m.stateful()) {
    if (!st.carried.empty() && st.carried[0].shape()[0] != batch)
      throw Error("a stateful model keeps its batch size: got " + std::to_string(batch) + ", the carried state has " +
                      std::to_string(st.carried[0].shape()[0]) + "; call reset_states() first",
                  "inputs");
    for (std::size_t s = 0; s < m.states.size(); ++s) {
      if (st.carried.empty()) {
        std::vector<int64_t> shape = {batch};
        shape.insert(shape.end(), m.states[s].shape.begin(), m.states[s].shape.end());
        st.feeds[st.state_in[s]] = Tensor(DType::Float32, std::move(shape));
      } else {
        st.feeds[st.state_in[s]] = st.carried[s];
      }
    }
  }
  std::vector<Tensor> outs = st.graph_takes_text ? st.runner->run_with_texts(st.feeds, st.texts) : st.runner->run(st.feeds);
  for (auto& f : st.feeds) f = Tensor();  // drop references to the caller's memory
  for (auto& t : st.texts) t = detail::TextFeed();
  TensorMap result;
  for (std::size_t o = 0; o < outs.size(); ++o)
    if (!st.is_state_output[o]) result.emplace(m.outputs[o].name, std::move(outs[o]));
  if (m.stateful()) {
    std::vector<Tensor> next;
    for (std::size_t s = 0; s < m.states.size(); ++s) next.push_back(std::move(outs[st.state_out[s]]));
    st.carried = std::move(next);
  }
  return result;
}

template <class T>
Tensor Session::pad(const std::string& input, const std::vector<std::vector<T>>& rows, Padding side) const {
  const IoSpec& spec = model_.manifest().input(input);
  if (spec.shape.size() != 2 && spec.shape.size() != 3)
    throw Error("padding is for [batch, time] and [batch, time, features] inputs, this one is " + spec.shape_text(),
                where_input(input));
  if (!spec.pad_value)
    throw Error("the model does not mask this input, so padded steps would be read as data; use "
                "pad_sequences() with a value of your choice if that is what you want",
                where_input(input));
  int64_t features = 0;
  if (spec.shape.size() == 3) {
    if (!spec.shape[2].fixed()) throw Error("the feature axis has no fixed size", where_input(input));
    features = spec.shape[2].size;
  }
  return pad_sequences<T>(rows, side, static_cast<T>(*spec.pad_value), features);
}

template Tensor Session::pad<float>(const std::string&, const std::vector<std::vector<float>>&, Padding) const;
template Tensor Session::pad<int32_t>(const std::string&, const std::vector<std::vector<int32_t>>&, Padding) const;
template Tensor Session::pad<int64_t>(const std::string&, const std::vector<std::vector<int64_t>>&, Padding) const;

#ifndef RNNCOMPILE_WITH_TENSORRT
std::unique_ptr<detail::Engine> detail::tensorrt_engine(const std::string&, const Manifest&, const Options&) {
  throw Error("this build of the rnncompile runtime has no TensorRT backend (configure with "
              "-DRNNCOMPILE_TENSORRT=ON where TensorRT's headers and libraries are installed)",
              "options.backend");
}
#endif

}  // namespace rnncompile
