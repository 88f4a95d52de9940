#pragma once
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>;
// every file that needs Asio includes this header instead of Boost directly.
#include <utility>

#include <boost/asio.hpp>

namespace im {
namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
}  // namespace im
