// What the ctest programs share: CHECK (counts a failure and goes on), EXPECT_ERROR (the call must
// throw an rnncompile::Error whose message holds every fragment) and a temporary folder.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "rnncompile/runtime.hpp"

namespace rnncompile_test {

namespace fs = std::filesystem;

inline int failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #cond << "\n"; \
      ++rnncompile_test::failures;                                                  \
    }                                                                               \
  } while (0)

// `call` must throw rnncompile::Error whose what() contains every fragment.
inline void expect_error(const std::function<void()>& call, const std::vector<std::string>& fragments, int line) {
  try {
    call();
  } catch (const rnncompile::Error& e) {
    for (const auto& f : fragments)
      if (std::string(e.what()).find(f) == std::string::npos) {
        std::cerr << "line " << line << ": error \"" << e.what() << "\" lacks \"" << f << "\"\n";
        ++failures;
      }
    return;
  } catch (const std::exception& e) {
    std::cerr << "line " << line << ": expected rnncompile::Error, got std::exception: " << e.what() << "\n";
    ++failures;
    return;
  }
  std::cerr << "line " << line << ": expected an rnncompile::Error, nothing was thrown\n";
  ++failures;
}
#define EXPECT_ERROR(call, ...) rnncompile_test::expect_error([&] { call; }, {__VA_ARGS__}, __LINE__)

// A folder under the system's temporary directory, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "rnncompile-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
  }
};

}  // namespace rnncompile_test
