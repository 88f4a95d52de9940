#include "controller/controller_config.hpp"

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "bootstrap/replication_config.hpp"
#include "fs_util.hpp"
#include "log.hpp"

namespace im {

namespace {

// "NAME=VALUE" pairs from repeated options.
Result<std::vector<std::pair<std::string, std::string>>> split_pairs(
    const std::string& flag, const std::vector<std::string>& items) {
    std::vector<std::pair<std::string, std::string>> out;
    std::set<std::string> seen;
    for (const auto& item : items) {
        auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
            return make_error(flag + ": expected NAME=VALUE, got '" + item + "'");
        std::string name = item.substr(0, eq);
        if (!seen.insert(name).second) return make_error(flag + ": " + name + " given twice");
        out.emplace_back(name, item.substr(eq + 1));
    }
    return out;
}

Status check_members(const std::vector<std::pair<std::string, std::string>>& members) {
    std::vector<std::string> names;
    for (const auto& [name, url] : members) names.push_back(name);
    if (auto clash = slot_name_collision(names)) return make_error("--member: " + *clash);
    for (const auto& [name, url] : members) {
        if (name.find_first_of("\"' ") != std::string::npos)
            return make_error("--member: names may not hold quotes or spaces: " + name);
        if (auto u = http_client::parse_url(url); !u)
            return make_error("--member " + name + ": " + u.error().message);
    }
    return Ok{};
}

// The Kubernetes mode's settings: the in-cluster defaults filled in and
// checked, so a bad pod spec fails at start, not at the first API call.
Status finish_kube_settings(KubeSettings& k, bool have_members) {
    const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount/";
    if (have_members) return make_error("--kubernetes and --member exclude each other");
    if (k.selector.empty() || k.selector.find('=') == std::string::npos)
        return make_error("--selector: a label selector like app=demo is required");
    if (k.member_port <= 0 || k.member_port > 65535)
        return make_error("--member-port: a port number");
    if (k.member_scheme != "http" && k.member_scheme != "https")
        return make_error("--member-scheme: http or https");
    if (k.member_domain.find_first_of("/:@ ") != std::string::npos)
        return make_error("--member-domain: a DNS name like demo-headless");
    if (k.api_url.empty()) {
        const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
        const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host)
            return make_error(
                "--kubernetes: KUBERNETES_SERVICE_HOST is not set (not in a pod?); give "
                "--kube-api-url");
        std::string h = host;
        if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
        k.api_url = "https://" + h + ":" + (port && *port ? port : "443");
    }
    if (auto u = http_client::parse_url(k.api_url); !u || !u->tls)
        return make_error("--kube-api-url: an https URL is required");
    if (k.token_file.empty()) k.token_file = sa + "token";
    if (k.ca_file.empty()) k.ca_file = sa + "ca.crt";
    if (!fs::read_secret(k.token_file))
        return make_error("--kube-token-file: cannot read " + k.token_file);
    if (!fs::exists(k.ca_file)) return make_error("--kube-ca-file: cannot read " + k.ca_file);
    if (k.ns.empty()) {
        auto ns = fs::read_secret(sa + "namespace");
        if (!ns) return make_error("--namespace: not given and not in " + sa + "namespace");
        k.ns = *ns;
    }
    return Ok{};
}

// "async", "any N", "first N" (any case; "any:N" too): (method, N), N 0 for async.
Result<std::pair<std::string, unsigned>> parse_durability_mode(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : text)
        if (c == ':') c = ' ';
    if (text == "async" || text == "asynchronous")
        return std::pair<std::string, unsigned>{"any", 0};
    std::istringstream in(text);
    std::string method, extra;
    long n = 0;
    if ((in >> method >> n) && !(in >> extra) && (method == "any" || method == "first") && n >= 1 &&
        n <= 100)
        return std::pair<std::string, unsigned>{method, static_cast<unsigned>(n)};
    return make_error("--durability: async, 'any N' or 'first N' (N from 1), not '" + text + "'");
}

template <class Fn>
Result<bool> parse_with(CLI::App& app, const std::vector<std::string>& args, ParseOutcome* outcome,
                        Fn&& after) {
    if (auto st = parse_cli(app, args, outcome); !st) return st.error();
    if (auto st = after(); !st) return st.error();
    if (outcome) *outcome = {false, 0};
    return true;
}

}  // namespace

Result<ControllerConfig> parse_controller_args(const std::vector<std::string>& args,
                                               ParseOutcome* outcome) {
    ControllerConfig cfg;
    CLI::App app{"instance-manager controller: keeps one primary, fails over, switches over",
                 "instance-manager controller"};
    std::vector<std::string> members, priorities, membership;
    std::string listen = "127.0.0.1:8010", interval = "250ms", timeout = "500ms", delay = "1s",
                takeover = "8s";
    app.add_option("--member", members, "NAME=URL of a member's manager API (repeat)")
        ->envname("IM_MEMBERS")
        ->delimiter(',');
    app.add_option("--api-token-file", cfg.api_token_file, "the members' API token")
        ->envname("IM_API_TOKEN_FILE");
    app.add_option("--listen", listen, "the controller's own API, HOST:PORT")
        ->envname("IM_CONTROLLER_LISTEN");
    app.add_option("--interval", interval, "poll interval")->envname("IM_POLL_INTERVAL");
    app.add_option("--request-timeout", timeout, "timeout of a poll or a promise request");
    app.add_option("--failover-delay", delay,
                   "how long no writable primary is seen before a promotion round")
        ->envname("IM_FAILOVER_DELAY");
    app.add_option("--takeover-delay", takeover,
                   "a standing-by controller takes over after this long without a primary")
        ->envname("IM_TAKEOVER_DELAY");
    app.add_option("--membership", membership,
                   "NAME,... the members whose grants count (Kubernetes: the StatefulSet's pods "
                   "by name; default: the --member names)")
        ->envname("IM_MEMBERSHIP")
        ->delimiter(',');
    std::string durability = "async", data_durability = "required";
    unsigned first_n = 0;
    app.add_option("--durability", durability,
                   "async, 'any N' or 'first N': commits wait for N of the other members")
        ->envname("IM_DURABILITY");
    std::string schedule;
    app.add_option("--backup-schedule", schedule,
                   "backups of the primary: 'full=7d,diff=1d,incr=1h' (full required; a type is "
                   "due when the repository's newest backup of it is older)")
        ->envname("IM_BACKUP_SCHEDULE");
    app.add_option("--data-durability", data_durability,
                   "required (commits wait for the standbys) or preferred (fewer standbys, down "
                   "to asynchronous, while they are not streaming)")
        ->envname("IM_DATA_DURABILITY");
    app.add_option("--synchronous", first_n, "the same as --durability 'first N'")
        ->envname("IM_SYNCHRONOUS");
    app.add_option("--priority", priorities, "NAME=N failover priority, higher first; < 0 never");
    app.add_option("--ca-file", cfg.tls.ca_file, "https members: verify against this CA");
    app.add_option("--cert", cfg.tls.cert_file, "https members: client certificate (mTLS)");
    app.add_option("--key", cfg.tls.key_file, "https members: client key");
    app.add_option("--log-level", cfg.log_level)->envname("IM_LOG_LEVEL");
    auto& k = cfg.kube;
    app.add_flag("--kubernetes", k.enabled,
                 "members are the pods matching --selector (in-cluster credentials)")
        ->envname("IM_KUBERNETES");
    app.add_option("--selector", k.selector, "label selector of the cluster's pods, e.g. app=demo")
        ->envname("IM_SELECTOR");
    app.add_option("--namespace", k.ns, "the pods' namespace (default: the service account's)")
        ->envname("IM_NAMESPACE");
    app.add_option("--member-port", k.member_port, "the managers' API port on each pod")
        ->envname("IM_MEMBER_PORT");
    app.add_option("--member-scheme", k.member_scheme, "http | https")->envname("IM_MEMBER_SCHEME");
    app.add_option("--member-domain", k.member_domain,
                   "address members as POD.DOMAIN (a headless Service) instead of by pod IP")
        ->envname("IM_MEMBER_DOMAIN");
    app.add_option("--kube-api-url", k.api_url,
                   "default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT")
        ->envname("IM_KUBE_API_URL");
    app.add_option("--kube-token-file", k.token_file, "service-account token")
        ->envname("IM_KUBE_TOKEN_FILE");
    app.add_option("--kube-ca-file", k.ca_file, "CA of the API server")->envname("IM_KUBE_CA_FILE");

    auto done = parse_with(app, args, outcome, [&]() -> Status {
        auto m = split_pairs("--member", members);
        if (!m) return m.error();
        cfg.members = *m;
        if (k.enabled) {
            if (auto st = finish_kube_settings(k, !cfg.members.empty()); !st) return st;
        } else if (cfg.members.empty()) {
            return make_error("--member: at least one member is needed (or --kubernetes)");
        }
        if (auto st = check_members(cfg.members); !st) return st;
        auto p = split_pairs("--priority", priorities);
        if (!p) return p.error();
        for (const auto& [name, value] : *p) {
            try {
                cfg.priority[name] = std::stoi(value);
            } catch (...) {
                return make_error("--priority " + name + ": not a number: " + value);
            }
        }
        if (cfg.api_token_file.empty() || !fs::read_secret(cfg.api_token_file))
            return make_error("--api-token-file: a readable token file is required");
        if (!parse_host_port(listen, cfg.listen_host, cfg.listen_port))
            return make_error("--listen: expected HOST:PORT, got '" + listen + "'");
        if (!parse_duration(interval, cfg.interval) || cfg.interval.count() < 50)
            return make_error("--interval: a duration of at least 50ms");
        if (!parse_duration(timeout, cfg.request_timeout) || cfg.request_timeout.count() < 50)
            return make_error("--request-timeout: a duration of at least 50ms");
        if (!parse_duration(delay, cfg.failover_delay) || cfg.failover_delay.count() < 250)
            return make_error("--failover-delay: a duration of at least 250ms, like 1s");
        if (!parse_duration(takeover, cfg.takeover_delay) ||
            cfg.takeover_delay < cfg.failover_delay)
            return make_error("--takeover-delay: a duration of at least --failover-delay");
        if (membership.empty() && k.enabled)
            return make_error(
                "--membership: the declared members (the StatefulSet's pod names) are needed "
                "with --kubernetes: a majority must not shrink when pods are deleted");
        if (membership.empty())
            for (const auto& [name, url] : cfg.members) membership.push_back(name);
        std::sort(membership.begin(), membership.end());
        if (std::adjacent_find(membership.begin(), membership.end()) != membership.end())
            return make_error("--membership: a name appears twice");
        for (const auto& name : membership)
            if (name.empty()) return make_error("--membership: an empty name");
        if (!k.enabled)
            for (const auto& [name, url] : cfg.members)
                if (!std::binary_search(membership.begin(), membership.end(), name))
                    return make_error("--member " + name + " is not in --membership");
        cfg.membership = membership;
        auto mode = parse_durability_mode(durability);
        if (!mode) return mode.error();
        cfg.sync_method = mode->first;
        cfg.synchronous = mode->second;
        if (first_n > 0) {
            if (cfg.synchronous > 0)
                return make_error("--synchronous and --durability: give one of them");
            cfg.sync_method = "first";
            cfg.synchronous = first_n;
        }
        if (!schedule.empty()) {
            auto s = parse_backup_schedule(schedule);
            if (!s) return s.error();
            cfg.backup_schedule = *s;
        }
        if (data_durability != "required" && data_durability != "preferred")
            return make_error("--data-durability: required or preferred");
        cfg.preferred = data_durability == "preferred";
        if (cfg.synchronous >= cfg.membership.size() && cfg.synchronous > 0)
            return make_error("--durability: at most the number of members minus one (" +
                              std::to_string(cfg.membership.size()) + " members)");
        log::Level lvl;
        if (!log::parse_level(cfg.log_level, lvl))
            return make_error("--log-level: debug, info, warn or error");
        return Ok{};
    });
    if (!done) return done.error();
    return cfg;
}

Result<ClientArgs> parse_client_args(const std::string& command,
                                     const std::vector<std::string>& args, ParseOutcome* outcome) {
    ClientArgs out;
    CLI::App app{command == "status"     ? "instance-manager status: the cluster at a glance"
                 : command == "failover" ? "instance-manager failover: promote a replica by hand"
                 : command == "backup"   ? "instance-manager backup: take a backup of the cluster"
                 : command == "backups"  ? "instance-manager backups: what the repository holds"
                 : command == "restart"
                     ? "instance-manager restart: restart members in order (replicas one at a "
                       "time, the primary by switchover)"
                     : "instance-manager switchover: hand the primary role over",
                 "instance-manager " + command};
    const bool backup_command = command == "backup" || command == "backups";
    std::vector<std::string> members;
    app.add_option("--controller", out.controller, "the controller's API URL")
        ->envname("IM_CONTROLLER_URL");
    app.add_option("--ca-file", out.tls.ca_file, "https: verify against this CA");
    if (command == "status") {
        app.add_option("--member", members, "NAME=URL: ask the members directly (repeat)");
        app.add_flag("--json", out.json, "print JSON");
    } else if (backup_command) {
        if (command == "backup")
            app.add_option("--type", out.backup_type, "full | diff | incr")
                ->check(CLI::IsMember({"full", "diff", "incr"}));
        else
            app.add_flag("--json", out.json, "print JSON");
        app.add_option("--api-token-file", out.api_token_file)->envname("IM_API_TOKEN_FILE");
    } else if (command == "restart") {
        auto* one = app.add_option("--member", out.restart_member, "the member to restart");
        auto* every = app.add_flag("--all", out.all, "restart every member");
        one->excludes(every);
        every->excludes(one);
        app.add_option("--api-token-file", out.api_token_file)->envname("IM_API_TOKEN_FILE");
    } else {
        app.add_option("--to", out.to, "the replica to promote")->required();
        app.add_option("--api-token-file", out.api_token_file)->envname("IM_API_TOKEN_FILE");
    }
    if (command == "failover") {
        app.add_flag("--force", out.force,
                     "promote --to although the controller does not fail over by itself");
        app.add_flag("--accept-data-loss", out.accept_data_loss,
                     "do it: without this flag, only print what may be lost");
    }
    auto done = parse_with(app, args, outcome, [&]() -> Status {
        auto m = split_pairs("--member", members);
        if (!m) return m.error();
        out.members = *m;
        if (auto st = check_members(out.members); !st) return st;
        if (out.controller.empty() == out.members.empty())
            return make_error(command == "status" ? "give --controller or --member"
                                                  : "--controller is required");
        if (!out.controller.empty() && !http_client::parse_url(out.controller))
            return make_error("--controller: expected http[s]://HOST:PORT");
        if (command == "restart" && out.restart_member.empty() && !out.all)
            return make_error("give --member NAME or --all");
        if (command == "failover" && !out.force)
            return make_error(
                "--force is required: the controller fails over by itself; this promotes --to "
                "even where its durability rule forbids it");
        if (command != "status" &&
            (out.api_token_file.empty() || !fs::read_secret(out.api_token_file)))
            return make_error("--api-token-file: a readable token file is required");
        return Ok{};
    });
    if (!done) return done.error();
    return out;
}

}  // namespace im
