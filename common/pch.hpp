#pragma once
// Precompiled once per target: Asio, Beast and nlohmann::json are most of
// every translation unit's compile time (bench/build.sh prints the figure).
// Files still include what they use; this only makes it cheap.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
// clang-format on
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
