#include "resolve.hpp"

#include <algorithm>
#include <map>
#include <memory>

#include "event.hpp"

namespace im {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        auto comma = s.find(',', start);
        out.push_back(s.substr(start, comma - start));
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

std::string join_commas(const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + parts[i];
    return out;
}

bool needs_lookup(const std::string& host) {
    if (host.empty() || host.front() == '/' || host.front() == '@') return false;
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return bool(ec);
}

}  // namespace

awaitable<Result<std::vector<asio::ip::address>>> resolve_host(
    std::string host, std::chrono::steady_clock::time_point deadline) {
    boost::system::error_code literal_ec;
    auto literal = asio::ip::make_address(host, literal_ec);
    if (!literal_ec) co_return std::vector<asio::ip::address>{literal};
    auto ex = co_await asio::this_coro::executor;
    // Shared with the lookup's handler: a lookup that outlives this wait
    // (the deadline passed) still finds it alive.
    struct Lookup {
        explicit Lookup(const asio::any_io_executor& e) : resolver(e), done(e) {}
        asio::ip::tcp::resolver resolver;
        Event done;
        boost::system::error_code ec;
        std::vector<asio::ip::address> addresses;
    };
    auto lookup = std::make_shared<Lookup>(ex);
    // No AI_ADDRCONFIG (Asio's default): with only a loopback interface
    // (a network namespace) it would hide every address, as libpq does not.
    lookup->resolver.async_resolve(
        host, "0", asio::ip::tcp::resolver::numeric_service,
        [lookup](boost::system::error_code ec, asio::ip::tcp::resolver::results_type results) {
            lookup->ec = ec;
            for (const auto& entry : results) {
                auto a = entry.endpoint().address();
                if (std::find(lookup->addresses.begin(), lookup->addresses.end(), a) ==
                    lookup->addresses.end())
                    lookup->addresses.push_back(a);
            }
            lookup->done.set();
        });
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!co_await lookup->done.wait(std::max(left, std::chrono::milliseconds(0)))) {
        lookup->resolver.cancel();
        co_return make_error("timed out resolving host name \"" + host + "\"");
    }
    if (lookup->ec)
        co_return make_error("could not resolve host name \"" + host +
                             "\": " + lookup->ec.message());
    if (lookup->addresses.empty())
        co_return make_error("host name \"" + host + "\" has no address");
    co_return std::move(lookup->addresses);
}

std::vector<std::string> host_names_to_resolve(const ConninfoMap& conninfo) {
    std::vector<std::string> out;
    if (conninfo.count("hostaddr")) return out;
    auto host = conninfo.find("host");
    if (host == conninfo.end()) return out;
    for (auto& h : split_commas(host->second))
        if (needs_lookup(h) && std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
    return out;
}

Result<ConninfoMap> with_host_addresses(
    ConninfoMap conninfo, const std::map<std::string, std::vector<std::string>>& addresses) {
    auto host = conninfo.find("host");
    if (host == conninfo.end() || conninfo.count("hostaddr")) return conninfo;
    auto hosts = split_commas(host->second);
    std::vector<std::string> ports;
    if (auto port = conninfo.find("port"); port != conninfo.end())
        ports = split_commas(port->second);
    // libpq's rule: one port for all hosts, or one per host. Anything else is
    // libpq's error to report, on the conninfo as it was given.
    bool per_host_ports = ports.size() == hosts.size() && ports.size() > 1;
    if (!ports.empty() && ports.size() != 1 && !per_host_ports) return conninfo;
    std::vector<std::string> out_hosts, out_addrs, out_ports;
    for (size_t i = 0; i < hosts.size(); ++i) {
        const std::string& h = hosts[i];
        auto port = per_host_ports ? ports[i] : std::string();
        if (!needs_lookup(h)) {
            // An empty hostaddr entry: libpq uses the host entry as it is.
            out_hosts.push_back(h);
            out_addrs.emplace_back();
            out_ports.push_back(port);
            continue;
        }
        auto found = addresses.find(h);
        if (found == addresses.end()) continue;
        for (const auto& a : found->second) {
            out_hosts.push_back(h);
            out_addrs.push_back(a);
            out_ports.push_back(port);
        }
    }
    if (out_hosts.empty()) return make_error("no host name in the connection string resolved");
    conninfo["host"] = join_commas(out_hosts);
    conninfo["hostaddr"] = join_commas(out_addrs);
    if (per_host_ports) conninfo["port"] = join_commas(out_ports);
    return conninfo;
}

awaitable<Result<std::string>> resolve_conninfo(std::string conninfo,
                                                std::chrono::steady_clock::time_point deadline) {
    auto parsed = parse_conninfo(conninfo);
    if (!parsed) co_return conninfo;
    auto names = host_names_to_resolve(*parsed);
    if (names.empty()) co_return conninfo;
    std::map<std::string, std::vector<std::string>> addresses;
    std::string last_error;
    for (const auto& name : names) {
        auto r = co_await resolve_host(name, deadline);
        if (!r) {
            last_error = r.error().message;
            continue;
        }
        for (const auto& a : *r) addresses[name].push_back(a.to_string());
    }
    auto rewritten = with_host_addresses(std::move(*parsed), addresses);
    if (!rewritten)
        co_return make_error(last_error.empty() ? rewritten.error().message : last_error);
    co_return build_conninfo(*rewritten);
}

}  // namespace im
