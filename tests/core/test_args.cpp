// Tests for the CLI flag parser (src/cli/args.cpp).
#include <catch2/catch.hpp>

#include "cli/cli.h"
#include "zeroth/error.h"

using zeroth::UsageError;
using zeroth::cli::Args;

TEST_CASE("flags with values, =values, booleans, repeats and positionals", "[cli]") {
  Args a("train", {"--config", "c.yaml", "--set=a.b=1", "--set", "x=2", "--dry-run", "pos"},
         {"config", "set"}, {"dry-run"}, {"set"});
  REQUIRE(a.get("config") == "c.yaml");
  REQUIRE(a.all("set") == std::vector<std::string>{"a.b=1", "x=2"});
  REQUIRE(a.has("dry-run"));
  REQUIRE(a.positional() == std::vector<std::string>{"pos"});
  REQUIRE(a.get("missing", "d") == "d");
  REQUIRE_FALSE(a.help());
}

TEST_CASE("unknown, repeated, valueless and missing flags are usage errors", "[cli]") {
  REQUIRE_THROWS_WITH(Args("train", {"--confg", "x"}, {"config"}),
                      Catch::Contains("unknown option '--confg'"));
  REQUIRE_THROWS_WITH(Args("train", {"--config", "a", "--config", "b"}, {"config"}),
                      Catch::Contains("given twice"));
  REQUIRE_THROWS_WITH(Args("train", {"--config"}, {"config"}), Catch::Contains("needs a value"));
  REQUIRE_THROWS_WITH(Args("train", {"--dry-run=1"}, {}, {"dry-run"}), Catch::Contains("takes no value"));
  Args a("train", {}, {"config"});
  REQUIRE_THROWS_AS(a.required("config"), UsageError);
  REQUIRE(Args("train", {"-h"}, {}).help());
}
