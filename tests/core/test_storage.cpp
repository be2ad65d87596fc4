// soda/core/storage.hpp: memory the system refuses is a soda::Error naming the tensor, and the
// cache limit's environment setting is checked.
#include "oracle.hpp"

#include <cstdint>
#include <string>

namespace {

// ASan's allocator reports an oversized request and aborts (unless allocator_may_return_null=1),
// so the refused-allocation case runs in the optimized builds only.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool storage_test_under_address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool storage_test_under_address_sanitizer = true;
#else
constexpr bool storage_test_under_address_sanitizer = false;
#endif
#else
constexpr bool storage_test_under_address_sanitizer = false;
#endif

bool storage_test_mentions(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  MESSAGE("\"" << text << "\" does not mention \"" << part << "\"");
  return false;
}

}  // namespace

TEST_SUITE("core/storage") {
  TEST_CASE("memory the system refuses is an AllocationError naming the shape and the bytes" *
            doctest::skip(storage_test_under_address_sanitizer)) {
    // 2^60 bytes: a size int64 counts, but more than any x86-64 or AArch64 address space.
    const std::int64_t count = std::int64_t{1} << 58;
    try {
      soda::Tensor<float>::empty({count});
      FAIL("expected AllocationError");
    } catch (const soda::AllocationError& e) {
      const std::string message = e.what();
      CHECK(storage_test_mentions(message, "[288230376151711744]"));
      CHECK(storage_test_mentions(message, "float32"));
      CHECK(storage_test_mentions(message, "1152921504606846976 bytes"));
    }
    // A soda::Error like every other, so that one catch at main reports it.
    CHECK_THROWS_AS(soda::zeros<double>({count / 2}), soda::Error);
    // The pool is still usable afterwards.
    CHECK(soda::full<float>({3}, 2.0f).at({2}) == 2.0f);
  }

  TEST_CASE("SODA_STORAGE_CACHE_MB is a whole number of megabytes, or unset for 2 GiB") {
    CHECK(soda::detail::storage_cache_limit(nullptr) == std::size_t{2} << 30);
    CHECK(soda::detail::storage_cache_limit("0") == 0);
    CHECK(soda::detail::storage_cache_limit("512") == std::size_t{512} << 20);
    for (const char* bad : {"", "-1", "1.5", "lots", "1e3", "99999999999999999999"}) {
      CAPTURE(bad);
      try {
        soda::detail::storage_cache_limit(bad);
        FAIL("expected ValueError");
      } catch (const soda::ValueError& e) {
        CHECK(storage_test_mentions(e.what(), "SODA_STORAGE_CACHE_MB"));
        CHECK(storage_test_mentions(e.what(), std::string("'") + bad + "'"));
      }
    }
  }
}  // TEST_SUITE
