// soda/quant/integer_layer.hpp: a layer's geometry is bounded, so that the products the integer
// kernels form (out·kh·kw·in weights, padded sizes) cannot overflow; absurd values are refused by
// IntegerLayer::check and quantize_layer with a message naming the layer and the field.
#include <doctest/doctest.h>

#include <soda/quant/integer_layer.hpp>

#include <cstdint>
#include <string>

using namespace soda::quant;

namespace {

constexpr std::int64_t integer_layer_test_huge = std::int64_t{1} << 40;

// The message of the ValueError `call` throws; fails the test when it throws another or none.
template <class Call>
std::string integer_layer_value_error(Call&& call) {
  try {
    call();
  } catch (const soda::ValueError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected a ValueError, got: " << std::string(e.what()));
    return "";
  }
  FAIL_CHECK("expected a ValueError, none was thrown");
  return "";
}

bool integer_layer_mentions(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  MESSAGE("\"" << text << "\" does not mention \"" << part << "\"");
  return false;
}

// A 3×3 layer 4 ← 2 with one field set by `change`.
template <class Change>
IntegerLayer integer_layer_with(Change&& change) {
  IntegerLayer layer;
  layer.name = "layer1.0.conv1";
  layer.out_channels = 4;
  layer.in_channels = 2;
  layer.kernel_h = layer.kernel_w = 3;
  change(layer);
  return layer;
}

}  // namespace

TEST_CASE("integer_layer: channels, kernel, stride or padding past their bounds are refused") {
  struct Case {
    const char* field;
    void (*change)(IntegerLayer&);
  };
  const Case cases[] = {
      {"out_channels", [](IntegerLayer& l) { l.out_channels = integer_layer_test_huge; }},
      {"in_channels", [](IntegerLayer& l) { l.in_channels = integer_layer_test_huge; }},
      {"kernel_h", [](IntegerLayer& l) { l.kernel_h = integer_layer_test_huge; }},
      {"kernel_w", [](IntegerLayer& l) { l.kernel_w = integer_layer_test_huge; }},
      {"stride", [](IntegerLayer& l) { l.stride = integer_layer_test_huge; }},
      {"padding", [](IntegerLayer& l) { l.padding = INT64_MAX / 2; }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.field);
    const IntegerLayer layer = integer_layer_with(c.change);
    const auto message = integer_layer_value_error([&] { layer.check("IntegerResNet"); });
    CHECK(integer_layer_mentions(message, "layer 'layer1.0.conv1'"));
    CHECK(integer_layer_mentions(message, c.field));
    CHECK(integer_layer_mentions(message, "too large"));
  }
}

TEST_CASE("integer_layer: a weight count past the bound is refused though each field is within") {
  // 2^20 × 1×1×2^20 = 2^40 weights (8 TB at 8 bits): every factor is allowed, the product not.
  const IntegerLayer layer = integer_layer_with([](IntegerLayer& l) {
    l.out_channels = l.in_channels = max_layer_channels;
    l.kernel_h = l.kernel_w = 1;
  });
  const auto message = integer_layer_value_error([&] { layer.check("IntegerResNet"); });
  CHECK(integer_layer_mentions(message, "1048576 × 1×1×1048576 weights are too many"));

  QuantizedLayerPlan plan;
  plan.name = "fc";
  plan.out_channels = plan.in_channels = max_layer_channels;
  const auto plan_message = integer_layer_value_error([&] { quantize_layer(plan, "compile"); });
  CHECK(integer_layer_mentions(plan_message, "compile: layer 'fc'"));
  CHECK(integer_layer_mentions(plan_message, "too many"));

  // At the bound itself the geometry passes (and the check goes on to the missing weights).
  const IntegerLayer largest = integer_layer_with([](IntegerLayer& l) {
    l.out_channels = max_layer_channels;
    l.in_channels = max_layer_weights / max_layer_channels;
    l.kernel_h = l.kernel_w = 1;
  });
  CHECK_THROWS_AS(largest.check("IntegerResNet"), soda::ShapeError);
}

TEST_CASE("integer_layer: an image side past the bound is refused") {
  CHECK_NOTHROW(detail::check_image_size("net", max_image_side, 1));
  const auto message = integer_layer_value_error(
      [] { detail::check_image_size("net", 32, integer_layer_test_huge); });
  CHECK(integer_layer_mentions(message, "image width 1099511627776 is too large"));
  CHECK_THROWS_AS(detail::check_image_size("net", 0, 32), soda::ValueError);
}
