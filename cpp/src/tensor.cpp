// Tensors, errors and the padding helper.
#include <algorithm>
#include <cstring>
#include <sstream>

#include "rnncompile/runtime.hpp"

namespace rnncompile {

Error::Error(std::string message, std::string where)
    : std::runtime_error(where.empty() ? message : where + ": " + message),
      where_(std::move(where)),
      message_(std::move(message)) {}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::String: return "string";
    case DType::Bool: return "bool";
  }
  return "?";
}

std::size_t dtype_size(DType dtype) {
  if (dtype == DType::Bool) return 1;
  return (dtype == DType::Float64 || dtype == DType::Int64) ? 8 : 4;
}

namespace {

const char* const kNoStringTensors = "tensors hold no strings; pass texts to Session::run in a TextMap";

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("a tensor dimension is negative (" + std::to_string(d) + ")", "tensor shape");
    n *= d;
  }
  return n;
}

template <class To, class From>
void convert(const From* src, To* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<To>(src[i]);
}

template <class To>
void convert_from(DType from, const void* src, To* dst, int64_t n) {
  switch (from) {
    case DType::Float32: convert(static_cast<const float*>(src), dst, n); break;
    case DType::Float64: convert(static_cast<const double*>(src), dst, n); break;
    case DType::Int32: convert(static_cast<const int32_t*>(src), dst, n); break;
    case DType::Int64: convert(static_cast<const int64_t*>(src), dst, n); break;
    case DType::Bool: convert(static_cast<const bool*>(src), dst, n); break;
    case DType::String: throw Error(kNoStringTensors, "tensor");
  }
}

template <class T>
Tensor converted(const Tensor& t) {
  std::vector<T> values(static_cast<std::size_t>(t.size()));
  convert_from(t.dtype(), t.raw(), values.data(), t.size());
  return Tensor::from_vector<T>(t.shape(), std::move(values));
}

// std::vector<bool> packs bits: bool tensors are a zero-filled Tensor written in place.
template <>
Tensor converted<bool>(const Tensor& t) {
  Tensor out(DType::Bool, t.shape());
  convert_from(t.dtype(), t.raw(), out.mutable_data<bool>(), t.size());
  return out;
}

}  // namespace

Tensor::Tensor(DType dtype, std::vector<int64_t> shape, std::shared_ptr<void> owner, void* data, bool writable)
    : dtype_(dtype), shape_(std::move(shape)), owner_(std::move(owner)), data_(data), writable_(writable) {
  element_count(shape_);
}

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  if (dtype == DType::String) throw Error(kNoStringTensors, "tensor");
  auto bytes = static_cast<std::size_t>(element_count(shape_)) * dtype_size(dtype);
  // 8-byte aligned storage for every dtype, zero-filled.
  auto owner = std::make_shared<std::vector<int64_t>>((bytes + 7) / 8, 0);
  data_ = owner->data();
  owner_ = std::move(owner);
  writable_ = true;
}

Tensor Tensor::adopt(DType dtype, std::vector<int64_t> shape, std::shared_ptr<void> owner, void* data) {
  return Tensor(dtype, std::move(shape), std::move(owner), data, true);
}

void Tensor::check_count(const std::vector<int64_t>& shape, int64_t count) {
  int64_t want = element_count(shape);
  if (want != count) {
    std::ostringstream msg;
    msg << "shape " << Tensor::view<float>(shape, nullptr).shape_text() << " holds " << want << " values, got "
        << count;
    throw Error(msg.str(), "tensor");
  }
}

int64_t Tensor::size() const { return element_count(shape_); }

void Tensor::expect(DType dtype) const {
  if (dtype != dtype_)
    throw Error(std::string("the tensor holds ") + dtype_name(dtype_) + ", not " + dtype_name(dtype), "tensor");
}

void Tensor::expect_writable() const {
  if (!writable_) throw Error("a view of the caller's memory is read-only", "tensor");
}

Tensor Tensor::cast(DType dtype) const {
  switch (dtype) {
    case DType::Float32: return converted<float>(*this);
    case DType::Float64: return converted<double>(*this);
    case DType::Int32: return converted<int32_t>(*this);
    case DType::Int64: return converted<int64_t>(*this);
    case DType::Bool: return converted<bool>(*this);
    case DType::String: break;
  }
  throw Error(kNoStringTensors, "tensor");
}

std::string Tensor::shape_text() const {
  std::ostringstream s;
  s << "(";
  for (std::size_t i = 0; i < shape_.size(); ++i) s << (i ? ", " : "") << shape_[i];
  s << (shape_.size() == 1 ? ",)" : ")");
  return s.str();
}

template <class T>
Tensor pad_sequences(const std::vector<std::vector<T>>& rows, Padding side, T pad_value, int64_t features) {
  const int64_t width = features > 0 ? features : 1;
  int64_t longest = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    auto n = static_cast<int64_t>(rows[r].size());
    if (n % width != 0)
      throw Error("holds " + std::to_string(n) + " values, not a whole number of steps of " +
                      std::to_string(width) + " features",
                  "row " + std::to_string(r));
    longest = std::max(longest, n / width);
  }
  const auto batch = static_cast<int64_t>(rows.size());
  std::vector<T> values(static_cast<std::size_t>(batch * longest * width), pad_value);
  for (int64_t r = 0; r < batch; ++r) {
    const auto& row = rows[static_cast<std::size_t>(r)];
    int64_t steps = static_cast<int64_t>(row.size()) / width;
    int64_t start = side == Padding::Right ? 0 : longest - steps;
    std::copy(row.begin(), row.end(), values.begin() + (r * longest + start) * width);
  }
  std::vector<int64_t> shape = {batch, longest};
  if (features > 0) shape.push_back(features);
  return Tensor::from_vector<T>(std::move(shape), std::move(values));
}

template Tensor pad_sequences<float>(const std::vector<std::vector<float>>&, Padding, float, int64_t);
template Tensor pad_sequences<int32_t>(const std::vector<std::vector<int32_t>>&, Padding, int32_t, int64_t);
template Tensor pad_sequences<int64_t>(const std::vector<std::vector<int64_t>>&, Padding, int64_t, int64_t);

}  // namespace rnncompile
