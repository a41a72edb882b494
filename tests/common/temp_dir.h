// TempDir: a fresh empty directory under /tmp for one test, removed with everything in it
// when the object goes out of scope.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace zeroth_test {

struct TempDir {
  std::string path;
  // `prefix`: the directory's name before mkdtemp's random suffix.
  explicit TempDir(const std::string& prefix = "zeroth_test") {
    std::string tmpl = "/tmp/" + prefix + "_" + std::string(6, 'X');  // mkdtemp's template suffix
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

}  // namespace zeroth_test
