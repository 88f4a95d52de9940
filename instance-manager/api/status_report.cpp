#include "api/status_report.hpp"

#include <cstdio>

#include <prometheus/text_serializer.h>

#include <sstream>

#include "api/file_health.hpp"
#include "bootstrap/replication_config.hpp"

namespace im {

probes::ProbeInput probe_input(const InstanceState& s) {
    probes::ProbeInput in;
    in.in_control = s.in_control;
    in.postmaster_running = s.process.running;
    in.accepting = s.pg.accepting;
    in.starting_up = s.pg.starting_up;
    in.ever_ready = s.ever_ready;
    // Replicas never run the bootstrap SQL: it is the primary's, replicated.
    in.setup_done = s.setup_done || s.pg.in_recovery;
    Role r = s.role.current();
    in.fenced = r == Role::fenced || r == Role::fencing;
    in.stopping = r == Role::stopping;
    in.in_recovery = s.pg.in_recovery;
    in.streaming = s.pg.streaming;
    in.lag_bytes = s.pg.lag_bytes;
    return in;
}

std::string lsn_text(uint64_t lsn) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xffffffffu));
    return buf;
}

std::string iso8601(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {
nlohmann::json or_null(const std::string& v) {
    return v.empty() ? nlohmann::json() : nlohmann::json(v);
}
nlohmann::json pending_names(const PgObservation& pg) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : pg.pending_settings) out.push_back(p.value("name", ""));
    return out;
}
}  // namespace

nlohmann::json build_status(const InstanceState& s, const Config& cfg) {
    using nlohmann::json;
    auto in = probe_input(s);
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - s.manager_started_mono);
    const auto& pg = s.pg;
    json postgres = {
        {"running", s.process.running},
        {"pid", s.process.running ? json(s.process.pid) : json()},
        {"accepting_connections", pg.accepting},
        {"starting_up", pg.starting_up},
        {"version", or_null(pg.version)},
        {"version_num", pg.version_num ? json(pg.version_num) : json()},
        {"system_identifier", or_null(pg.system_identifier)},
        {"timeline", pg.timeline ? json(pg.timeline) : json()},
        {"in_recovery", pg.in_recovery},
        {"current_lsn", or_null(pg.current_lsn)},
        {"receive_lsn", or_null(pg.receive_lsn)},
        {"replay_lsn", or_null(pg.replay_lsn)},
        {"pending_restart", pg.pending_restart},
        {"pending_restart_settings", pending_names(pg)},
        {"start_time", or_null(pg.pg_start_time)},
        {"restarts", s.process.restarts},
        {"crashes", s.process.crashes},
        {"last_exit", or_null(s.process.last_exit)},
        {"port", cfg.pg_port},
    };
    json replication = pg.replication;
    if (pg.in_recovery || !s.upstream.empty()) {
        json upstream = json::object();
        for (const auto& [k, v] : public_upstream(s.upstream)) upstream[k] = v;
        upstream["application_name"] = cfg.name;
        replication["upstream"] = upstream;
        replication["streaming"] = pg.streaming;
        replication["received_lsn"] = or_null(pg.receive_lsn);
        replication["replayed_lsn"] = or_null(pg.replay_lsn);
    }
    json authority = s.authority_view ? s.authority_view() : json();
    json changes = json::array();
    for (const auto& c : s.role.history())
        changes.push_back(
            {{"from", to_string(c.from)}, {"to", to_string(c.to)}, {"reason", c.reason}});
    std::string last_error =
        !s.last_error.empty() ? s.last_error : (s.process.running ? pg.last_error : "");
    return {
        {"name", cfg.name},
        {"role", to_string(s.role.current())},
        {"ready", probes::readiness(in).ok},
        {"postgres", postgres},
        {"manager",
         {{"version", kManagerVersion},
          {"started_at", iso8601(s.manager_started)},
          {"uptime_s", uptime.count()},
          {"pid", ::getpid()}}},
        {"restart_count", s.process.restarts},
        {"term", s.term},
        {"standby", s.standby},
        {"authority", authority},
        {"replication", replication},
        {"backup", s.backup_view ? s.backup_view() : json()},
        {"parameters", s.parameters_view ? s.parameters_view() : json()},
        {"restoring", s.restoring},
        {"restarting_on_request", s.restart_requested},
        {"clone_progress", s.clone_progress ? json(*s.clone_progress) : json()},
        {"last_error", or_null(last_error)},
        {"role_changes", changes},
        {"checked_at", s.pg.checks ? json(iso8601(s.pg.checked_at)) : json()},
        {"check_age_ms",
         s.pg.checks ? json(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - s.pg.checked_steady)
                                .count())
                     : json()},
    };
}

namespace {
prometheus::Family<prometheus::Counter>& counter(prometheus::Registry& r, const char* name,
                                                 const char* help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<prometheus::Gauge>& gauge(prometheus::Registry& r, const char* name,
                                             const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(counter(*registry_, "instance_manager_http_requests_total",
                        "HTTP requests served, by route and status code")),
      probes_(counter(*registry_, "instance_manager_probes_total",
                      "Probe answers, by probe and result")),
      up_(gauge(*registry_, "pg_up", "1 when postgres accepts connections")),
      role_(gauge(*registry_, "instance_manager_role", "1 for the instance's current role")),
      restarts_(gauge(*registry_, "instance_manager_postgres_restarts",
                      "Restarts of postgres after it exited unexpectedly")),
      ready_(gauge(*registry_, "instance_manager_ready", "1 when the readiness probe passes")),
      in_recovery_(
          gauge(*registry_, "pg_in_recovery", "1 when postgres is in recovery (a replica)")),
      timeline_(gauge(*registry_, "pg_timeline", "Current timeline")),
      lsn_(gauge(*registry_, "pg_wal_lsn_bytes",
                 "WAL positions in bytes, by kind (current, receive, replay)")),
      pending_restart_(
          gauge(*registry_, "pg_pending_restart", "1 when a changed setting needs a restart")),
      uptime_(gauge(*registry_, "instance_manager_uptime_seconds",
                    "Seconds since the manager started")),
      checks_(
          gauge(*registry_, "instance_manager_checks", "Checks of postgres made by the manager")),
      check_failures_(
          gauge(*registry_, "instance_manager_check_failures", "Checks of postgres that failed")),
      lag_bytes_(gauge(*registry_, "pg_replication_lag_bytes",
                       "Replica: bytes between the primary's end of WAL and replay")),
      replay_lag_(gauge(*registry_, "pg_replication_replay_lag_seconds",
                        "Replica: seconds since the last replayed transaction, 0 when caught up")),
      streaming_(gauge(*registry_, "pg_replication_streaming",
                       "Replica: 1 when the WAL receiver streams")),
      replica_lag_(gauge(*registry_, "pg_stat_replication_lag_bytes",
                         "Primary: replay lag of each replica in bytes")),
      slot_retained_(gauge(*registry_, "pg_replication_slot_retained_bytes",
                           "Primary: WAL bytes each physical slot holds back")),
      slot_lost_(gauge(*registry_, "pg_replication_slot_lost",
                       "Primary: 1 when PostgreSQL invalidated the slot (max_slot_wal_keep_size)")),
      term_(gauge(*registry_, "instance_manager_term", "Highest accepted command term")),
      promised_term_(gauge(*registry_, "instance_manager_promised_term",
                           "Highest term this member promised (write authority)")),
      grant_remaining_(gauge(*registry_, "instance_manager_grant_remaining_seconds",
                             "How long this member's last grant of the write right still runs")),
      may_write_(gauge(*registry_, "instance_manager_write_right",
                       "1 while this primary holds grants from a majority")),
      write_remaining_(gauge(*registry_, "instance_manager_write_right_remaining_seconds",
                             "How long this primary may still write without a renewal")),
      grants_held_(gauge(*registry_, "instance_manager_write_grants",
                         "Unexpired grants this primary holds (itself included)")),
      right_losses_(gauge(*registry_, "instance_manager_write_right_losses",
                          "Times the write right was lost while postgres ran writable")),
      certificate_expiry_(gauge(*registry_, "instance_manager_certificate_expiry_timestamp_seconds",
                                "When each certificate in use expires (unix time)")),
      secret_ok_(gauge(*registry_, "instance_manager_secret_file_ok",
                       "1 when each password or token file in use reads as a secret")) {}

void Metrics::count_request(const std::string& route, unsigned status) {
    requests_.Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
}

void Metrics::count_probe(const std::string& probe, bool ok) {
    probes_.Add({{"probe", probe}, {"result", ok ? "ok" : "fail"}}).Increment();
}

void Metrics::set_gauge(const std::string& name, const std::string& help, double value) {
    auto it = lazy_.find(name);
    if (it == lazy_.end()) it = lazy_.emplace(name, &gauge(*registry_, name.c_str(), help.c_str())).first;
    it->second->Add({}).Set(value);
}

void Metrics::render_backup(const nlohmann::json& b) {
    if (!b.is_object()) return;
    auto num = [](const nlohmann::json& j, const char* k) {
        return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0;
    };
    const auto& a = b.value("archiver", nlohmann::json());
    set_gauge("instance_manager_archive_archived_segments",
              "WAL segments (and history files) postgres archived since its statistics reset",
              num(a, "archived_count"));
    set_gauge("instance_manager_archive_failed_attempts",
              "Failed archive_command runs since postgres's statistics reset",
              num(a, "failed_count"));
    set_gauge("instance_manager_archive_failing", "1 when the newest archive attempt failed",
              b.value("archive_failing", false) ? 1 : 0);
    set_gauge("instance_manager_archive_ready_segments",
              "WAL segments waiting in pg_wal to be archived", num(a, "ready_segments"));
    set_gauge("instance_manager_archive_last_archived_timestamp_seconds",
              "When the last segment was archived (unix time)", num(a, "last_archived_time"));
    set_gauge("instance_manager_pg_wal_bytes", "Size of pg_wal", num(a, "wal_bytes"));
    const auto& last = b.value("last_backup", nlohmann::json());
    set_gauge("instance_manager_backups", "Backups the repository holds for this cluster",
              num(b, "backups"));
    set_gauge("instance_manager_backup_last_completion_timestamp_seconds",
              "When the newest backup in the repository ended (unix time)", num(last, "stop_unix"));
    set_gauge("instance_manager_backup_last_size_bytes", "Database size of the newest backup",
              num(last, "size_bytes"));
    set_gauge("instance_manager_backup_last_duration_seconds", "How long the newest backup took",
              num(last, "duration_s"));
    set_gauge("instance_manager_backup_running", "1 while this instance takes a backup",
              b.value("running", nlohmann::json()).is_object() ? 1 : 0);
    const auto& result = b.value("last_result", nlohmann::json());
    set_gauge("instance_manager_backup_last_failed",
              "1 when the last backup this instance took failed",
              result.is_object() && !result.value("ok", true) ? 1 : 0);
    // Only with standby backups configured: its pgBackRest TLS server runs.
    if (const auto& srv = b.value("server", nlohmann::json()); srv.is_object())
        set_gauge("instance_manager_backup_server_up",
                  "1 while this member's pgBackRest TLS server runs (standby backups)",
                  srv.value("running", false) ? 1 : 0);
}

std::string Metrics::render(const InstanceState& s, const Config& cfg) {
    const auto& pg = s.pg;
    up_.Add({}).Set(pg.accepting ? 1 : 0);
    for (Role r : {Role::starting, Role::primary, Role::replica, Role::stopping, Role::stopped,
                   Role::promoting, Role::demoting, Role::fencing, Role::fenced})
        role_.Add({{"role", std::string(to_string(r))}}).Set(s.role.current() == r ? 1 : 0);
    restarts_.Add({}).Set(static_cast<double>(s.process.restarts));
    ready_.Add({}).Set(probes::readiness(probe_input(s)).ok ? 1 : 0);
    in_recovery_.Add({}).Set(pg.in_recovery ? 1 : 0);
    timeline_.Add({}).Set(pg.timeline);
    lsn_.Add({{"kind", "current"}}).Set(static_cast<double>(parse_lsn(pg.current_lsn)));
    lsn_.Add({{"kind", "receive"}}).Set(static_cast<double>(parse_lsn(pg.receive_lsn)));
    lsn_.Add({{"kind", "replay"}}).Set(static_cast<double>(parse_lsn(pg.replay_lsn)));
    pending_restart_.Add({}).Set(pg.pending_restart ? 1 : 0);
    uptime_.Add({}).Set(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - s.manager_started_mono)
            .count());
    checks_.Add({}).Set(static_cast<double>(pg.checks));
    check_failures_.Add({}).Set(static_cast<double>(pg.check_failures));
    lag_bytes_.Add({}).Set(static_cast<double>(pg.lag_bytes));
    replay_lag_.Add({}).Set(pg.in_recovery ? pg.replication.value("replay_lag_s", 0.0) : 0.0);
    streaming_.Add({}).Set(pg.streaming ? 1 : 0);
    term_.Add({}).Set(static_cast<double>(s.term));
    right_losses_.Add({}).Set(static_cast<double>(s.write_right_losses));
    if (s.authority_view) {
        const nlohmann::json a = s.authority_view();
        const nlohmann::json& member = a.contains("member") ? a["member"] : nlohmann::json();
        if (member.is_object()) {
            promised_term_.Add({}).Set(member.value("promised_term", 0.0));
            grant_remaining_.Add({}).Set(member.value("grant_remaining_ms", 0.0) / 1000.0);
        }
        const nlohmann::json& right = a.contains("write_right") ? a["write_right"] : nlohmann::json();
        bool held = right.is_object();
        may_write_.Add({}).Set(held && right.value("may_write", false) ? 1 : 0);
        write_remaining_.Add({}).Set(held ? right.value("remaining_ms", 0.0) / 1000.0 : 0.0);
        double live = 0;
        if (held && right.contains("grants_ms") && right["grants_ms"].is_object())
            for (const auto& [member_name, ms] : right["grants_ms"].items())
                live += ms.is_number() && ms.get<double>() > 0 ? 1 : 0;
        grants_held_.Add({}).Set(live);
    }
    if (auto it = pg.replication.find("replicas"); it != pg.replication.end() && it->is_array())
        for (const auto& r : *it)
            if (r.value("name", "") != "" && r["lag_bytes"].is_number())
                replica_lag_.Add({{"application_name", r["name"].get<std::string>()}})
                    .Set(r["lag_bytes"].get<double>());
    if (auto it = pg.replication.find("slots"); it != pg.replication.end() && it->is_array())
        for (const auto& slot : *it) {
            if (!slot.is_object() || !slot.value("name", nlohmann::json()).is_string()) continue;
            std::map<std::string, std::string> labels = {{"slot", slot["name"].get<std::string>()}};
            if (slot.value("retained_bytes", nlohmann::json()).is_number())
                slot_retained_.Add(labels).Set(slot["retained_bytes"].get<double>());
            const auto& wal = slot.value("wal_status", nlohmann::json());
            slot_lost_.Add(labels).Set(wal.is_string() && wal.get<std::string>() == "lost" ? 1 : 0);
        }
    auto activity = [&](const char* key) {
        auto it = pg.activity.find(key);
        return it != pg.activity.end() && it->is_number() ? it->get<double>() : 0.0;
    };
    if (pg.accepting) {
        set_gauge("pg_stat_database_xact_commit",
                  "Transactions committed in every database since the statistics reset",
                  activity("xact_commit"));
        set_gauge("pg_stat_database_xact_rollback",
                  "Transactions rolled back in every database since the statistics reset",
                  activity("xact_rollback"));
        set_gauge("pg_connections", "Client connections now", activity("connections"));
        set_gauge("pg_max_connections", "max_connections in force", activity("max_connections"));
    }
    for (const auto& [label, path] : certificates_in_use(cfg))
        if (auto expiry = certificate_expiry(path))
            certificate_expiry_.Add({{"certificate", label}}).Set(*expiry);
    for (const auto& [label, ok] : secret_files_ok(cfg))
        secret_ok_.Add({{"file", label}}).Set(ok ? 1 : 0);
    if (s.backup_view) render_backup(s.backup_view());
    std::ostringstream out;
    prometheus::TextSerializer{}.Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace im
