#include "json_tensors.hpp"

#include <functional>

namespace rnncompile_example {

using nlohmann::json;
using rnncompile::DType;
using rnncompile::Error;
using rnncompile::Tensor;

Tensor tensor_from_json(const json& value, const std::string& where) {
  std::vector<int64_t> shape;
  for (const json* v = &value; v->is_array(); v = &(*v)[0]) {
    shape.push_back(static_cast<int64_t>(v->size()));
    if (v->empty()) break;
  }
  std::vector<const json*> leaves;
  bool integers = true;
  std::size_t booleans = 0;  // true/false leaves: a bool mask (all of them, or an error)
  std::function<void(const json&, std::size_t)> walk = [&](const json& v, std::size_t depth) {
    if (depth == shape.size()) {
      if (v.is_boolean()) {
        ++booleans;
        leaves.push_back(&v);
        return;
      }
      if (!v.is_number()) throw Error("expected numbers, found " + v.dump().substr(0, 40), where);
      integers = integers && (v.is_number_integer());
      leaves.push_back(&v);
      return;
    }
    if (!v.is_array() || static_cast<int64_t>(v.size()) != shape[depth])
      throw Error("not a rectangular array (axis " + std::to_string(depth) + " should have " +
                      std::to_string(shape[depth]) + " entries everywhere)",
                  where);
    for (const json& item : v) walk(item, depth + 1);
  };
  walk(value, 0);
  if (booleans && booleans != leaves.size())
    throw Error("expected all true/false (a bool mask) or all numbers, found both", where);
  if (booleans) {
    Tensor mask(DType::Bool, shape);
    bool* data = mask.mutable_data<bool>();
    for (std::size_t i = 0; i < leaves.size(); ++i) data[i] = leaves[i]->get<bool>();
    return mask;
  }
  if (integers && !leaves.empty()) {
    std::vector<int64_t> data;
    data.reserve(leaves.size());
    for (const json* v : leaves) {
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw Error("integer " + v->dump() + " does not fit int64", where);
      data.push_back(v->get<int64_t>());
    }
    return Tensor::from_vector<int64_t>(shape, std::move(data));
  }
  std::vector<double> data;
  data.reserve(leaves.size());
  for (const json* v : leaves) data.push_back(v->get<double>());
  return Tensor::from_vector<double>(shape, std::move(data));
}

namespace {

template <class T>
json nested(const T* data, const std::vector<int64_t>& shape, std::size_t axis, int64_t& offset) {
  if (axis == shape.size()) return json(data[offset++]);
  json out = json::array();
  for (int64_t i = 0; i < shape[axis]; ++i) out.push_back(nested(data, shape, axis + 1, offset));
  return out;
}

template <class T>
json typed(const Tensor& t) {
  int64_t offset = 0;
  return nested(t.data<T>(), t.shape(), 0, offset);
}

}  // namespace

json tensor_to_json(const Tensor& t) {
  switch (t.dtype()) {
    case DType::Float32: return typed<float>(t);
    case DType::Float64: return typed<double>(t);
    case DType::Int32: return typed<int32_t>(t);
    case DType::Int64: return typed<int64_t>(t);
    case DType::Bool: return typed<bool>(t);
    case DType::String: break;
  }
  return json();
}

}  // namespace rnncompile_example
