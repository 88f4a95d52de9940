// The commands a controller sends: promote, demote, follow, fence, unfence,
// plus restart and reload. Every one is checked against the instance's
// state first and changes nothing when it does not fit.
#include <filesystem>
#include <regex>

#include "bootstrap/clone.hpp"
#include "daemon/daemon.hpp"
#include "bootstrap/data_dir.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "bootstrap/replication_config.hpp"

namespace im {

namespace {
constexpr auto kSqlTimeout = std::chrono::seconds(60);

Error conflict(std::string msg) { return make_error(std::move(msg), 409); }

nlohmann::json changed(const InstanceState& s, nlohmann::json extra = nlohmann::json::object()) {
    extra["changed"] = true;
    extra["role"] = to_string(s.role.current());
    extra["term"] = s.term;
    return extra;
}
}  // namespace

Status Daemon::save_persistent() {
    if (auto st = store_->save(prepared_->persistent); !st) return st;
    state_.term = prepared_->persistent.term;
    state_.upstream = prepared_->persistent.primary_conninfo;
    state_.standby = prepared_->replica;
    return Ok{};
}

awaitable<CommandResult_> Daemon::run(const std::string& command, const nlohmann::json& body) {
    // A fence is taken while the manager stops (a deleted pod): it turns a
    // smart shutdown that idle sessions would hold up into a fast one, so a
    // failover need not wait for the old primary's smart shutdown timeout.
    if (shutting_down_ && command != "fence") co_return conflict("the manager is shutting down");
    if (!prepared_ || !store_) co_return conflict("the instance is still bootstrapping");
    if (command_running_) co_return conflict("busy: another command is running");
    ScopedFlag running{command_running_};
    std::optional<uint64_t> term;
    if (command == "lease" && body.contains("term")) {
        // A lease renews with the same term every round: only stale terms are refused,
        // and only a newer term is persisted.
        uint64_t t = body["term"].get<uint64_t>();
        if (t < prepared_->persistent.term)
            co_return conflict("stale term " + std::to_string(t) + ": term " +
                               std::to_string(prepared_->persistent.term) +
                               " was already accepted");
        auto r = co_await do_lease(body);
        if (r && t > prepared_->persistent.term) {
            prepared_->persistent.term = t;
            prepared_->persistent.last_command = command_key("lease", t, nlohmann::json());
            if (auto st = save_persistent(); !st)
                co_return make_error("cannot persist the term: " + st.error().message, 500);
        }
        if (r) (*r)["term"] = t;
        co_return r;
    }
    if (body.contains("term")) {
        term = body["term"].get<uint64_t>();
        switch (judge_term(prepared_->persistent, command_key(command, *term, body), *term)) {
            case TermVerdict::stale:
                co_return conflict("stale term " + std::to_string(*term) + ": term " +
                                   std::to_string(prepared_->persistent.term) +
                                   " was already accepted");
            case TermVerdict::repeat:
                co_return nlohmann::json{{"changed", false},
                                         {"role", to_string(state_.role.current())},
                                         {"term", *term}};
            case TermVerdict::fresh:
                break;
        }
    }
    std::optional<CommandResult_> r;
    if (command == "restart")
        r.emplace(co_await do_restart());
    else if (command == "reload")
        r.emplace(co_await do_reload());
    else if (command == "promote")
        r.emplace(co_await do_promote(body));
    else if (command == "demote")
        r.emplace(co_await do_demote(body));
    else if (command == "follow")
        r.emplace(co_await do_follow(body));
    else if (command == "fence")
        r.emplace(co_await do_fence());
    else if (command == "unfence")
        r.emplace(co_await do_unfence());
    else if (command == "replication")
        r.emplace(co_await do_replication(body));
    else
        co_return make_error("unknown command " + command, 404);
    // The term counts once the command was carried out: a refused command changes nothing.
    if (*r && term) {
        prepared_->persistent.term = *term;
        prepared_->persistent.last_command = command_key(command, *term, body);
        if (auto st = save_persistent(); !st)
            co_return make_error("cannot persist the term: " + st.error().message, 500);
        (*r)->operator[]("term") = *term;
    }
    co_return std::move(*r);
}

awaitable<CommandResult_> Daemon::do_restart() {
    if (state_.role.current() == Role::fenced) co_return conflict("the instance is fenced");
    if (restart_pending_ || !supervisor_.running())
        co_return conflict("postgres is not running (starting or restarting)");
    (void)state_.role.transition(Role::stopping, "restart requested");
    co_await supervisor_.stop(StopMode::fast);
    (void)state_.role.transition(Role::stopped, "restart requested");
    if (shutting_down_) co_return conflict("the manager is shutting down");
    (void)state_.role.transition(Role::starting, "restart requested");
    if (auto st = supervisor_.start(); !st) co_return make_error(st.error().message, 500);
    monitor_.poke();
    co_return nlohmann::json{{"changed", true}, {"restarted", true}, {"pid", supervisor_.pid()}};
}

awaitable<CommandResult_> Daemon::do_reload() {
    if (!supervisor_.running()) co_return conflict("postgres is not running");
    reload_all();
    co_return nlohmann::json{{"changed", true}, {"reloaded", true}};
}

awaitable<CommandResult_> Daemon::do_promote(const nlohmann::json& body) {
    Role role = state_.role.current();
    if (role == Role::fenced)
        co_return conflict("cannot promote a fenced instance; unfence it first");
    if (role == Role::primary) co_return conflict("the instance is already a primary");
    if (role != Role::replica || !state_.pg.accepting)
        co_return conflict("only a running replica can be promoted (role " +
                           std::string(to_string(role)) + ")");

    PgSession session(io_.get_executor());
    if (auto st = co_await session.connect(monitor_.local_conninfo(), std::chrono::seconds(5)); !st)
        co_return make_error("cannot reach local postgres: " + st.error().message, 503);
    if (body.contains("min_lsn")) {
        auto r = co_await session.query(
            "SELECT COALESCE(pg_last_wal_receive_lsn(), '0/0')::text, "
            "COALESCE(pg_last_wal_replay_lsn(), '0/0')::text",
            kSqlTimeout);
        if (!r) co_return make_error(r.error().message, 503);
        std::string received = pg_value(r->get(), 0, 0).value_or("0/0");
        std::string replayed = pg_value(r->get(), 0, 1).value_or("0/0");
        uint64_t need = parse_lsn(body["min_lsn"].get<std::string>());
        if (std::max(parse_lsn(received), parse_lsn(replayed)) < need) {
            Error e = make_error(
                "the replica has not received WAL up to " + body["min_lsn"].get<std::string>(),
                412);
            e.fields = {{"received_lsn", received}, {"replayed_lsn", replayed}};
            co_return e;
        }
    }
    double timeout = body.value("timeout_s", 60.0);
    (void)state_.role.transition(Role::promoting, "promote requested");
    // Locals, not braced lists, inside co_await: GCC 12 rejects the latter.
    std::vector<std::optional<std::string>> params = {std::to_string(static_cast<int>(timeout))};
    auto promoted = co_await session.query("SELECT pg_promote(true, $1)", kSqlTimeout, params);
    if (!promoted || pg_value(promoted->get(), 0, 0).value_or("f") != "t") {
        (void)state_.role.transition(Role::replica, "promotion failed");
        co_return make_error("promotion did not finish: " +
                                 (promoted ? std::string("timeout") : promoted.error().message),
                             500);
    }
    // A checkpoint right away: a former primary can pg_rewind against us only
    // once our control file names the new timeline.
    auto ckpt = co_await session.query("CHECKPOINT", kSqlTimeout);
    if (!ckpt)
        log::warn("commands", "checkpoint after promotion failed",
                  {{"error", ckpt.error().message}});
    auto info = co_await session.query(
        "SELECT timeline_id, pg_current_wal_lsn()::text FROM pg_control_checkpoint()", kSqlTimeout);
    prepared_->replica = false;
    prepared_->persistent.primary_conninfo.clear();
    if (body.contains("members"))
        prepared_->persistent.members = body["members"].get<std::vector<std::string>>();
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (auto st = write_managed_files(cfg_, *prepared_); !st)
        co_return make_error(st.error().message, 500);
    // Seen by the command itself: probes need not wait for the next check.
    state_.pg.in_recovery = false;
    state_.pg.streaming = false;
    state_.setup_done = true;  // the roles came with the data
    (void)state_.role.transition(Role::primary, "promoted");
    monitor_.poke();
    nlohmann::json out = {{"promoted", true}};
    if (info) {
        out["timeline"] = std::stoi(pg_value(info->get(), 0, 0).value_or("0"));
        out["lsn"] = pg_value(info->get(), 0, 1).value_or("");
    }
    co_return changed(state_, out);
}

awaitable<CommandResult_> Daemon::do_fence() {
    Role role = state_.role.current();
    if (role == Role::fenced) co_return nlohmann::json{{"changed", false}, {"role", "fenced"}};
    (void)state_.role.transition(Role::fencing, "fence requested");
    prepared_->persistent.fenced = true;
    // Persisted before postgres stops: a crash in between still comes back fenced.
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (supervisor_.running()) co_await supervisor_.stop(StopMode::fast);
    (void)state_.role.transition(Role::fenced, "fenced");
    monitor_.poke();
    co_return changed(state_);
}

awaitable<CommandResult_> Daemon::do_unfence() {
    if (state_.role.current() != Role::fenced) co_return conflict("the instance is not fenced");
    if (prepared_->replica && prepared_->persistent.primary_conninfo.empty())
        co_return conflict("a fenced replica without an upstream needs follow, not unfence");
    if (!prepared_->replica && !prepared_->persistent.lease_members.empty()) {
        // The same gate as at start-up: never a second writable primary.
        std::vector<PeerView> peers;
        auto verdict = co_await start_gate(peers);
        if (verdict == StartVerdict::stand_down)
            co_return conflict(
                "another member is primary or has a newer term; demote this instance instead");
        if (verdict == StartVerdict::wait)
            co_return make_error("too few members answer to serve as primary", 503);
    }
    prepared_->persistent.fenced = false;
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (prepared_->replica) co_await ensure_own_slot(prepared_->persistent.primary_conninfo);
    (void)state_.role.transition(Role::starting, "unfenced");
    if (auto st = write_managed_files(cfg_, *prepared_); !st)
        co_return make_error(st.error().message, 500);
    if (auto st = supervisor_.start(); !st) co_return make_error(st.error().message, 500);
    monitor_.poke();
    co_return changed(state_);
}

awaitable<CommandResult_> Daemon::do_replication(const nlohmann::json& body) {
    if (state_.role.current() != Role::primary || !supervisor_.running())
        co_return conflict("synchronous replication is set on a running primary (role " +
                           std::string(to_string(state_.role.current())) + ")");
    auto spec = parse_sync_spec(body["synchronous"]);
    if (!spec) co_return make_error(spec.error().message, 400);
    prepared_->persistent.synchronous = *spec;
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (auto st = write_managed_files(cfg_, *prepared_); !st)
        co_return make_error(st.error().message, 500);
    // synchronous_standby_names takes effect on reload; commits waiting for
    // a standby that left the set are released by it.
    reload_all();
    monitor_.poke();
    nlohmann::json names = nullptr;
    if (*spec) names = synchronous_standby_names(**spec);
    co_return changed(state_,
                      {{"synchronous", to_json(*spec)}, {"synchronous_standby_names", names}});
}

awaitable<std::string> Daemon::control_field(const std::string& label) {
    SpawnOptions controldata;
    controldata.argv = {cfg_.pg_bin + "/pg_controldata", cfg_.pgdata};
    controldata.deadline = std::chrono::seconds(30);  // reads one 8 kB file
    auto control = co_await run_command(reaper_, controldata, "commands");
    if (!control || !control->success()) co_return std::string();
    std::smatch m;
    std::regex re(label + R"(:\s+(\S+))");
    if (!std::regex_search(control->output, m, re)) co_return std::string();
    co_return m[1].str();
}

awaitable<Status> Daemon::check_upstream(const std::string& upstream) {
    auto conninfo = upstream_conninfo(cfg_, *prepared_, upstream);
    if (!conninfo) co_return make_error(conninfo.error().message, 400);
    PgSession session(io_.get_executor());
    if (auto st =
            co_await session.connect(*conninfo + " replication=true", std::chrono::seconds(10));
        !st)
        co_return make_error(
            "the new primary is not reachable for replication: " + st.error().message, 502);
    auto r = co_await session.query("IDENTIFY_SYSTEM", std::chrono::seconds(10));
    if (!r)
        co_return make_error("IDENTIFY_SYSTEM failed on the new primary: " + r.error().message,
                             502);
    std::string theirs = pg_value(r->get(), 0, 0).value_or("");
    std::string ours = co_await control_field("Database system identifier");
    if (ours.empty()) co_return make_error("cannot read the local system identifier", 500);
    if (ours != theirs)
        co_return make_error("the new primary belongs to another cluster (system identifier " +
                                 theirs + ", ours " + ours + ")",
                             409);
    co_return Ok{};
}

awaitable<Status> Daemon::rewind_from(const std::string& upstream) {
    auto conninfo = upstream_conninfo(cfg_, *prepared_, upstream);
    if (!conninfo) co_return conninfo.error();
    // pg_rewind copies the source's files, ours included: keep our state aside.
    auto stash = stash_state_dir(cfg_);
    if (!stash) co_return stash.error();
    SpawnOptions opts;
    opts.argv = {cfg_.pg_bin + "/pg_rewind", "--target-pgdata=" + cfg_.pgdata,
                 "--source-server=" + *conninfo + " dbname=postgres", "--progress"};
    opts.parent_death_signal = SIGTERM;
    // With --progress it reports as it copies: silence means it is stuck.
    opts.stall_deadline = cfg_.copy_stall_timeout;
    auto r = co_await run_command(reaper_, opts, "pg_rewind");
    if (auto st = restore_state_dir(cfg_, *stash); !st) co_return st;
    if (!r) co_return r.error();
    if (!r->success())
        co_return make_error("pg_rewind " + describe_wait_status(r->wait_status) + ": " +
                             r->output);
    co_return Ok{};
}

awaitable<CommandResult_> Daemon::after_failed_rewind(const Error& why, const std::string& upstream,
                                                      nlohmann::json out) {
    // Fenced first, persisted: whatever happens next, this instance does not
    // come back as a writable primary on its own.
    prepared_->persistent.fenced = true;
    (void)save_persistent();
    if (state_.role.current() != Role::fenced)
        (void)state_.role.transition(Role::fenced, "rewind failed");
    state_.last_error = why.message;
    if (!cfg_.reclone_on_rewind_failure)
        co_return make_error(why.message + "; the instance stays fenced", 500);
    if (auto st = co_await reclone_from(upstream); !st) {
        state_.last_error = st.error().message;
        co_return make_error(why.message + "; re-cloning failed too: " + st.error().message +
                                 "; the instance stays fenced",
                             500);
    }
    out["rewound"] = false;
    out["recloned"] = true;
    if (auto st = start_as_replica(upstream); !st) co_return make_error(st.error().message, 500);
    co_return changed(state_, out);
}

awaitable<Status> Daemon::reclone_from(const std::string& upstream) {
    auto password = fs::read_secret(cfg_.replication_password_file);
    if (!password) co_return password.error();
    // Our identity (term, passwords, certificates) outlives the old data.
    auto stash = stash_state_dir(cfg_);
    if (!stash) co_return stash.error();
    log::warn("commands",
              "--on-rewind-failure reclone: replacing the data directory with a base backup",
              {{"pgdata", cfg_.pgdata}, {"upstream", public_upstream(upstream)}});
    // The contents, not the directory: it is often a mount point.
    if (auto st = fs::clear_directory(cfg_.pgdata); !st) co_return st;
    state_.clone_progress = 0;
    auto cloned = co_await clone_replica(cfg_, reaper_, upstream, *password,
                                         [this](int pct) { state_.clone_progress = pct; });
    // Put our state back either way: a failed clone leaves a fenced instance
    // that still knows its term.
    if (auto st = restore_state_dir(cfg_, *stash); !st) co_return st;
    if (!cloned) co_return cloned;
    state_.setup_done = true;  // the roles came with the data
    co_return Ok{};
}

awaitable<void> Daemon::ensure_own_slot(const std::string& upstream) {
    // The primary keeps slots for the members it is told about; creating ours
    // as well covers a primary that has not been told yet.
    auto conninfo = upstream_conninfo(cfg_, *prepared_, upstream);
    if (!conninfo) co_return;
    if (auto st = co_await ensure_upstream_slot(*conninfo, slot_name_for(cfg_.name)); !st)
        log::warn("replication", "cannot ensure our slot on the new primary",
                  {{"error", st.error().message}});
}

Status Daemon::start_as_replica(const std::string& upstream) {
    if (auto st = fs::write_file_atomic(fs::join(cfg_.pgdata, "standby.signal"), "", 0600); !st)
        return st;
    prepared_->replica = true;
    prepared_->persistent.primary_conninfo = upstream;
    prepared_->persistent.fenced = false;
    if (auto st = save_persistent(); !st) return st;
    if (auto st = write_managed_files(cfg_, *prepared_); !st) return st;
    if (auto st = clear_stale_pid_file(cfg_.pgdata); !st) return st;
    (void)state_.role.transition(Role::starting, "starting as a replica");
    auto st = supervisor_.start();
    monitor_.poke();
    return st;
}

awaitable<CommandResult_> Daemon::do_demote(const nlohmann::json& body) {
    // A fenced primary (fenced by hand, or by itself on a lapsed lease) is
    // stopped already and rejoins through demote as well.
    bool fenced_primary = state_.role.current() == Role::fenced && !prepared_->replica;
    if (!fenced_primary && (state_.role.current() != Role::primary || !supervisor_.running()))
        co_return conflict("only a running or fenced primary can be demoted (role " +
                           std::string(to_string(state_.role.current())) + ")");
    std::string upstream = body.value("primary_conninfo", std::string());
    if (!upstream.empty())
        if (auto st = co_await check_upstream(upstream); !st) co_return st.error();

    (void)state_.role.transition(Role::demoting, "demote requested");
    state_.lease_expires.reset();
    if (supervisor_.running()) {
        {
            PgSession session(io_.get_executor());
            if (co_await session.connect(monitor_.local_conninfo(), std::chrono::seconds(5)))
                (void)co_await session.query("CHECKPOINT", kSqlTimeout);
        }
        // Fast shutdown sends all WAL to the standbys before the postmaster
        // exits; after --fast-shutdown-timeout it becomes immediate.
        co_await supervisor_.stop(StopMode::fast);
    }
    std::string checkpoint_lsn = co_await control_field("Latest checkpoint location");
    nlohmann::json out = {{"demoted", true}, {"shutdown_checkpoint_lsn", checkpoint_lsn}};

    if (upstream.empty()) {
        // No new primary yet: a fenced replica that waits for follow.
        if (auto st = fs::write_file_atomic(fs::join(cfg_.pgdata, "standby.signal"), "", 0600); !st)
            co_return make_error(st.error().message, 500);
        prepared_->replica = true;
        prepared_->persistent.primary_conninfo.clear();
        prepared_->persistent.fenced = true;
        if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
        (void)state_.role.transition(Role::fenced, "demoted without a new primary");
        co_return changed(state_, out);
    }
    if (auto st = co_await rewind_from(upstream); !st)
        co_return co_await after_failed_rewind(st.error(), upstream, out);
    out["rewound"] = true;
    co_await ensure_own_slot(upstream);
    if (auto st = start_as_replica(upstream); !st) co_return make_error(st.error().message, 500);
    co_return changed(state_, out);
}

awaitable<CommandResult_> Daemon::do_follow(const nlohmann::json& body) {
    Role role = state_.role.current();
    bool fenced_replica = role == Role::fenced && prepared_->replica;
    if (role != Role::replica && !fenced_replica)
        co_return conflict("only a replica can follow (role " + std::string(to_string(role)) + ")");
    std::string upstream = body["primary_conninfo"].get<std::string>();
    if (auto st = co_await check_upstream(upstream); !st) co_return st.error();
    if (role == Role::replica && co_await can_follow_by_reload(upstream)) {
        if (co_await follow_by_reload(upstream))
            co_return changed(state_,
                              {{"following", public_upstream(upstream)}, {"method", "reload"}});
        log::warn("commands",
                  "the WAL receiver did not stream from the new upstream after "
                  "a reload; restarting with a rewind");
    }
    if (supervisor_.running()) {
        (void)state_.role.transition(Role::stopping, "follow requested");
        co_await supervisor_.stop(StopMode::fast);
        (void)state_.role.transition(Role::stopped, "follow requested");
    }
    // pg_rewind finds out by itself whether the timelines forked; when they
    // did not it changes nothing.
    nlohmann::json out = {{"following", public_upstream(upstream)}, {"method", "restart"}};
    if (auto st = co_await rewind_from(upstream); !st)
        co_return co_await after_failed_rewind(st.error(), upstream, out);
    co_await ensure_own_slot(upstream);
    if (auto st = start_as_replica(upstream); !st) co_return make_error(st.error().message, 500);
    co_return changed(state_, out);
}

awaitable<bool> Daemon::can_follow_by_reload(const std::string& upstream) {
    // primary_conninfo is reloadable from PostgreSQL 13 on.
    if (!supervisor_.running() || state_.pg.version_num < 130000) co_return false;
    PgSession local(io_.get_executor());
    if (!co_await local.connect(monitor_.local_conninfo(), std::chrono::seconds(5)))
        co_return false;
    // Our newest WAL, and its timeline: that of the newest segment file
    // holding it (the WAL receiver, which knows too, is gone when the old
    // primary is).
    auto ours = co_await local.query(
        "SELECT GREATEST(COALESCE(pg_last_wal_receive_lsn(), '0/0'),"
        " COALESCE(pg_last_wal_replay_lsn(), '0/0'))::text,"
        " (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')",
        std::chrono::seconds(10));
    if (!ours) co_return false;
    uint64_t our_lsn = parse_lsn(pg_value(ours->get(), 0, 0).value_or(""));
    uint64_t segment_size = std::stoull(pg_value(ours->get(), 0, 1).value_or("0"));
    if (our_lsn == 0 || segment_size == 0) co_return false;
    std::vector<std::optional<std::string>> suffix = {wal_segment_suffix(our_lsn, segment_size)};
    auto newest = co_await local.query(
        "SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir()"
        " WHERE name ~ '^[0-9A-F]{24}$' AND substr(name, 9) = $1",
        std::chrono::seconds(10), suffix);
    if (!newest || !pg_value(newest->get(), 0, 0)) co_return false;
    uint32_t tli = static_cast<uint32_t>(std::stoul(*pg_value(newest->get(), 0, 0)));

    auto conninfo = upstream_conninfo(cfg_, *prepared_, upstream);
    if (!conninfo) co_return false;
    PgSession remote(io_.get_executor());
    if (!co_await remote.connect(*conninfo + " replication=true", std::chrono::seconds(10)))
        co_return false;
    auto ident = co_await remote.query("IDENTIFY_SYSTEM", std::chrono::seconds(10));
    if (!ident) co_return false;
    uint32_t their_tli =
        static_cast<uint32_t>(std::stoul(pg_value(ident->get(), 0, 1).value_or("0")));
    if (their_tli == tli) co_return true;
    if (their_tli < tli) co_return false;
    auto history = co_await remote.query("TIMELINE_HISTORY " + std::to_string(their_tli),
                                         std::chrono::seconds(10));
    if (!history) co_return false;
    auto switchpoint = timeline_switchpoint(pg_value(history->get(), 0, 1).value_or(""), tli);
    log::info("commands", "checked the new upstream's timeline history",
              {{"our_timeline", tli},
               {"their_timeline", their_tli},
               {"our_lsn", our_lsn},
               {"switchpoint", switchpoint ? nlohmann::json(*switchpoint) : nlohmann::json()}});
    co_return switchpoint&&* switchpoint >= our_lsn;
}

awaitable<bool> Daemon::follow_by_reload(const std::string& upstream) {
    std::string previous = prepared_->persistent.primary_conninfo;
    prepared_->persistent.primary_conninfo = upstream;
    if (!save_persistent()) {
        prepared_->persistent.primary_conninfo = previous;
        co_return false;
    }
    co_await ensure_own_slot(upstream);
    reload_all();  // rewrites the managed conf with the new primary_conninfo
    auto target = public_upstream(upstream);
    std::string host = target.count("host") ? target["host"] : target["hostaddr"];
    std::string port = target.count("port") ? target["port"] : "5432";
    PgSession local(io_.get_executor());
    if (!co_await local.connect(monitor_.local_conninfo(), std::chrono::seconds(5)))
        co_return false;
    // The WAL receiver restarts with the new conninfo; wait for it to stream
    // from there (a fork it cannot follow shows as never streaming).
    std::vector<std::optional<std::string>> params = {host, port};
    asio::steady_timer timer(io_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = co_await local.query(
            "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'"
            " AND sender_host = $1 AND sender_port = $2::int",
            std::chrono::seconds(5), params);
        if (r && PQntuples(r->get()) == 1) {
            monitor_.poke();
            co_return true;
        }
        timer.expires_after(std::chrono::milliseconds(100));
        co_await timer.async_wait(asio::use_awaitable);
    }
    co_return false;
}

awaitable<void> Daemon::sync_slots(PgSession& session) {
    const auto& members = prepared_->persistent.members;
    std::string wanted = "{";
    for (const auto& m : members) {
        if (m == cfg_.name) continue;
        if (wanted.size() > 1) wanted += ",";
        wanted += slot_name_for(m);
    }
    wanted += "}";
    std::vector<std::optional<std::string>> params = {wanted};
    // Creates missing slots; drops inactive slots of members no longer listed
    // (only slots named like instances this cluster manages: all physical ones).
    // Extended-protocol queries take one statement each.
    auto created = co_await session.query(
        "SELECT count(pg_create_physical_replication_slot(s, true)) FROM unnest($1::text[]) s"
        " WHERE s NOT IN (SELECT slot_name FROM pg_replication_slots)",
        kSqlTimeout, params);
    if (!created)
        log::warn("replication", "cannot create slots", {{"error", created.error().message}});
    auto dropped = co_await session.query(
        "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots"
        " WHERE slot_type = 'physical' AND NOT active AND slot_name <> ALL($1::text[])",
        kSqlTimeout, params);
    if (!dropped)
        log::warn("replication", "cannot drop slots", {{"error", dropped.error().message}});
}

}  // namespace im
