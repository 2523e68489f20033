// OUT/manifest.json, read with nlohmann-json. Every problem names its JSON path; unknown fields are
// ignored (manifests may gain fields).
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rnncompile/runtime.hpp"

namespace rnncompile {

using nlohmann::json;

namespace {

struct Reader {
  std::string file;

  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    throw Error("damaged manifest: " + path + ": " + message, file);
  }
  const json& field(const json& obj, const std::string& path, const char* key) const {
    if (!obj.is_object()) fail(path, "expected an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(path + "." + key, "missing");
    return *it;
  }
  std::string text(const json& obj, const std::string& path, const char* key) const {
    const json& v = field(obj, path, key);
    if (!v.is_string()) fail(path + "." + key, "expected a string, found " + v.dump());
    return v.get<std::string>();
  }
  const json& array(const json& obj, const std::string& path, const char* key) const {
    const json& v = field(obj, path, key);
    if (!v.is_array()) fail(path + "." + key, "expected an array, found " + v.dump().substr(0, 80));
    return v;
  }
  DType dtype(const json& obj, const std::string& path) const {
    std::string name = text(obj, path, "dtype");
    for (DType d : {DType::Float32, DType::Float64, DType::Int32, DType::Int64, DType::String, DType::Bool})
      if (name == dtype_name(d)) return d;
    fail(path + ".dtype", "expected float32, float64, int32, int64, bool or string, found \"" + name + "\"");
  }
  IoSpec io(const json& obj, const std::string& path) const {
    IoSpec spec;
    spec.name = text(obj, path, "name");
    spec.dtype = dtype(obj, path);
    const json& shape = array(obj, path, "shape");
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const json& d = shape[i];
      Dim dim;
      if (d.is_number_integer()) dim.size = d.get<int64_t>();  // <= 0 counts as dynamic, as in Python
      else if (d.is_string()) dim.symbol = d.get<std::string>();
      else if (!d.is_null()) fail(path + ".shape[" + std::to_string(i) + "]", "expected an integer, a name or null");
      spec.shape.push_back(dim);
    }
    if (auto it = obj.find("token_range"); it != obj.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1) fail(path + ".token_range", "expected an integer >= 1");
      spec.token_range = it->get<int64_t>();
    }
    if (auto it = obj.find("pad_value"); it != obj.end() && !it->is_null()) {
      if (it->is_boolean() && spec.dtype == DType::Bool) {  // a bool mask input: padded steps are false
        spec.pad_value = it->get<bool>() ? 1.0 : 0.0;
      } else {
        if (!it->is_number()) fail(path + ".pad_value", "expected a number");
        spec.pad_value = it->get<double>();
      }
    }
    return spec;
  }
};

// A text input's shape: (batch,) or (batch, 1), the batch axis dynamic.
void check_text_shape(const Reader& r, const IoSpec& spec, const std::string& path) {
  const auto& s = spec.shape;
  if (s.empty() || s.size() > 2 || s[0].fixed() || (s.size() == 2 && s[1].size != 1))
    r.fail(path + ".shape", "a text input has shape [batch] or [batch, 1], found " + spec.shape_text());
}

// A field that may be left out: missing reads as null (as Python's TextVectorizer.from_dict).
const json& optional_field(const Reader& r, const json& obj, const std::string& path, const char* key) {
  static const json null_value;
  if (!obj.is_object()) r.fail(path, "expected an object");
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

// An optional string field with a fixed set of values (null allowed).
template <class E>
E choice(const Reader& r, const json& obj, const std::string& path, const char* key,
         const std::vector<std::pair<const char*, E>>& values, E if_null) {
  const json& v = optional_field(r, obj, path, key);
  if (v.is_null()) return if_null;
  std::string names;
  for (const auto& kv : values) {
    if (v.is_string() && v.get<std::string>() == kv.first) return kv.second;
    names += std::string(names.empty() ? "" : ", ") + "\"" + kv.first + "\"";
  }
  r.fail(path + "." + key, "expected " + names + " or null, found " + v.dump().substr(0, 80));
}

TextPreprocessing text_preprocessing(const Reader& r, const json& obj, const std::string& path) {
  TextPreprocessing p;
  p.kind = r.text(obj, path, "kind");
  if (p.kind != "TextVectorization")
    r.fail(path + ".kind", "this runtime knows the preprocessing kind \"TextVectorization\", found \"" + p.kind + "\"");
  if (auto it = obj.find("layer"); it != obj.end() && it->is_string()) p.layer = it->get<std::string>();
  p.input = r.io(r.field(obj, path, "input"), path + ".input");
  if (p.input.dtype != DType::String) r.fail(path + ".input.dtype", "expected \"string\"");
  check_text_shape(r, p.input, path + ".input");
  p.output = r.text(obj, path, "output");
  p.options.standardize = choice<Standardize>(r, obj, path, "standardize",
                                              {{"lower_and_strip_punctuation", Standardize::LowerAndStripPunctuation},
                                               {"lower", Standardize::Lower},
                                               {"strip_punctuation", Standardize::StripPunctuation}},
                                              Standardize::None);
  p.options.split = choice<Split>(r, obj, path, "split", {{"whitespace", Split::Whitespace}, {"character", Split::Character}},
                                  Split::None);
  if (const json& ng = optional_field(r, obj, path, "ngrams"); !ng.is_null()) {
    if (!ng.is_array()) r.fail(path + ".ngrams", "expected a list of widths or null, found " + ng.dump().substr(0, 80));
    std::vector<int64_t> widths;
    for (const json& w : ng) {
      if (!w.is_number_integer() || w.get<int64_t>() < 1) r.fail(path + ".ngrams", "expected widths >= 1, found " + w.dump());
      widths.push_back(w.get<int64_t>());
    }
    p.options.ngrams = std::move(widths);
  }
  if (const json& len = optional_field(r, obj, path, "output_sequence_length"); !len.is_null()) {
    if (!len.is_number_integer() || len.get<int64_t>() < 1)
      r.fail(path + ".output_sequence_length", "expected an integer >= 1 or null, found " + len.dump().substr(0, 80));
    p.options.output_sequence_length = len.get<int64_t>();
  }
  p.vocabulary = r.text(obj, path, "vocabulary");
  if (p.vocabulary.empty() || p.vocabulary[0] == '/' || p.vocabulary.find("..") != std::string::npos)
    r.fail(path + ".vocabulary", "expected a file name inside the build directory, found \"" + p.vocabulary + "\"");
  if (auto it = obj.find("vocabulary_sha256"); it != obj.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().size() != 64)
      r.fail(path + ".vocabulary_sha256", "expected 64 hex digits");
    p.vocabulary_sha256 = it->get<std::string>();
  }
  return p;
}

const IoSpec* find(const std::vector<IoSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace

std::string IoSpec::shape_text() const {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += i ? ", " : "";
    s += shape[i].fixed() ? std::to_string(shape[i].size) : (shape[i].symbol.empty() ? "?" : shape[i].symbol);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

Manifest Manifest::parse(const std::string& json_text, const std::string& where) {
  Reader r{where};
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error(std::string("damaged manifest.json: ") + e.what(), where);
  }
  if (!doc.is_object()) r.fail("$", "expected an object");
  Manifest m;
  if (auto it = doc.find("name"); it != doc.end() && it->is_string()) m.name = it->get<std::string>();
  if (auto it = doc.find("rnncompile"); it != doc.end() && it->is_string()) m.rnncompile_version = it->get<std::string>();
  if (auto it = doc.find("opset"); it != doc.end() && it->is_number_integer()) m.opset = it->get<int64_t>();
  const json& inputs = r.array(doc, "$", "inputs");
  for (std::size_t i = 0; i < inputs.size(); ++i) m.inputs.push_back(r.io(inputs[i], "$.inputs[" + std::to_string(i) + "]"));
  const json& outputs = r.array(doc, "$", "outputs");
  for (std::size_t i = 0; i < outputs.size(); ++i)
    m.outputs.push_back(r.io(outputs[i], "$.outputs[" + std::to_string(i) + "]"));
  if (doc.contains("states")) {
    const json& states = r.array(doc, "$", "states");
    for (std::size_t i = 0; i < states.size(); ++i) {
      std::string path = "$.states[" + std::to_string(i) + "]";
      StateSpec s;
      s.layer = r.text(states[i], path, "layer");
      s.input = r.text(states[i], path, "input");
      s.output = r.text(states[i], path, "output");
      const json& shape = r.array(states[i], path, "shape");
      for (const json& d : shape) {
        if (!d.is_number_integer() || d.get<int64_t>() < 1) r.fail(path + ".shape", "expected positive integers");
        s.shape.push_back(d.get<int64_t>());
      }
      if (!find(m.inputs, s.input)) r.fail(path + ".input", "\"" + s.input + "\" is not one of $.inputs");
      if (!find(m.outputs, s.output)) r.fail(path + ".output", "\"" + s.output + "\" is not one of $.outputs");
      m.states.push_back(std::move(s));
    }
  }
  for (std::size_t i = 0; i < m.inputs.size(); ++i)
    if (m.inputs[i].dtype == DType::String) check_text_shape(r, m.inputs[i], "$.inputs[" + std::to_string(i) + "]");
  for (std::size_t i = 0; i < m.outputs.size(); ++i)
    if (m.outputs[i].dtype == DType::String)
      r.fail("$.outputs[" + std::to_string(i) + "].dtype", "this runtime returns no string outputs");
  if (doc.contains("preprocessing") && !doc["preprocessing"].is_null()) {
    const json& pre = r.array(doc, "$", "preprocessing");
    for (std::size_t i = 0; i < pre.size(); ++i) {
      std::string path = "$.preprocessing[" + std::to_string(i) + "]";
      TextPreprocessing p = text_preprocessing(r, pre[i], path);
      const IoSpec* ids = find(m.inputs, p.output);
      if (!ids || m.is_state_input(p.output))
        r.fail(path + ".output", "\"" + p.output + "\" is not one of $.inputs");
      if (ids->dtype != DType::Int32 && ids->dtype != DType::Int64)
        r.fail(path + ".output", "\"" + p.output + "\" must be an integer input, it is " + dtype_name(ids->dtype));
      if (find(m.inputs, p.input.name)) r.fail(path + ".input.name", "\"" + p.input.name + "\" is also a graph input");
      for (const auto& q : m.preprocessing)
        if (q.input.name == p.input.name || q.output == p.output)
          r.fail(path, "a second tokenizer for \"" + p.input.name + "\" / \"" + p.output + "\"");
      m.preprocessing.push_back(std::move(p));
    }
  }
  if (m.model_inputs().empty()) r.fail("$.inputs", "no model input besides carried states");
  return m;
}

Manifest Manifest::load(const std::string& out_dir) {
  std::string path = out_dir + "/manifest.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("not an rnncompile build directory (no readable manifest.json)", out_dir);
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

bool Manifest::is_state_input(const std::string& name) const {
  for (const auto& s : states)
    if (s.input == name) return true;
  return false;
}

bool Manifest::is_state_output(const std::string& name) const {
  for (const auto& s : states)
    if (s.output == name) return true;
  return false;
}

std::vector<const IoSpec*> Manifest::model_inputs() const {
  std::vector<const IoSpec*> out;
  for (const auto& i : inputs)
    if (!is_state_input(i.name)) out.push_back(&i);
  return out;
}

std::vector<const IoSpec*> Manifest::model_outputs() const {
  std::vector<const IoSpec*> out;
  for (const auto& o : outputs)
    if (!is_state_output(o.name)) out.push_back(&o);
  return out;
}

std::vector<const IoSpec*> Manifest::text_inputs() const {
  std::vector<const IoSpec*> out;
  for (const auto& p : preprocessing) out.push_back(&p.input);
  for (const IoSpec* i : model_inputs())
    if (i->dtype == DType::String) out.push_back(i);
  return out;
}

const TextPreprocessing* Manifest::preprocessing_of(const std::string& text_input) const {
  for (const auto& p : preprocessing)
    if (p.input.name == text_input) return &p;
  return nullptr;
}

const IoSpec& Manifest::input(const std::string& name) const {
  for (const IoSpec* i : model_inputs())
    if (i->name == name) return *i;
  std::string names;
  for (const IoSpec* i : model_inputs()) names += (names.empty() ? "" : ", ") + i->name;
  throw Error("unknown input; the model's inputs are: " + names, "input '" + name + "'");
}

}  // namespace rnncompile
