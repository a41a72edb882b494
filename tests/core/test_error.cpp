// Tests for error.h: formatting, exception types and their exit codes.
#include <catch2/catch.hpp>

#include "zeroth/error.h"

using namespace zeroth;

TEST_CASE("strformat formats like printf, including long strings", "[core]") {
  REQUIRE(strformat("%s=%d", "x", 3) == "x=3");
  std::string big(5000, 'a');
  REQUIRE(strformat("<%s>", big.c_str()).size() == 5002);
  REQUIRE(strformat("%s", "").empty());
}

TEST_CASE("user errors carry exit codes: 2 for usage/config, 1 otherwise", "[core]") {
  REQUIRE(UsageError("x").exit_code() == 2);
  REQUIRE(ConfigError("x").exit_code() == 2);
  REQUIRE(DataError("x").exit_code() == 1);
  REQUIRE(CheckpointError("x").exit_code() == 1);
  REQUIRE(RuntimeError("x").exit_code() == 1);
}

TEST_CASE("ZT_THROW_IF_NOT throws the named type with the formatted message", "[core]") {
  auto f = [](int v) { ZT_THROW_IF_NOT(v > 0, DataError, "line %d: expected a positive count, found %d", 7, v); };
  REQUIRE_NOTHROW(f(1));
  try {
    f(-2);
    FAIL("no throw");
  } catch (const DataError& e) {
    REQUIRE(std::string(e.what()) == "line 7: expected a positive count, found -2");
  }
}

TEST_CASE("ZT_CHECK_LIB reports the library, call and error string", "[core]") {
  auto call = [](int status) {
    ZT_CHECK_LIB("FakeLib", status, zt_status_ == 0, strformat("code %d", int(zt_status_)));
  };
  REQUIRE_NOTHROW(call(0));
  try {
    call(5);
    FAIL("no throw");
  } catch (const RuntimeError& e) {
    std::string m = e.what();
    REQUIRE(m.find("FakeLib error at") == 0);
    REQUIRE(m.find("test_error.cpp") != std::string::npos);
    REQUIRE(m.find("code 5") != std::string::npos);
  }
}
