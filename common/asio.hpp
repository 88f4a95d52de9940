#pragma once
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>;
// every file that needs Asio includes this header instead of Boost directly.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

namespace im {
namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
}  // namespace im
