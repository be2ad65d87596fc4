// Whether ops record themselves on the reverse-mode tape. NoGradGuard turns recording off for a
// scope (evaluation, optimizer updates); forward-mode tangents are unaffected by it.
#pragma once

namespace soda {

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

inline bool grad_enabled() {
  return detail::grad_mode_flag();
}

class NoGradGuard {
 public:
  NoGradGuard() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
  ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace soda
