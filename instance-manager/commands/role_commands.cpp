// The commands a controller sends: promote, demote, follow, fence, unfence,
// plus restart and reload. Every one is checked against the instance's
// state first and changes nothing when it does not fit.
#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "bootstrap/clone.hpp"
#include "bootstrap/data_dir.hpp"
#include "bootstrap/replication_config.hpp"
#include "bootstrap/rewind_mark.hpp"
#include "daemon/daemon.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "resolve.hpp"

namespace im {

namespace {
constexpr auto kSqlTimeout = std::chrono::seconds(60);

Error conflict(std::string msg) { return make_error(std::move(msg), 409); }

// A command of an older term: refused with the term we hold, said in a field
// the controller reads (never by searching the message).
Error stale_term(uint64_t asked, uint64_t accepted) {
    Error e = conflict("stale term " + std::to_string(asked) + ": term " +
                       std::to_string(accepted) + " was already accepted");
    e.fields = {{"reason", "stale_term"}, {"accepted_term", std::to_string(accepted)}};
    return e;
}

// A role change a command's path needs, checked: an illegal move refuses the
// command (409) and changes nothing.
Status enter(RoleMachine& role, Role to, const std::string& reason) {
    if (auto st = role.transition(to, reason); !st) return conflict(st.error().message);
    return Ok{};
}

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

awaitable<CommandAnswer> Daemon::run(const std::string& command, const nlohmann::json& body) {
    // A fence is taken while the manager stops (a deleted pod): it turns a
    // smart shutdown that idle sessions would hold up into a fast one, so a
    // failover need not wait for the old primary's smart shutdown timeout.
    if (shutting_down_ && command != "fence") co_return conflict("the manager is shutting down");
    if (!prepared_ || !store_) co_return conflict("the instance is still bootstrapping");
    if (state_.restoring && command != "fence" && command != "unfence")
        co_return conflict(
            "restoring from the repository: it replays to its target and promotes itself there");
    auto slot = commands_.try_take();
    if (!slot) co_return conflict("busy: another command is running");
    // The term rule, the same for every command: an older term is refused; the
    // same command again in its term is answered without acting; the term
    // counts once the command was carried out.
    std::optional<uint64_t> term;
    auto& p = prepared_->persistent;
    if (body.contains("term")) {
        term = body["term"].get<uint64_t>();
        switch (judge_term(p, command_key(command, *term, body), *term)) {
            case TermVerdict::stale:
                co_return stale_term(*term, p.term);
            case TermVerdict::repeat:
                if (command == "members") break;  // addresses change within a term
                co_return nlohmann::json{{"changed", false},
                                         {"role", to_string(state_.role.current())},
                                         {"term", *term}};
            case TermVerdict::fresh:
                break;
        }
    }
    std::optional<CommandAnswer> r;
    if (command == "restart")
        r.emplace(co_await do_restart(body));
    else if (command == "reload")
        r.emplace(co_await do_reload());
    else if (command == "promote")
        r.emplace(co_await do_promote(body));
    else if (command == "demote")
        r.emplace(co_await do_demote(body));
    else if (command == "follow")
        r.emplace(co_await do_follow(body));
    else if (command == "backup")
        r.emplace(co_await do_backup(body));
    else if (command == "fence")
        r.emplace(co_await do_fence());
    else if (command == "unfence")
        r.emplace(co_await do_unfence());
    else if (command == "replication")
        r.emplace(co_await do_replication(body));
    else if (command == "members")
        r.emplace(co_await do_members(body));
    else
        co_return make_error("unknown command " + command, 404);
    // Addresses in the same term write no term: the last command's key stays
    // that of the last role command.
    if (*r && term && (command != "members" || *term > p.term)) {
        p.term = *term;
        p.last_command = command_key(command, *term, body);
        if (auto st = save_persistent(); !st)
            co_return make_error("cannot persist the term: " + st.error().message, 500);
    }
    if (*r && term) (*r)->operator[]("term") = *term;
    co_return std::move(*r);
}

awaitable<CommandAnswer> Daemon::do_restart(const nlohmann::json& body) {
    if (state_.role.current() == Role::fenced) co_return conflict("the instance is fenced");
    if (restart_pending_ || !supervisor_.running())
        co_return conflict("postgres is not running (starting or restarting)");
    // A term below one this member promised comes from a controller that a
    // newer one replaced (it may not have sent this member a command yet).
    if (auto t = body.find("term");
        t != body.end() && t->get<uint64_t>() < authority_.durable().promised_term)
        co_return stale_term(t->get<uint64_t>(), authority_.durable().promised_term);
    // Asked for the postgres that started at a given time: one started since
    // has already restarted (the asker read an old status).
    if (auto t = body.find("start_time"); t != body.end() && *t != state_.pg.pg_start_time)
        co_return nlohmann::json{
            {"changed", false},
            {"restarted", false},
            {"reason", "postgres started again since (at " + state_.pg.pg_start_time + ")"}};
    if (auto st = enter(state_.role, Role::stopping, "restart requested"); !st)
        co_return st.error();
    ScopedFlag restarting{state_.restart_requested};
    co_await supervisor_.stop(StopMode::fast);
    (void)state_.role.transition(Role::stopped, "restart requested");
    std::string reason = "restart requested";
    if (auto st = co_await gate_.open(StartCause::restart_command, reason); !st)
        co_return st.error();
    co_return nlohmann::json{{"changed", true}, {"restarted", true}, {"pid", supervisor_.pid()}};
}

awaitable<CommandAnswer> Daemon::do_reload() {
    if (!supervisor_.running()) co_return conflict("postgres is not running");
    reload_all();
    co_return nlohmann::json{{"changed", true}, {"reloaded", true}};
}

awaitable<CommandAnswer> Daemon::do_promote(const nlohmann::json& body) {
    Role role = state_.role.current();
    auto& p = prepared_->persistent;
    const uint64_t term = body["term"].get<uint64_t>();
    const bool member = authority_.membership().version != 0;
    if (role == Role::fenced)
        co_return conflict("cannot promote a fenced instance; unfence it first");
    if (body.contains("member_urls"))
        p.member_urls = body["member_urls"].get<std::map<std::string, std::string>>();
    if (role == Role::primary) {
        // A primary that runs without the write right (it bootstrapped the
        // cluster, before any promise round) takes it for `term`: from then on
        // it writes only with a majority's grants.
        if (!member || p.write_term != 0 || !supervisor_.running())
            co_return conflict("the instance is already a primary" +
                               std::string(p.write_term ? " of term " + std::to_string(p.write_term)
                                                        : std::string()));
        auto verdict = co_await take_write_right(term);
        if (verdict != quorum::GatherVerdict::granted) {
            keeper_.drop();
            sync_watchdog();
            co_return make_error(
                "no majority granted the write right for term " + std::to_string(term), 503);
        }
        p.write_term = term;
        if (body.contains("members")) p.members = body["members"].get<std::vector<std::string>>();
        if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
        co_return changed(state_, {{"promoted", false}, {"write_right", true}});
    }
    if (role != Role::replica || !state_.pg.accepting)
        co_return conflict("only a running replica can be promoted (role " +
                           std::string(to_string(role)) + ")");

    PgSession session(io_.get_executor());
    if (auto st = co_await monitor_.connect_local(session, std::chrono::seconds(5)); !st)
        co_return st.error();
    std::optional<authority::QuorumSet> stale_set;
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
    if (body.contains("synchronous")) {
        // The new primary's standbys, in place before it is writable (a
        // replica ignores the setting): its first commit already waits.
        auto spec = parse_sync_spec(body["synchronous"]);
        if (!spec) co_return make_error(spec.error().message, 400);
        stale_set = configured_set();
        p.synchronous = *spec;
        if (auto st = write_managed_files(cfg_, *prepared_); !st)
            co_return make_error(st.error().message, 500);
        reload_all();
        // In force before pg_promote: the first commit waits already. From
        // no set to one, the checkpointer must have taken it too (it is what
        // makes commits wait at all): a CHECKPOINT (a restartpoint here) then.
        const std::string wanted = *spec ? synchronous_standby_names(**spec) : "";
        if (auto st = co_await reload_barrier(session, wanted, !stale_set && *spec); !st)
            co_return st.error();
    }
    if (member) {
        // The write right before the promotion: postgres is writable only
        // while a majority's grants for this term run (the promise round the
        // controller made waited out every older grant).
        authority::DurabilityRecord inherited;
        if (body.contains("durability")) inherited = authority::durability_from(body["durability"]);
        // The setting this replica had until now stays in the record too,
        // until the switch completes: a walsender may have read it.
        if (stale_set) inherited.sets = authority::switching_sets(inherited.sets, stale_set);
        auto verdict = co_await take_write_right(term, inherited);
        switch_since_ = kSwitchPending;  // until postgres is promoted
        if (verdict != quorum::GatherVerdict::granted) {
            keeper_.drop();
            sync_watchdog();
            co_return make_error(
                verdict == quorum::GatherVerdict::superseded
                    ? "a member promised a term newer than " + std::to_string(term)
                    : "no majority granted the write right for term " + std::to_string(term),
                503);
        }
    }
    double timeout = body.value("timeout_s", 60.0);
    if (auto st = enter(state_.role, Role::promoting, "promote requested"); !st) {
        keeper_.drop();
        sync_watchdog();
        co_return st.error();
    }
    if (member) {
        // Persisted before pg_promote: a kill after it (standby.signal gone)
        // comes back as a primary of this term, which starts only with its
        // grants, never as a primary without a term.
        p.write_term = term;
        if (auto st = save_persistent(); !st) {
            p.write_term = 0;
            keeper_.drop();
            sync_watchdog();
            (void)state_.role.transition(Role::replica, "promotion not started");
            co_return make_error("cannot persist the write term: " + st.error().message, 500);
        }
    }
    // Locals, not braced lists, inside co_await: GCC 12 rejects the latter.
    std::vector<std::optional<std::string>> params = {std::to_string(static_cast<int>(timeout))};
    auto promoted = co_await session.query("SELECT pg_promote(true, $1)", kSqlTimeout, params);
    if (!promoted || pg_value(promoted->get(), 0, 0).value_or("f") != "t") {
        // The right goes (a replica does not hold grants others wait for);
        // write_term stays, so a restart after a late promotion needs the
        // grants, and a promotion noticed later without them is stopped
        // (after_check).
        keeper_.drop();
        sync_watchdog();
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
    p.primary_conninfo.clear();
    // Every commit the old primary acknowledged lies before this: the switch
    // to our set completes once enough of it flushed past here.
    switch_since_ = info ? parse_lsn(pg_value(info->get(), 0, 1).value_or("0/0")) : 0;
    if (body.contains("members")) p.members = body["members"].get<std::vector<std::string>>();
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (auto st = write_managed_files(cfg_, *prepared_); !st)
        co_return make_error(st.error().message, 500);
    // Seen by the command itself: probes need not wait for the next check.
    state_.pg.in_recovery = false;
    state_.pg.streaming = false;
    state_.setup_done = true;  // the roles came with the data
    (void)state_.role.transition(Role::primary, "promoted");
    monitor_.poke();
    nlohmann::json out = {{"promoted", true}, {"write_right", member}};
    if (info) {
        out["timeline"] = std::stoi(pg_value(info->get(), 0, 0).value_or("0"));
        out["lsn"] = pg_value(info->get(), 0, 1).value_or("");
    }
    co_return changed(state_, out);
}

awaitable<CommandAnswer> Daemon::do_fence() {
    Role role = state_.role.current();
    if (role == Role::fenced) co_return nlohmann::json{{"changed", false}, {"role", "fenced"}};
    if (auto st = enter(state_.role, Role::fencing, "fence requested"); !st) co_return st.error();
    prepared_->persistent.fenced = true;
    // Persisted before postgres stops: a crash in between still comes back fenced.
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (supervisor_.running()) co_await supervisor_.stop(StopMode::fast);
    // The right is not given back (that is the demote's): an unfence of this
    // primary asks for the same term's grants again.
    keeper_.drop();
    sync_watchdog();
    (void)state_.role.transition(Role::fenced, "fenced");
    monitor_.poke();
    co_return changed(state_);
}

awaitable<CommandAnswer> Daemon::do_unfence() {
    if (state_.role.current() != Role::fenced) co_return conflict("the instance is not fenced");
    if (prepared_->replica && prepared_->persistent.primary_conninfo.empty())
        co_return conflict("a fenced replica without an upstream needs follow, not unfence");
    // The gate asks the members first (the same rule as at start-up: never a
    // second writable primary); the fence is lifted only once it agrees.
    // Named, not temporaries in the co_await: GCC 12 destroys such temporaries twice.
    StartGate::Prepare lift_fence = [this]() -> awaitable<Status> {
        prepared_->persistent.fenced = false;
        if (auto saved = save_persistent(); !saved) co_return saved;
        if (prepared_->replica) co_await ensure_own_slot(prepared_->persistent.primary_conninfo);
        co_return write_managed_files(cfg_, *prepared_);
    };
    std::string reason = "unfenced";
    auto st = co_await gate_.open(StartCause::unfence, reason, std::move(lift_fence));
    if (!st) co_return st.error();
    co_return changed(state_);
}

awaitable<CommandAnswer> Daemon::do_replication(const nlohmann::json& body) {
    if (state_.role.current() != Role::primary || !supervisor_.running())
        co_return conflict("synchronous replication is set on a running primary (role " +
                           std::string(to_string(state_.role.current())) + ")");
    auto spec = parse_sync_spec(body["synchronous"]);
    if (!spec) co_return make_error(spec.error().message, 400);
    PgSession session(io_.get_executor());
    if (auto st = co_await monitor_.connect_local(session, std::chrono::seconds(5)); !st)
        co_return st.error();
    if (auto st = co_await switch_synchronous(*spec, session); !st) co_return st.error();
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

awaitable<Status> Daemon::rewind_from(const std::string& upstream, bool dry_run) {
    auto conninfo = upstream_conninfo(cfg_, *prepared_, upstream);
    if (!conninfo) co_return conninfo.error();
    // Postgres is down here: a postmaster.pid left by a killed postmaster (it
    // may even be empty, killed as it wrote it) would fail pg_rewind's
    // single-user crash recovery ("lock file is empty").
    if (auto st = clear_stale_pid_file(cfg_.pgdata); !st) co_return st.error();
    // pg_rewind copies the source's files, ours included: keep our state aside.
    std::optional<std::string> stash;
    if (!dry_run) {
        auto made = stash_state_dir(cfg_);
        if (!made) co_return made.error();
        stash = *made;
    }
    SpawnOptions opts;
    opts.argv = {cfg_.pg_bin + "/pg_rewind", "--target-pgdata=" + cfg_.pgdata,
                 "--source-server=" + *conninfo + " dbname=postgres", "--progress"};
    if (dry_run) opts.argv.push_back("--dry-run");
    opts.parent_death_signal = SIGTERM;
    // With --progress it reports as it copies: silence means it is stuck.
    opts.stall_deadline = cfg_.copy_stall_timeout;
    auto r = co_await run_command(reaper_, opts, "pg_rewind");
    if (stash)
        if (auto st = restore_state_dir(cfg_, *stash); !st) co_return st;
    if (!r) co_return r.error();
    if (!r->success())
        co_return make_error("pg_rewind " + describe_wait_status(r->wait_status) + ": " +
                             r->output);
    co_return Ok{};
}

awaitable<Status> Daemon::rewind_for_rejoin(const std::string& upstream) {
    auto mark = read_rewind_mark(cfg_);
    if (!mark) co_return mark.error();
    if (*mark)
        co_return make_error(
            "a rewind or re-clone of this data directory was interrupted earlier; it is not "
            "rewound again");
    // From here until it is rewound whole, a kill leaves the mark: that
    // directory is then only ever replaced by a new clone.
    if (auto st = set_rewind_mark(cfg_, upstream); !st) co_return st;
    if (auto st = co_await rewind_from(upstream, false); !st) {
        // pg_rewind copies nothing before it says how much it will copy: a
        // failure before that (the source does not answer yet, a crash
        // recovery of the target) left the directory whole, and the rejoin
        // may simply be tried again. (A dry run cannot tell: it skips the
        // target's crash recovery and then refuses an unclean shutdown.)
        if (st.error().message.find("need to copy") == std::string::npos)
            if (auto cleared = clear_rewind_mark(cfg_); !cleared) co_return cleared;
        co_return st;
    }
    // Rewound whole, our own state back: what is left to do (standby.signal,
    // the start) may be repeated; the instance stays fenced until it is done.
    // A standby before the mark goes: a kill after this point finds a
    // rewound directory that can only start read-only.
    if (auto st = fs::write_file_atomic(fs::join(cfg_.pgdata, "standby.signal"), "", 0600); !st)
        co_return st;
    prepared_->replica = true;
    if (auto st = save_persistent(); !st) co_return st;
    co_return clear_rewind_mark(cfg_);
}

awaitable<CommandAnswer> Daemon::after_failed_rewind(const Error& why, const std::string& upstream,
                                                     nlohmann::json out) {
    // Fenced first, persisted: whatever happens next, this instance does not
    // come back as a writable primary on its own.
    if (auto st = persist_fence(why.message); !st)
        co_return make_error(why.message + "; cannot persist the fence: " + st.error().message,
                             500);
    if (state_.role.current() != Role::fenced)
        (void)state_.role.transition(Role::fenced, "rewind failed");  // from demoting or stopped
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
    if (auto st = co_await start_as_replica(upstream); !st) co_return st.error();
    co_return changed(state_, out);
}

awaitable<Status> Daemon::reclone_from(const std::string& upstream) {
    auto password = fs::read_secret(cfg_.replication_password_file);
    if (!password) co_return password.error();
    // Marked before anything is cleared: a kill from here on comes back
    // fenced and clones again from `upstream`, never initdb over the empty
    // directory (the rewind may have failed before it set the mark).
    if (auto st = set_rewind_mark(cfg_, upstream); !st) co_return st;
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
    // A complete standby (clone_replica wrote standby.signal): the rejoin's mark goes.
    if (auto st = clear_rewind_mark(cfg_); !st) co_return st;
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

awaitable<Status> Daemon::start_as_replica(const std::string& upstream) {
    // Named, not temporaries in the co_await: GCC 12 destroys such temporaries twice.
    StartGate::Prepare standby_files = [this, upstream]() -> awaitable<Status> {
        if (auto st = fs::write_file_atomic(fs::join(cfg_.pgdata, "standby.signal"), "", 0600); !st)
            co_return st;
        prepared_->replica = true;
        prepared_->persistent.primary_conninfo = upstream;
        prepared_->persistent.fenced = false;
        if (auto st = save_persistent(); !st) co_return st;
        co_return write_managed_files(cfg_, *prepared_);
    };
    std::string reason = "starting as a replica";
    co_return co_await gate_.open(StartCause::as_replica, reason, std::move(standby_files));
}

awaitable<CommandAnswer> Daemon::do_demote(const nlohmann::json& body) {
    // A fenced primary (fenced by hand, or stopped by the write authority) is
    // stopped already and rejoins through demote as well.
    bool fenced_primary = state_.role.current() == Role::fenced && !prepared_->replica;
    if (!fenced_primary && (state_.role.current() != Role::primary || !supervisor_.running()))
        co_return conflict("only a running or fenced primary can be demoted (role " +
                           std::string(to_string(state_.role.current())) + ")");
    std::string upstream = body.value("primary_conninfo", std::string());
    if (!upstream.empty())
        if (auto st = co_await check_upstream(upstream); !st) co_return st.error();

    if (auto st = enter(state_.role, Role::demoting, "demote requested"); !st) co_return st.error();
    // Fenced first, persisted: a kill anywhere in the demote leaves an
    // instance that comes back down, never a writable primary.
    // write_term goes with it: this instance never asks for that term's grants
    // again, which is what makes giving them back below safe.
    const uint64_t held_term = prepared_->persistent.write_term;
    prepared_->persistent.write_term = 0;
    if (auto st = persist_fence("demote in progress"); !st) {
        prepared_->persistent.write_term = held_term;
        co_return make_error(st.error().message, 500);
    }
    if (supervisor_.running()) {
        {
            PgSession session(io_.get_executor());
            if (co_await monitor_.connect_local(session, std::chrono::seconds(5)))
                (void)co_await session.query("CHECKPOINT", kSqlTimeout);
        }
        // Fast shutdown sends all WAL to the standbys before the postmaster
        // exits; after --fast-shutdown-timeout it becomes immediate.
        co_await supervisor_.stop(StopMode::fast);
    }
    // Postgres is down: the members may forget our grants, so that the next
    // promotion (a switchover) need not wait them out.
    co_await give_up_write_right();
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
        if (auto st = enter(state_.role, Role::fenced, "demoted without a new primary"); !st)
            co_return st.error();
        co_return changed(state_, out);
    }
    if (auto st = co_await rewind_for_rejoin(upstream); !st)
        co_return co_await after_failed_rewind(st.error(), upstream, out);
    out["rewound"] = true;
    co_await ensure_own_slot(upstream);
    if (auto st = co_await start_as_replica(upstream); !st) co_return st.error();
    co_return changed(state_, out);
}

awaitable<CommandAnswer> Daemon::do_follow(const nlohmann::json& body) {
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
        // Fenced while the directory is rewritten: a kill comes back down.
        // Persisted before the role moves: a failed write leaves the replica
        // running as it was, not stuck in `stopping`.
        if (auto st = persist_fence("follow in progress"); !st)
            co_return make_error(st.error().message, 500);
        if (auto st = enter(state_.role, Role::stopping, "follow requested"); !st)
            co_return st.error();
        co_await supervisor_.stop(StopMode::fast);
        (void)state_.role.transition(Role::stopped, "follow requested");
    }
    // pg_rewind finds out by itself whether the timelines forked; when they
    // did not it changes nothing.
    nlohmann::json out = {{"following", public_upstream(upstream)}, {"method", "restart"}};
    if (auto st = co_await rewind_for_rejoin(upstream); !st)
        co_return co_await after_failed_rewind(st.error(), upstream, out);
    co_await ensure_own_slot(upstream);
    if (auto st = co_await start_as_replica(upstream); !st) co_return st.error();
    co_return changed(state_, out);
}

awaitable<bool> Daemon::can_follow_by_reload(const std::string& upstream) {
    // primary_conninfo is reloadable from PostgreSQL 13 on.
    if (!supervisor_.running() || state_.pg.version_num < 130000) co_return false;
    PgSession local(io_.get_executor());
    if (!co_await monitor_.connect_local(local, std::chrono::seconds(5))) co_return false;
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
    if (!co_await monitor_.connect_local(local, std::chrono::seconds(5))) co_return false;
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
    auto& p = prepared_->persistent;
    std::set<std::string> wanted;
    for (const auto& m : p.members)
        if (m != cfg_.name) wanted.insert(slot_name_for(m));
    std::set<std::string> managed(p.managed_slots.begin(), p.managed_slots.end());
    // Slots of members no longer listed may go; slots never ours stay.
    std::set<std::string> retired;
    for (const auto& s : managed)
        if (!wanted.count(s)) retired.insert(s);
    auto pg_array = [](const std::set<std::string>& names) {
        std::string out = "{";
        for (const auto& n : names) out += (out.size() > 1 ? "," : "") + n;
        return out + "}";
    };
    std::vector<std::optional<std::string>> want_param = {pg_array(wanted)};
    std::vector<std::optional<std::string>> retired_param = {pg_array(retired)};
    // Extended-protocol queries take one statement each.
    auto created = co_await session.query(
        "SELECT count(pg_create_physical_replication_slot(s, true)) FROM unnest($1::text[]) s"
        " WHERE s NOT IN (SELECT slot_name FROM pg_replication_slots)",
        kSqlTimeout, want_param);
    if (!created)
        log::warn("replication", "cannot create slots", {{"error", created.error().message}});
    auto dropped = co_await session.query(
        "SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_type = 'physical' AND NOT active AND slot_name = ANY($1::text[])",
        kSqlTimeout, retired_param);
    if (!dropped)
        log::warn("replication", "cannot drop slots", {{"error", dropped.error().message}});
    std::set<std::string> next = wanted;
    for (const auto& s : retired) next.insert(s);
    if (dropped)
        for (int i = 0; i < PQntuples(dropped->get()); ++i) {
            auto name = pg_value(dropped->get(), i, 0).value_or("");
            log::info("replication", "dropped the slot of a former member", {{"slot", name}});
            next.erase(name);
        }
    if (next != managed) {
        p.managed_slots.assign(next.begin(), next.end());
        if (auto st = save_persistent(); !st)
            log::warn("replication", "cannot persist the managed slots",
                      {{"error", st.error().message}});
    }
    // A slot PostgreSQL invalidated (max_slot_wal_keep_size) keeps its
    // member from ever catching up by streaming: said, once per slot.
    std::set<std::string> lost;
    auto slots = state_.pg.replication.find("slots");
    if (slots != state_.pg.replication.end() && slots->is_array())
        for (const auto& slot : *slots) {
            if (!slot.is_object()) continue;
            auto wal = slot.find("wal_status");
            auto name = slot.find("name");
            if (wal != slot.end() && wal->is_string() && *wal == "lost" && name != slot.end() &&
                name->is_string())
                lost.insert(name->get<std::string>());
        }
    for (const auto& name : lost)
        if (!lost_slots_logged_.count(name))
            log::warn("replication",
                      "a replication slot lost the WAL its member needs "
                      "(max_slot_wal_keep_size): the member must be cloned again",
                      {{"slot", name}});
    lost_slots_logged_ = std::move(lost);
}

}  // namespace im

namespace im {

awaitable<CommandAnswer> Daemon::do_backup(const nlohmann::json& body) {
    auto req = backup::parse_backup_request(body);
    if (!req) co_return req.error();
    // A backup of this primary, or (with the primary's server named) a
    // standby backup: pgBackRest starts and stops it on the primary through
    // its server and copies the files from here. pgBackRest checks that both
    // are the stanza's database (system identifier) before it copies.
    const Role want = req->primary ? Role::replica : Role::primary;
    if (state_.role.current() != want || !state_.pg.accepting)
        co_return conflict(std::string(req->primary ? "a standby backup is taken on a replica"
                                                    : "a backup without \"primary\" is taken "
                                                      "on the primary") +
                           "; this instance is " + std::string(to_string(state_.role.current())));
    if (req->primary) {
        // The primary named must be the one this replica streams from now:
        // a stale or foreign host (a controller's old view, a typo, a host
        // to probe) is refused before pgBackRest dials anything.
        if (auto st = co_await streams_from(req->primary->host, req->primary->pg_port); !st)
            co_return conflict(st.error().message);
    }
    co_return backups_.start(*req);
}

awaitable<Status> Daemon::streams_from(const std::string& host, int port) {
    PgSession local(io_.get_executor());
    if (auto st = co_await monitor_.connect_local(local, std::chrono::seconds(5)); !st)
        co_return make_error("cannot read this replica's WAL receiver: " + st.error().message);
    auto r = co_await local.query(
        "SELECT sender_host, sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'",
        std::chrono::seconds(5));
    if (!r) co_return make_error("cannot read this replica's WAL receiver: " + r.error().message);
    if (PQntuples(r->get()) != 1)
        co_return make_error("this replica does not stream from a primary now");
    const std::string sender = pg_value(r->get(), 0, 0).value_or("");
    const std::string sender_port = pg_value(r->get(), 0, 1).value_or("");
    const std::string named = host + ":" + std::to_string(port);
    const std::string streams = sender + ":" + sender_port;
    if (sender_port != std::to_string(port))
        co_return make_error("this replica streams from " + streams + ", not from " + named);
    // Names may differ (a Service, a pod's name, an address): the same
    // address behind both is the same server.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    auto theirs = co_await resolve_host(host, deadline);
    auto ours = co_await resolve_host(sender, deadline);
    if (!theirs || !ours)
        co_return make_error("cannot tell whether " + named +
                             " is the primary this replica "
                             "streams from (" +
                             streams +
                             "): " + (!theirs ? theirs.error().message : ours.error().message));
    for (const auto& a : *theirs)
        if (std::find(ours->begin(), ours->end(), a) != ours->end()) co_return Ok{};
    co_return make_error("this replica streams from " + streams + ", not from " + named);
}

}  // namespace im
