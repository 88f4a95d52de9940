#include "parameters/parameter_watch.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "api/status_report.hpp"
#include "bootstrap/pg_files.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "parameters/hba_rules.hpp"

namespace im::parameters {

namespace {
constexpr auto kInterval = std::chrono::seconds(2);
constexpr size_t kMaxFile = 1 << 20;

std::string digest(const std::string& text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1) return "?";
    std::string out;
    char hex[3];
    for (unsigned i = 0; i < 6 && i < len; ++i) {
        std::snprintf(hex, sizeof hex, "%02x", md[i]);
        out += hex;
    }
    return out;
}

// A flag's file, or "" without the flag.
Result<std::string> read_source(const std::string& path, const char* flag) {
    if (path.empty()) return std::string();
    auto text = fs::read_file(path, kMaxFile);
    if (!text) return make_error(std::string(flag) + ": " + text.error().message);
    return *text;
}

// postgres's complaint: its FATAL/ERROR/DETAIL/HINT lines without the prefix.
std::string server_message(const std::string& output) {
    std::string out;
    size_t pos = 0;
    while (pos < output.size()) {
        size_t end = output.find('\n', pos);
        if (end == std::string::npos) end = output.size();
        std::string line = output.substr(pos, end - pos);
        pos = end + 1;
        for (const char* tag : {"FATAL:", "ERROR:", "DETAIL:", "HINT:"}) {
            auto at = line.find(tag);
            if (at == std::string::npos) continue;
            std::string text = line.substr(at + std::string(tag).size());
            while (!text.empty() && text.front() == ' ') text.erase(0, 1);
            if (!out.empty()) out += " ";
            out += text;
            break;
        }
    }
    return out.empty() ? output : out;
}

std::set<std::string> changed_names(const std::vector<Parameter>& a,
                                    const std::vector<Parameter>& b) {
    std::map<std::string, std::string> old;
    for (const auto& p : a) old[p.name] = p.value;
    std::set<std::string> out;
    for (const auto& p : b) {
        auto it = old.find(p.name);
        if (it == old.end() || it->second != p.value) out.insert(p.name);
        if (it != old.end()) old.erase(it);
    }
    for (const auto& [name, value] : old) out.insert(name);
    return out;
}
}  // namespace

std::string version_of(const std::string& conf, const std::string& rules) {
    return digest(conf + '\0' + rules);
}

ParameterWatch::ParameterWatch(asio::any_io_executor ex, const Config& cfg, Reaper& reaper)
    : ex_(ex), cfg_(cfg), reaper_(reaper), wake_(std::make_shared<Event>(ex)) {}

nlohmann::json ParameterWatch::view() const {
    if (!enabled()) return nullptr;
    nlohmann::json params = nlohmann::json::object();
    for (const auto& p : applied_) params[p.name] = p.value;
    auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
    return {{"version", version_},
            {"applied_at", or_null(applied_at_)},
            {"parameters", params},
            {"error", or_null(error_)},
            {"rejected_version", or_null(rejected_version_)}};
}

void ParameterWatch::reject(const std::string& version, const std::string& why) {
    if (error_ != why || rejected_version_ != version)
        log::warn("parameters", "refused: the last good version stays in force",
                  {{"version", version}, {"in_force", version_}, {"error", why}});
    error_ = why;
    rejected_version_ = version;
}

awaitable<Status> ParameterWatch::server_check(const std::vector<Parameter>& params) {
    // `postgres -C` reads the configuration as a start would (the -c values
    // last) and fails on an unknown name, a bad value or a bad unit; it does
    // not touch a running server.
    SpawnOptions opts;
    opts.argv = {cfg_.pg_bin + "/postgres", "-D", cfg_.pgdata, "-C", "port"};
    for (auto& a : check_arguments(params)) opts.argv.push_back(std::move(a));
    opts.env = {"PGDATA=" + cfg_.pgdata};
    opts.deadline = std::chrono::seconds(30);
    auto r = co_await run_command(reaper_, opts, "parameters");
    if (!r) co_return r.error();
    if (!r->success()) co_return make_error(server_message(r->output));
    co_return Ok{};
}

awaitable<void> ParameterWatch::apply_at_start(WatchHost& host) {
    const std::string conf_path = fs::join(cfg_.pgdata, kParametersConfName);
    const std::string rules_path = fs::join(cfg_.pgdata, kAppliedHbaName);
    if (!enabled()) {
        // The flags went away: nothing of the cluster's parameters stays.
        std::error_code ec;
        std::filesystem::remove(conf_path, ec);
        std::filesystem::remove(rules_path, ec);
        co_return;
    }
    if (auto t = fs::read_file(conf_path, kMaxFile); t) applied_conf_ = *t;
    if (auto t = fs::read_file(rules_path, kMaxFile); t) applied_rules_ = *t;
    if (auto parsed = parse_parameters(applied_conf_); parsed) applied_ = *parsed;
    for (const auto& a : applied_) ever_applied_.insert(a.name);
    version_ = version_of(applied_conf_, applied_rules_);
    if (auto st = host.write_hba(applied_rules_); !st)
        log::warn("parameters", "cannot write pg_hba.conf", {{"error", st.error().message}});
    co_await check(host, true);
}

awaitable<void> ParameterWatch::run(WatchHost& host) {
    if (!enabled()) co_return;
    while (!stopped_) {
        co_await wake_->wait(kInterval);
        wake_->reset();
        if (stopped_) break;
        co_await check(host, false);
    }
}

awaitable<void> ParameterWatch::check(WatchHost& host, bool at_start) {
    auto conf_src = read_source(cfg_.pg_parameters_file, "--pg-parameters-file");
    auto rules_src = read_source(cfg_.pg_hba_file, "--pg-hba-file");
    if (!conf_src || !rules_src) {
        // Unreadable for a moment (a ConfigMap being swapped): said, nothing changed.
        reject("", !conf_src ? conf_src.error().message : rules_src.error().message);
        seen_.clear();
        co_return;
    }
    std::string seen = *conf_src + '\0' + *rules_src;
    if (!at_start && seen == seen_) co_return;
    seen_ = seen;
    auto params = parse_parameters(*conf_src);
    auto rules = parse_hba_rules(*rules_src);
    const std::string source_version = digest(seen);
    if (!params) {
        reject(source_version, "--pg-parameters-file: " + params.error().message);
        co_return;
    }
    if (!rules) {
        reject(source_version, "--pg-hba-file: " + rules.error().message);
        co_return;
    }
    const std::string conf = render_parameters(*params);
    const std::string rule_text = render_hba_rules(*rules);
    if (conf == applied_conf_ && rule_text == applied_rules_) {
        // The version in force (again): nothing to do, nothing refused.
        error_.clear();
        rejected_version_.clear();
        co_return;
    }
    if (auto st = co_await server_check(*params); !st) {
        reject(source_version, "--pg-parameters-file: " + st.error().message);
        co_return;
    }
    const std::string conf_path = fs::join(cfg_.pgdata, kParametersConfName);
    const std::string rules_path = fs::join(cfg_.pgdata, kAppliedHbaName);
    if (rule_text != applied_rules_) {
        if (auto st = host.write_hba(rule_text); !st) {
            reject(source_version, "cannot write pg_hba.conf: " + st.error().message);
            co_return;
        }
        if (host.postgres_running()) {
            auto errors = co_await host.hba_errors();
            std::string why = !errors ? "cannot check pg_hba.conf: " + errors.error().message
                                      : *errors;
            if (!why.empty()) {
                // Back to the rules in force before any reload could read these.
                (void)host.write_hba(applied_rules_);
                reject(source_version, "--pg-hba-file: the server refuses it: " + why);
                co_return;
            }
        }
    }
    auto st = fs::write_file_atomic(conf_path, conf, 0600);
    if (st) st = fs::write_file_atomic(rules_path, rule_text, 0600);
    if (!st) {
        (void)host.write_hba(applied_rules_);
        (void)fs::write_file_atomic(conf_path, applied_conf_, 0600);
        reject(source_version, "cannot write the applied version: " + st.error().message);
        co_return;
    }
    auto names = changed_names(applied_, *params);
    applied_ = *params;
    for (const auto& a : applied_) ever_applied_.insert(a.name);
    applied_conf_ = conf;
    applied_rules_ = rule_text;
    version_ = version_of(conf, rule_text);
    applied_at_ = iso8601(std::chrono::system_clock::now());
    error_.clear();
    rejected_version_.clear();
    nlohmann::json changed = names;
    log::info("parameters", "applied", {{"version", version_}, {"changed", changed}});
    if (!at_start && host.postgres_running())
        if (auto r = co_await host.reload(); !r)
            log::warn("parameters", "reload failed", {{"error", r.error().message}});
    applied_steady_ = std::chrono::steady_clock::now();
}

}  // namespace im::parameters
