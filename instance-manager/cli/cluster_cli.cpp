// `instance-manager status` and `instance-manager switchover`: small
// clients of the controller's API (status can also ask the members).
#include <cstdio>
#include <iostream>

#include "cli/cluster_table.hpp"
#include "controller/controller_config.hpp"
#include "fs_util.hpp"
#include "json_text.hpp"

namespace im {

namespace {
int fail(const std::string& command, const std::string& msg, int code = 1) {
    std::fprintf(stderr, "instance-manager %s: %s\n", command.c_str(), msg.c_str());
    return code;
}

// Sends `body` to the controller's `path` with the token (POST; GET when
// `body` is null): its JSON answer, or the message to fail with (the
// controller's own error when it gave one).
Result<nlohmann::json> call_controller(const ClientArgs& a, const std::string& path,
                                       const nlohmann::json& body) {
    auto token = fs::read_secret(a.api_token_file);
    if (!token) return token.error();
    auto url = *http_client::parse_url(a.controller);
    url.path = path;
    auto r = http_client::http_request(body.is_null() ? "GET" : "POST", url,
                                       body.is_null() ? "" : json_text(body), *token, a.timeout,
                                       a.tls);
    if (!r) return make_error(a.controller + ": " + r.error().message);
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (r->status != 200 || !j.is_object())
        return make_error(j.is_object() && j.contains("error") && j["error"].is_string()
                              ? j["error"].get<std::string>()
                              : "HTTP " + std::to_string(r->status));
    return j;
}
}  // namespace

int status_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto a = parse_client_args("status", args, &outcome);
    if (!a) return outcome.exit_code == 0 ? 0 : fail("status", a.error().message, 2);
    nlohmann::json cluster;
    if (!a->controller.empty()) {
        auto url = *http_client::parse_url(a->controller);
        url.path = "/v1/cluster";
        auto r = http_client::http_request("GET", url, "", "", std::chrono::seconds(5), a->tls);
        if (!r) return fail("status", a->controller + ": " + r.error().message);
        if (r->status != 200) return fail("status", "HTTP " + std::to_string(r->status));
        cluster = nlohmann::json::parse(r->body, nullptr, false);
        if (!cluster.is_object()) return fail("status", "the controller's answer is not JSON");
    } else {
        // No controller: ask every member and show the same table.
        std::vector<MemberView> views;
        for (const auto& [name, url_text] : a->members) {
            auto url = *http_client::parse_url(url_text);
            url.path = "/v1/status";
            auto r = http_client::http_request("GET", url, "", "", std::chrono::seconds(2), a->tls);
            nlohmann::json status;
            if (r && r->status == 200) status = nlohmann::json::parse(r->body, nullptr, false);
            if (status.is_discarded()) status = nullptr;
            views.push_back(member_view(name, url_text, status));
        }
        nlohmann::json members = nlohmann::json::array();
        uint64_t term = 0;
        nlohmann::json primary = nullptr;
        for (const auto& v : views) {
            members.push_back(member_summary(v, views));
            term = std::max(term, v.term);
        }
        if (auto p = find_primary(views)) primary = views[*p].name;
        cluster = {{"term", term}, {"primary", primary}, {"members", members}};
    }
    if (a->json)
        std::cout << json_text(cluster, 2) << "\n";
    else
        std::cout << render_table(cluster);
    return 0;
}

int switchover_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto a = parse_client_args("switchover", args, &outcome);
    if (!a) return outcome.exit_code == 0 ? 0 : fail("switchover", a.error().message, 2);
    auto j = call_controller(*a, "/v1/switchover", {{"to", a->to}});
    if (!j) return fail("switchover", j.error().message);
    std::cout << json_text(*j, 2) << "\n";
    return 0;
}

int restart_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto a = parse_client_args("restart", args, &outcome);
    if (!a) return outcome.exit_code == 0 ? 0 : fail("restart", a.error().message, 2);
    nlohmann::json body = a->all ? nlohmann::json{{"all", true}}
                                 : nlohmann::json{{"member", a->restart_member}};
    auto j = call_controller(*a, "/v1/restart", body);
    if (!j) return fail("restart", j.error().message);
    std::string names;
    for (const auto& n : j->value("requested", nlohmann::json::array()))
        names += (names.empty() ? "" : ", ") + n.get<std::string>();
    std::cout << "Restart of " << names
              << " requested: replicas restart one at a time, the primary by switchover. "
                 "Progress: `instance-manager status`.\n";
    return 0;
}

int failover_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto a = parse_client_args("failover", args, &outcome);
    if (!a) return outcome.exit_code == 0 ? 0 : fail("failover", a.error().message, 2);
    auto answer = call_controller(
        *a, "/v1/failover", {{"to", a->to}, {"accept_data_loss", a->accept_data_loss}});
    if (!answer) return fail("failover", answer.error().message);
    const nlohmann::json& j = *answer;
    if (!j.value("promoted", false)) {
        std::cout << "Promoting " << a->to << " (at " << j.value("target_lsn", "?") << ")";
        if (j.contains("may_lose"))
            std::cout << " may lose " << j["may_lose"].get<std::string>() << ": "
                      << j.value("may_lose_bytes", 0) << " bytes, newest at "
                      << j.value("newest_known_at", "?") << ".\n";
        else
            std::cout << " loses nothing any reachable member or the lost primary's last "
                         "position shows.\n";
        if (j.contains("failover_blocked") && j["failover_blocked"].is_string())
            std::cout << "The controller does not fail over by itself: "
                      << j["failover_blocked"].get<std::string>() << "\n";
        std::cout << "Nothing was changed. Run again with --accept-data-loss to promote.\n";
        return 3;
    }
    std::cout << json_text(j, 2) << "\n";
    return 0;
}

int backup_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto a = parse_client_args("backup", args, &outcome);
    if (!a) return outcome.exit_code == 0 ? 0 : fail("backup", a.error().message, 2);
    auto j = call_controller(*a, "/v1/backup", {{"type", a->backup_type}});
    if (!j) return fail("backup", j.error().message);
    std::cout << "A " << j->value("type", "full") << " backup started on "
              << j->value("member", "?") << " at " << j->value("started_at", "?")
              << ". Its progress and result: `instance-manager status`, `instance-manager "
                 "backups`.\n";
    return 0;
}

int backups_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto a = parse_client_args("backups", args, &outcome);
    if (!a) return outcome.exit_code == 0 ? 0 : fail("backups", a.error().message, 2);
    auto j = call_controller(*a, "/v1/backups", nullptr);
    if (!j) return fail("backups", j.error().message);
    if (a->json) {
        std::cout << json_text(*j, 2) << "\n";
        return 0;
    }
    std::cout << render_backups(*j);
    return 0;
}

}  // namespace im
