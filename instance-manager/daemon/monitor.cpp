#include "daemon/monitor.hpp"

#include <climits>
#include <cstdlib>

#include "backup/archive_status.hpp"
#include "bootstrap/data_dir.hpp"
#include "conninfo.hpp"
#include "log.hpp"

namespace im {

namespace {
constexpr const char* kStatusSql =
    "SELECT pg_is_in_recovery(), current_setting('server_version'),"
    " current_setting('server_version_num')::int,"
    " (SELECT system_identifier FROM pg_control_system())::text,"
    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() "
    "END::text,"
    // A standby's timeline is that of the newest WAL it holds: its WAL
    // receiver's while it runs, else the newest segment in pg_wal (the
    // receiver writes each timeline's WAL into segments named for it); the
    // last restartpoint's lags behind both (synchronous failover compares
    // timelines: authority/durability.hpp).
    " CASE WHEN pg_is_in_recovery()"
    "  THEN GREATEST(COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), 0),"
    "                COALESCE((SELECT max(('x' || substr(name, 1, 8))::bit(32)::int)"
    "                          FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'), 0),"
    "                (SELECT timeline_id FROM pg_control_checkpoint()))"
    "  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,"
    " pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
    // Each setting pending a restart: its value now and the one a restart
    // gives (the files' last word on it, else its built-in default).
    " (SELECT json_agg(json_build_object('name', s.name, 'setting', s.setting, 'pending',"
    "    COALESCE((SELECT f.setting FROM pg_file_settings f WHERE f.name = s.name"
    "              ORDER BY f.seqno DESC LIMIT 1), s.boot_val)) ORDER BY s.name)"
    "  FROM pg_settings s WHERE s.pending_restart)::text,"
    " pg_postmaster_start_time()::text,"
    " CASE WHEN pg_is_in_recovery() THEN json_build_object("
    "   'wal_receiver', (SELECT json_build_object('status', status, 'sender_host', sender_host,"
    "      'sender_port', sender_port, 'slot_name', slot_name, 'flushed_lsn', flushed_lsn::text,"
    "      'latest_end_lsn', latest_end_lsn::text, 'timeline', received_tli) FROM "
    "pg_stat_wal_receiver),"
    "   'replay_lag_s', CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    "      ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END,"
    "   'lag_bytes', COALESCE(GREATEST(pg_wal_lsn_diff("
    "      (SELECT latest_end_lsn FROM pg_stat_wal_receiver), pg_last_wal_replay_lsn()), 0), 0))"
    " ELSE json_build_object("
    "   'replicas', COALESCE((SELECT json_agg(json_build_object('name', application_name, 'state', "
    "state,"
    "      'sync_state', sync_state, 'client_addr', client_addr::text, 'sent_lsn', sent_lsn::text,"
    "      'write_lsn', write_lsn::text, 'flush_lsn', flush_lsn::text, 'replay_lsn', "
    "replay_lsn::text,"
    "      'write_lag_s', EXTRACT(EPOCH FROM write_lag), 'flush_lag_s', EXTRACT(EPOCH FROM "
    "flush_lag),"
    "      'replay_lag_s', EXTRACT(EPOCH FROM replay_lag),"
    "      'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) ORDER BY "
    "application_name)"
    "      FROM pg_stat_replication), '[]'),"
    "   'synchronous_standby_names', current_setting('synchronous_standby_names'),"
    "   'slots', COALESCE((SELECT json_agg(json_build_object('name', slot_name, 'active', active,"
    "      'restart_lsn', restart_lsn::text, 'wal_status', wal_status,"
    "      'retained_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn),"
    "      'safe_wal_size', safe_wal_size) ORDER BY slot_name)"
    "      FROM pg_replication_slots WHERE slot_type = 'physical'), '[]'))"
    " END::text,"
    // Which server answered: only ours may be reported (verified below).
    " current_setting('data_directory'),"
    // Activity, for /metrics: commits and rollbacks since the statistics
    // reset (rate() gives per second), client connections and the limit.
    " json_build_object('xact_commit', (SELECT sum(xact_commit) FROM pg_stat_database),"
    "   'xact_rollback', (SELECT sum(xact_rollback) FROM pg_stat_database),"
    "   'connections', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
    "   'max_connections', current_setting('max_connections')::int)::text";

// Both sides resolved: a data directory given through a symbolic link is the same one.
std::string real_path(const std::string& path) {
    char buf[PATH_MAX];
    return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}
}  // namespace

Monitor::Monitor(asio::any_io_executor ex, const Config& cfg, InstanceState& state)
    : ex_(ex), cfg_(cfg), state_(state), session_(ex), wake_(std::make_shared<Event>(ex)) {}

std::string Monitor::local_conninfo() const {
    // Peer authentication over the socket: no password, no TLS, and no file
    // of the user's home consulted for either.
    ConninfoMap m{{"host", cfg_.socket_dir},
                  {"port", std::to_string(cfg_.pg_port)},
                  {"dbname", "postgres"},
                  {"user", "postgres"},
                  {"application_name", "instance-manager"},
                  {"sslmode", "disable"}};
    pin_client_files(m);
    return build_conninfo(m);
}

Status Monitor::check_serving(const std::string& data_directory) const {
    if (real_path(data_directory) == real_path(cfg_.pgdata)) return Ok{};
    // Another instance's postmaster on our port and socket directory: never
    // taken for ours (its role, its LSNs, its roles' passwords).
    return make_error("the postgres answering on port " + std::to_string(cfg_.pg_port) +
                          " serves another data directory (" + data_directory + ")",
                      503);
}

awaitable<Status> Monitor::connect_local(PgSession& session,
                                         std::chrono::milliseconds timeout) const {
    if (auto st = co_await session.connect(local_conninfo(), timeout); !st)
        co_return make_error("cannot reach local postgres: " + st.error().message, 503);
    auto r = co_await session.query("SELECT current_setting('data_directory')", timeout);
    if (!r) co_return make_error("cannot query local postgres: " + r.error().message, 503);
    if (auto st = check_serving(pg_value(r->get(), 0, 0).value_or("")); !st) {
        session.close();
        co_return st;
    }
    co_return Ok{};
}

void Monitor::poke() { wake_->set(); }

void Monitor::stop() {
    stopped_ = true;
    wake_->set();
}

awaitable<void> Monitor::check_once() {
    auto& pg = state_.pg;
    pg.checked_at = std::chrono::system_clock::now();
    pg.checked_steady = std::chrono::steady_clock::now();
    ++pg.checks;
    auto fail = [&](std::string why) {
        if (pg.accepting || pg.last_error != why)
            log::debug("monitor", "postgres check failed", {{"error", why}});
        pg.accepting = false;
        pg.last_error = std::move(why);
        ++pg.check_failures;
    };

    if (!state_.process.running) {
        session_.close();
        pg.starting_up = false;
        pg.pm_status.clear();
        fail("postgres is not running");
        co_return;
    }
    auto pid = read_pid_file(cfg_.pgdata);
    pg.pm_status = pid ? pid->status : "";
    // The postmaster writes "starting" while the startup process replays WAL.
    pg.starting_up = pg.pm_status == "starting";

    // Generous: a primary busy with a heavy load answers late, and is still
    // serving. Calling it not ready would start a failover for nothing; a
    // postgres that is really gone fails at once (its socket refuses).
    auto timeout = std::max(cfg_.check_interval * 5, std::chrono::milliseconds(5000));
    if (!session_.connected()) {
        auto st = co_await session_.connect(local_conninfo(), timeout);
        if (!st) {
            fail(st.error().message);
            co_return;
        }
    }
    auto r = co_await session_.query(kStatusSql, timeout);
    if (!r) {
        fail(r.error().message);
        co_return;
    }
    const PGresult* res = r->get();
    if (auto st = check_serving(pg_value(res, 0, 11).value_or("")); !st) {
        session_.close();
        fail(st.error().message);
        co_return;
    }
    pg.accepting = true;
    pg.starting_up = false;
    pg.last_error.clear();
    pg.in_recovery = pg_value(res, 0, 0).value_or("f") == "t";
    pg.version = pg_value(res, 0, 1).value_or("");
    pg.version_num = std::stoi(pg_value(res, 0, 2).value_or("0"));
    pg.system_identifier = pg_value(res, 0, 3).value_or("");
    pg.current_lsn = pg_value(res, 0, 4).value_or("");
    pg.timeline = static_cast<uint32_t>(std::stoul(pg_value(res, 0, 5).value_or("0")));
    pg.receive_lsn = pg_value(res, 0, 6).value_or("");
    pg.replay_lsn = pg_value(res, 0, 7).value_or("");
    auto pending = nlohmann::json::parse(pg_value(res, 0, 8).value_or("null"), nullptr, false);
    pg.pending_settings = pending.is_array() ? pending : nlohmann::json::array();
    pg.pending_restart = !pg.pending_settings.empty();
    pg.pg_start_time = pg_value(res, 0, 9).value_or("");
    auto repl = nlohmann::json::parse(pg_value(res, 0, 10).value_or("{}"), nullptr, false);
    pg.replication = repl.is_object() ? repl : nlohmann::json::object();
    const auto& receiver = pg.replication.value("wal_receiver", nlohmann::json());
    pg.streaming =
        pg.in_recovery && receiver.is_object() && receiver.value("status", "") == "streaming";
    pg.lag_bytes = pg.in_recovery ? pg.replication.value("lag_bytes", uint64_t{0}) : 0;
    auto activity = nlohmann::json::parse(pg_value(res, 0, 12).value_or("{}"), nullptr, false);
    pg.activity = activity.is_object() ? activity : nlohmann::json::object();
    if (cfg_.backups()) {
        auto a = co_await session_.query(backup::kArchiverSql, timeout);
        pg.archiver = a ? nlohmann::json::parse(pg_value(a->get(), 0, 0).value_or("null"), nullptr,
                                                false)
                        : nlohmann::json();
    }
}

awaitable<void> Monitor::run(AfterCheck after) {
    while (!stopped_) {
        co_await check_once();
        if (stopped_) break;
        co_await after(session_);
        if (stopped_) break;
        // Until postgres answers, look more often: readiness after a start or a
        // crash is then reported within a fraction of a second.
        auto wait = state_.pg.accepting || !state_.process.running
                        ? cfg_.check_interval
                        : std::min(cfg_.check_interval, std::chrono::milliseconds(100));
        co_await wake_->wait(wait);
        wake_->reset();
    }
    session_.close();
}

}  // namespace im
