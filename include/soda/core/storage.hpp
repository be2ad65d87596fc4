// Reference-counted, 64-byte aligned element buffers shared by a tensor and its views.
// Large buffers are recycled through a size-keyed cache: fresh large allocations come from mmap
// and fault on first touch, which would cost more than the kernels that fill them.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "soda/core/error.hpp"

namespace soda {

namespace detail {

inline constexpr std::size_t storage_alignment = 64;
// Below this a buffer goes straight to the C allocator, which is fast for small blocks.
inline constexpr std::size_t pooled_minimum_bytes = std::size_t{1} << 16;

// The cache limit in bytes for the setting of SODA_STORAGE_CACHE_MB (null when unset: 2 GiB).
inline std::size_t storage_cache_limit(const char* setting) {
  if (setting == nullptr) return std::size_t{2} << 30;
  const std::string text = setting;
  const bool whole_number = !text.empty() && text.size() <= 9 &&
                            text.find_first_not_of("0123456789") == std::string::npos;
  if (!whole_number) {
    throw ValueError("SODA_STORAGE_CACHE_MB is '" + text +
                     "'; set it to a whole number of megabytes below 10^9 (0 turns the cache off)");
  }
  return static_cast<std::size_t>(std::stoull(text)) << 20;
}

class StoragePool {
 public:
  // Never destroyed: tensors held in static objects may be freed after static destruction.
  static StoragePool& instance() {
    static StoragePool* pool = new StoragePool();
    return *pool;
  }

  void* acquire(std::size_t bytes) {
    if (bytes >= pooled_minimum_bytes && limit_ > 0) {
      const std::lock_guard lock(mutex_);
      auto found = free_.find(bytes);
      if (found != free_.end() && !found->second.empty()) {
        void* p = found->second.back();
        found->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(storage_alignment, bytes);
    if (p == nullptr) {
      clear();
      p = std::aligned_alloc(storage_alignment, bytes);
      if (p == nullptr) {
        throw AllocationError("cannot allocate " + std::to_string(bytes) +
                              " bytes: the system is out of memory (or a memory limit is set)");
      }
    }
    return p;
  }

  void release(void* p, std::size_t bytes) noexcept {
    if (bytes >= pooled_minimum_bytes && limit_ > 0) {
      const std::lock_guard lock(mutex_);
      if (cached_ + bytes <= limit_) {
        try {
          free_[bytes].push_back(p);
          cached_ += bytes;
          return;
        } catch (...) {
          // Out of memory for the bookkeeping: fall through and free the block.
        }
      }
    }
    std::free(p);
  }

  // Returns every cached block to the system.
  void clear() noexcept {
    const std::lock_guard lock(mutex_);
    for (auto& [bytes, blocks] : free_) {
      for (void* p : blocks) std::free(p);
    }
    free_.clear();
    cached_ = 0;
  }

  std::size_t cached_bytes() {
    const std::lock_guard lock(mutex_);
    return cached_;
  }

  // Upper bound on cached bytes (0 turns caching off). Default 2 GiB, or the environment's
  // SODA_STORAGE_CACHE_MB (0 under sanitizers, so that use-after-free is not masked).
  void set_limit(std::size_t bytes) {
    limit_ = bytes;
    if (bytes == 0) clear();
  }

 private:
  StoragePool() : limit_(storage_cache_limit(std::getenv("SODA_STORAGE_CACHE_MB"))) {}

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_ = 0;
  std::size_t limit_;
};

struct PooledFree {
  std::size_t bytes;
  void operator()(void* p) const noexcept { StoragePool::instance().release(p, bytes); }
};

template <class T>
std::shared_ptr<T[]> allocate_storage(std::size_t count) {
  // Rounding up to the alignment below must not wrap either.
  constexpr std::size_t most =
      (std::numeric_limits<std::size_t>::max() - storage_alignment) / sizeof(T);
  if (count > most) {
    throw AllocationError("cannot allocate " + std::to_string(count) + " elements of " +
                          std::to_string(sizeof(T)) + " bytes: the size overflows");
  }
  const std::size_t bytes = std::max<std::size_t>(count * sizeof(T), 1);
  const std::size_t rounded =
      (bytes + storage_alignment - 1) / storage_alignment * storage_alignment;
  return std::shared_ptr<T[]>(static_cast<T*>(StoragePool::instance().acquire(rounded)),
                              PooledFree{rounded});
}

template <class T>
std::shared_ptr<T[]> allocate_zeroed_storage(std::size_t count) {
  auto s = allocate_storage<T>(count);
  std::memset(s.get(), 0, count * sizeof(T));
  return s;
}

}  // namespace detail

// Frees the buffers soda keeps for reuse (for example before a memory-hungry phase).
inline void release_cached_memory() {
  detail::StoragePool::instance().clear();
}

}  // namespace soda
