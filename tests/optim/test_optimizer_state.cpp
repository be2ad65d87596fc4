// Reading checkpointed optimizer state (optim/optimizer_state.hpp): typed metadata entries, index
// and count lists, and per-parameter buffers, each refusal naming the entry at fault.
#include <doctest/doctest.h>
#include <soda/core/core.hpp>
#include <soda/optim/optimizer_state.hpp>

#include <map>
#include <string>
#include <vector>

namespace {

using soda::optim::detail::MetadataReader;

const std::map<std::string, std::string> metadata{{"x.rate", "0.25"},     {"x.count", "7"},
                                                  {"x.flag", "true"},     {"x.list", "2,0"},
                                                  {"x.counts", "3,0,12"}, {"x.none", ""}};

}  // namespace

TEST_SUITE("optim.optimizer_state") {
  TEST_CASE("typed entries read back what was written; malformed ones name the entry") {
    const MetadataReader read(metadata, "Test.load");
    CHECK(read.real("x.rate") == 0.25);
    CHECK(read.count("x.count") == 7);
    CHECK(read.boolean("x.flag"));
    CHECK(read.index_set("x.list", 3) == std::vector<bool>{true, false, true});
    CHECK(read.index_set("x.none", 3) == std::vector<bool>{false, false, false});
    CHECK(read.count_list("x.counts", 3) == std::vector<std::int64_t>{3, 0, 12});
    CHECK(read.count_list("x.none", 0).empty());
    CHECK(soda::optim::detail::index_list({true, false, true}) == "0,2");
    CHECK(soda::optim::detail::count_list_text({3, 0, 12}) == "3,0,12");

    CHECK_THROWS_WITH_AS(read.real("x.missing"), "Test.load: metadata entry 'x.missing' is missing",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(read.count("x.rate"),
                         "Test.load: metadata entry 'x.rate' is '0.25', not a non-negative integer",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(read.boolean("x.count"),
                         "Test.load: metadata entry 'x.count' is '7', not true or false",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(read.index_set("x.list", 2),
                         "Test.load: metadata entry 'x.list' is '2,0', not a list of distinct "
                         "parameter indices",
                         soda::ValueError);
    CHECK_THROWS_AS(read.count_list("x.counts", 2), soda::ValueError);
    CHECK_THROWS_AS(read.check_parameter_count("x.count", 6), soda::ValueError);
    for (const std::string bad : {"1,,2", "1,2,", ",1,2", "1,-2,3", "1,2,x"}) {
      CAPTURE(bad);
      const std::map<std::string, std::string> m{{"k", bad}};
      CHECK_THROWS_WITH_AS(
          MetadataReader(m, "T").count_list("k", 3),
          ("T: metadata entry 'k' is '" + bad + "', not 3 comma-separated non-negative integers")
              .c_str(),
          soda::ValueError);
    }
  }

  TEST_CASE("read_buffers takes exactly the listed parameters' buffers of each kind") {
    const std::vector<soda::Tensor<double>> params{soda::zeros<double>({2}),
                                                   soda::zeros<double>({3})};
    const std::vector<bool> listed{false, true};
    const soda::nn::NamedTensors<double> tensors{{"m.1", soda::ones<double>({3})},
                                                 {"v.1", soda::full<double>({3}, 2.0)}};
    const auto buffers =
        soda::optim::detail::read_buffers(tensors, {"m", "v"}, params, listed, "x.list", "T");
    CHECK_FALSE(buffers[0][0].defined());
    CHECK(buffers[1][1].data()[2] == 2.0);
    // A copy, not the caller's tensor.
    CHECK(buffers[0][1].impl() != tensors[0].second.impl());

    const auto refuses = [&](const soda::nn::NamedTensors<double>& t) {
      soda::optim::detail::read_buffers(t, {"m", "v"}, params, listed, "x.list", "T");
    };
    CHECK_THROWS_WITH_AS(refuses({tensors[0]}), "T: entry 'v.1' is missing", soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses({tensors[0], tensors[1], {"m.0", params[0]}}),
                         "T: entry 'm.0' is not in the metadata's x.list list", soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses({{"w.1", params[1]}}),
                         "T: unexpected entry 'w.1' (expected m.<index> or v.<index> for 2 "
                         "parameters)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses({{"m.1", params[0]}, tensors[1]}),
                         "T: m.1 has shape [2] but parameter 1 has shape [3]", soda::ShapeError);
  }
}
