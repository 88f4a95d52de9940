#include "backup/backup_jobs.hpp"

#include <filesystem>

#include "api/file_health.hpp"
#include "api/status_report.hpp"
#include "backup/archive_status.hpp"
#include "backup/restore.hpp"
#include "fs_util.hpp"
#include "log.hpp"

namespace im::backup {

namespace {
std::string now_iso() { return iso8601(std::chrono::system_clock::now()); }

// The repository is read again this often (and after each backup).
constexpr auto kInfoEvery = std::chrono::minutes(5);
// A stanza that could not be made ready is tried again after this.
constexpr auto kStanzaRetry = std::chrono::minutes(1);
// stanza-create, check and archive-push: a repository that hangs (a hard
// NFS mount, a stalled bucket) fails them instead of holding them for ever.
constexpr auto kToolDeadline = std::chrono::milliseconds(std::chrono::minutes(5));
}  // namespace

BackupJobs::BackupJobs(asio::any_io_executor ex, const Config& cfg, Reaper& reaper)
    : ex_(std::move(ex)), cfg_(cfg), reaper_(reaper) {}

void BackupJobs::spawn(const char* what, awaitable<void> task) {
    asio::co_spawn(ex_, std::move(task), [what](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error("backup", std::string(what) + " failed", {{"error", ex.what()}});
        } catch (...) {
        }
    });
}

awaitable<Result<std::string>> BackupJobs::run(std::vector<std::string> args, const char* what,
                                               std::chrono::milliseconds deadline) {
    auto opts = command(cfg_, std::move(args), deadline);
    auto r = co_await run_command(reaper_, opts, "backup");
    if (!r) co_return r.error();
    if (!r->success())
        co_return make_error(std::string(what) + " " + describe_wait_status(r->wait_status) + ": " +
                             error_lines(r->output));
    co_return r->output;
}

void BackupJobs::after_check(bool primary, uint32_t timeline, const nlohmann::json& archiver) {
    if (!cfg_.backups()) return;
    archiver_ = archiver;
    bool failing = archive_failing(archiver);
    if (failing != failing_) {
        failing_ = failing;
        if (failing)
            log::warn("backup", "archiving fails: WAL accumulates in pg_wal until it succeeds",
                      {{"last_failed_wal", archiver.value("last_failed_wal", nlohmann::json())},
                       {"ready_segments", archiver.value("ready_segments", 0)},
                       {"wal_bytes", archiver.value("wal_bytes", 0)}});
        else
            log::info(
                "backup", "archiving works again",
                {{"last_archived_wal", archiver.value("last_archived_wal", nlohmann::json())}});
    }
    auto now = std::chrono::steady_clock::now();
    if (primary && !stanza_ready_ && !stanza_busy_ && now >= stanza_next_try_) {
        stanza_busy_ = true;
        spawn("the stanza check", prepare_stanza());
    }
    // Not behind the stanza check: the parent's segments may be gone from
    // pg_wal by the time the repository answers again. Until every one is
    // in, tried again each minute.
    if (primary && timeline > 1 && fork_pushed_ != timeline && !fork_busy_ &&
        now >= fork_next_try_) {
        fork_busy_ = true;
        spawn("pushing the parent timeline's WAL", push_fork(timeline));
    }
    if (!info_busy_ && now >= info_next_) {
        info_busy_ = true;
        spawn("reading the repository", refresh_info());
    }
}

void BackupJobs::not_primary() { stanza_ready_ = false; }

awaitable<void> BackupJobs::prepare_stanza() {
    // stanza-create is a no-op for a stanza that exists and matches this
    // cluster; for another cluster's stanza it fails (system identifier).
    // Locals, not braced lists: GCC 12 rejects those inside co_await.
    std::vector<std::string> create = {"stanza-create"}, check = {"check"};
    auto created = co_await run(create, "pgbackrest stanza-create", kToolDeadline);
    Result<std::string> checked = created;
    // check forces a WAL switch and waits until that segment is archived
    // (pgBackRest's archive-timeout, 60 s).
    if (created) checked = co_await run(check, "pgbackrest check", kToolDeadline);
    stanza_busy_ = false;
    check_ = {{"ok", bool(checked)}, {"at", now_iso()}};
    if (!checked) {
        check_["error"] = checked.error().message;
        stanza_next_try_ = std::chrono::steady_clock::now() + kStanzaRetry;
        log::warn("backup", "the repository is not ready for this cluster",
                  {{"stanza", cfg_.backup_stanza}, {"error", checked.error().message}});
        co_return;
    }
    stanza_ready_ = true;
    info_next_ = {};  // read what the repository holds now
    log::info("backup", "the stanza is ready and archiving works",
              {{"stanza", cfg_.backup_stanza}});
}

awaitable<void> BackupJobs::refresh_info() {
    // Taken before the read runs (a backup that ends meanwhile is later than
    // it), kept only once the read succeeded: a failed read must not make the
    // last good one look fresh, or the controller's schedule would count from
    // contents that may be hours old.
    const std::string read_began = now_iso();
    auto text = co_await repository_info_json(cfg_, reaper_);
    info_busy_ = false;
    // While a backup runs, often enough to show its progress.
    info_next_ = std::chrono::steady_clock::now() +
                 (running_ ? std::chrono::seconds(10) : std::chrono::seconds(kInfoEvery));
    if (refresh_again_) {
        // A backup ended while this read ran: what it holds now is read at once.
        refresh_again_ = false;
        info_next_ = {};
    }
    if (!text) {
        info_error_ = text.error().message;
        co_return;
    }
    auto info = parse_info(*text, cfg_.backup_stanza);
    if (!info) {
        info_error_ = info.error().message;
        co_return;
    }
    info_error_.clear();
    info_ = std::move(*info);
    info_at_ = read_began;
    if (last_result_.is_object() && last_result_.value("ok", false) &&
        !last_result_.contains("label") && !info_->backups.empty())
        last_result_["label"] = info_->backups.back().label;
}

awaitable<void> BackupJobs::push_fork(uint32_t timeline) {
    std::string wal = cfg_.pgdata + "/pg_wal";
    char history_name[32];
    std::snprintf(history_name, sizeof history_name, "/%08X.history", timeline);
    auto history = fs::read_file(wal + history_name, 1 << 20);
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(wal, ec))
        files.push_back(e.path().filename().string());
    // The parent's complete segments, and every timeline's history file
    // (a later promotion or restore picks its timeline by them).
    std::vector<std::string> push =
        history ? fork_segments(files, *history, 16 * 1024 * 1024) : std::vector<std::string>{};
    size_t segments = push.size();
    for (const auto& f : files)
        if (f.size() == 16 && f.compare(8, 8, ".history") == 0) push.push_back(f);
    size_t pushed = 0;
    std::string failed;
    for (const auto& f : push) {
        // One at a time and synchronously: these are not in postgres's queue.
        std::vector<std::string> args = {"archive-push", "--no-archive-async", wal + "/" + f};
        auto r = co_await run(args, "pgbackrest archive-push", kToolDeadline);
        if (r)
            ++pushed;
        else
            failed = r.error().message;
    }
    fork_busy_ = false;
    fork_push_ = {{"timeline", timeline},
                  {"segments", segments},
                  {"files", push.size()},
                  {"pushed", pushed},
                  {"at", now_iso()}};
    if (failed.empty()) {
        fork_pushed_ = timeline;
        if (!push.empty())
            log::info("backup", "the parent timeline's WAL is in the repository",
                      {{"timeline", timeline}, {"segments", segments}, {"files", push.size()}});
        co_return;
    }
    fork_push_["error"] = failed;
    fork_next_try_ = std::chrono::steady_clock::now() + kStanzaRetry;
    log::warn(
        "backup",
        "the parent timeline's WAL is not all in the repository yet: a restore across "
        "this promotion needs it; trying again in a minute",
        {{"timeline", timeline}, {"pushed", pushed}, {"files", push.size()}, {"error", failed}});
}

void BackupJobs::start_server() {
    if (!cfg_.backup_server()) return;
    std::vector<std::string> clients = cfg_.backup_tls_clients;
    if (clients.empty()) {
        auto cn = certificate_common_name(cfg_.backup_tls_cert);
        if (!cn) {
            server_ = {{"running", false},
                       {"error",
                        "--backup-tls-cert names no common name: give "
                        "--backup-tls-clients"}};
            log::error("backup",
                       "pgBackRest's server not started: the certificate names no "
                       "common name to allow; give --backup-tls-clients",
                       {{"certificate", cfg_.backup_tls_cert}});
            return;
        }
        clients.push_back(*cn);
    }
    spawn("pgBackRest's server", server_loop(std::move(clients)));
}

awaitable<void> BackupJobs::server_loop(std::vector<std::string> clients) {
    auto ex = co_await asio::this_coro::executor;
    auto pause = std::chrono::seconds(1);
    int starts = 0;
    server_ = {{"running", false}, {"starts", 0}};
    for (;;) {
        auto opts = server_command(cfg_, clients);
        server_["running"] = true;
        server_["started_at"] = now_iso();
        server_["starts"] = ++starts;
        auto began = std::chrono::steady_clock::now();
        log::info("backup", "pgBackRest's server starts",
                  {{"port", cfg_.backup_server_port}, {"clients", clients}});
        // Its lines are logged, never kept: it runs as long as the manager.
        auto r = co_await run_command(reaper_, opts, "backup", [](std::string_view line) {
            log::info("backup", line);
            return true;
        });
        server_["running"] = false;
        std::string why = r ? describe_wait_status(r->wait_status) : r.error().message;
        server_["last_exit"] = why;
        server_["last_exit_at"] = now_iso();
        // A server that ran a while is started again at once; one that keeps
        // failing (a bad certificate, a port in use) waits longer each time.
        pause = std::chrono::steady_clock::now() - began > std::chrono::minutes(1)
                    ? std::chrono::seconds(1)
                    : std::min<std::chrono::seconds>(pause * 2, std::chrono::seconds(30));
        log::warn("backup", "pgBackRest's server ended; starting it again",
                  {{"how", why}, {"in_s", pause.count()}});
        asio::steady_timer t(ex, pause);
        co_await t.async_wait(use_awaitable);
    }
}

CommandAnswer BackupJobs::start(const BackupRequest& req) {
    if (!cfg_.backups())
        return make_error("backups are not configured (--backup-repo or --backup-config)", 409);
    if (req.primary && !cfg_.backup_server())
        return make_error(
            "standby backups need --backup-tls-cert, --backup-tls-key and "
            "--backup-tls-ca on this member",
            409);
    if (running_)
        return make_error(
            "a " + running_->type + " backup is running since " + running_->started_at, 409);
    running_ = Running{req.type, now_iso(), req.primary ? "standby" : "primary"};
    spawn("the backup", run_backup(req));
    return nlohmann::json{{"started", true},
                          {"type", req.type},
                          {"source", running_->source},
                          {"started_at", running_->started_at}};
}

awaitable<void> BackupJobs::run_backup(BackupRequest req) {
    const std::string type = req.type;
    log::info("backup", "backup started",
              {{"type", type},
               {"stanza", cfg_.backup_stanza},
               {"source", running_->source},
               {"primary", req.primary ? to_json(*req.primary) : nlohmann::json()}});
    // --start-fast: the checkpoint that begins it is immediate.
    std::vector<std::string> args = {"backup", "--type=" + type, "--start-fast"};
    auto opts = command(cfg_, args);
    if (req.primary) {
        // The primary's options replace any the user's environment gave.
        for (const auto& e : standby_environment(cfg_, *req.primary)) {
            auto name = e.substr(0, e.find('=') + 1);
            std::erase_if(opts.env, [&](const std::string& o) { return o.rfind(name, 0) == 0; });
            opts.env.push_back(e);
        }
    }
    Result<std::string> r = make_error("not run");
    auto ran = co_await run_command(reaper_, opts, "backup");
    if (!ran)
        r = ran.error();
    else if (!ran->success())
        r = make_error("pgbackrest backup " + describe_wait_status(ran->wait_status) + ": " +
                       error_lines(ran->output));
    else
        r = ran->output;
    last_result_ = {{"type", type},
                    {"ok", bool(r)},
                    {"source", running_->source},
                    {"started_at", running_->started_at},
                    {"finished_at", now_iso()}};
    running_.reset();
    if (!r) {
        last_result_["error"] = r.error().message;
        log::warn("backup", "backup failed", {{"type", type}, {"error", r.error().message}});
    } else {
        log::info("backup", "backup complete", {{"type", type}});
    }
    // Read the repository again now; a read under way began before the
    // backup ended, so another follows it.
    if (!info_busy_) {
        info_busy_ = true;
        co_await refresh_info();
    } else {
        refresh_again_ = true;
    }
}

awaitable<CommandAnswer> BackupJobs::list() {
    if (!cfg_.backups())
        co_return make_error("backups are not configured (--backup-repo or --backup-config)", 409);
    // One pgbackrest info at a time for callers of the API.
    if (listing_) co_return make_error("the repository is being read; ask again in a moment", 503);
    listing_ = true;
    auto text = co_await repository_info_json(cfg_, reaper_);
    listing_ = false;
    if (!text) co_return make_error(text.error().message, 502);
    auto info = parse_info(*text, cfg_.backup_stanza);
    if (!info) co_return make_error(info.error().message, 502);
    info_ = *info;
    info_at_ = now_iso();
    nlohmann::json out = to_json(*info);
    out["stanza"] = cfg_.backup_stanza;
    co_return out;
}

nlohmann::json BackupJobs::view() const {
    if (!cfg_.backups()) return nullptr;
    nlohmann::json j = {
        {"stanza", cfg_.backup_stanza},
        {"repository",
         cfg_.backup_repo.empty() ? "as the pgBackRest configuration says" : cfg_.backup_repo},
        {"stanza_ready", stanza_ready_},
        {"check", check_},
        {"archiver", archiver_},
        {"archive_failing", failing_},
        {"running", nullptr},
        {"last_result", last_result_},
        {"last_backup", nullptr},
        {"backups", 0},
        {"repository_read_at", info_at_},
        {"fork_push", fork_push_},
        {"server", nullptr},
    };
    if (cfg_.backup_server()) {
        // What a replica's standby backup needs to reach this member
        // (host: null when others use the host of its API address).
        nlohmann::json srv = server_;
        srv["port"] = cfg_.backup_server_port;
        srv["host"] = cfg_.backup_server_host.empty() ? nlohmann::json()
                                                      : nlohmann::json(cfg_.backup_server_host);
        srv["pg_path"] = cfg_.pgdata;
        srv["pg_port"] = cfg_.pg_port;
        srv["socket_path"] = cfg_.socket_dir;
        j["server"] = srv;
    }
    if (!info_error_.empty()) j["repository_error"] = info_error_;
    if (info_) {
        j["backups"] = info_->backups.size();
        if (!info_->backups.empty()) j["last_backup"] = to_json(info_->backups.back());
        // For the controller's schedule (controller/backup_schedule.hpp).
        nlohmann::json newest = {{"full", nullptr}, {"diff", nullptr}, {"incr", nullptr}};
        for (const auto& b : info_->backups)
            if (newest.contains(b.type)) newest[b.type] = b.stop;
        j["newest"] = newest;
        j["archive_max"] = info_->archive_max;
    }
    if (running_) {
        j["running"] = {{"type", running_->type},
                        {"started_at", running_->started_at},
                        {"source", running_->source}};
        if (info_ && info_->progress) j["running"]["progress_pct"] = *info_->progress;
    }
    return j;
}

}  // namespace im::backup
