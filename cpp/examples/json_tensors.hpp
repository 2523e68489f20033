// Nested JSON arrays <-> rnncompile::Tensor (for the example application).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "rnncompile/runtime.hpp"

namespace rnncompile_example {

/// A rectangular nested array of numbers -> int64 tensor when every number is an integer, else
/// float64 (as NumPy's asarray does). `where` names the value in errors ("inputs.json[tokens]").
rnncompile::Tensor tensor_from_json(const nlohmann::json& value, const std::string& where);

/// A tensor -> nested arrays (a number for rank 0).
nlohmann::json tensor_to_json(const rnncompile::Tensor& tensor);

}  // namespace rnncompile_example
