#pragma once
// A one-shot event that coroutines can wait for, with a timeout. Each wait
// uses its own timer, which set() cancels (Boost 1.74 has no channels).
#include <algorithm>
#include <chrono>
#include <vector>

#include "asio.hpp"

namespace im {

class Event {
  public:
    explicit Event(asio::any_io_executor ex) : ex_(std::move(ex)) {}
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void set() {
        set_ = true;
        for (auto* t : waiters_) t->cancel();
    }
    void reset() { set_ = false; }
    bool is_set() const { return set_; }

    // Waits until set() or until `timeout` passes; returns whether it was set.
    awaitable<bool> wait(std::chrono::milliseconds timeout = std::chrono::hours(24 * 365)) {
        if (set_) co_return true;
        asio::steady_timer t(ex_, timeout);
        waiters_.push_back(&t);
        boost::system::error_code ec;
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), &t), waiters_.end());
        co_return set_;
    }

  private:
    asio::any_io_executor ex_;
    std::vector<asio::steady_timer*> waiters_;
    bool set_ = false;
};

}  // namespace im
