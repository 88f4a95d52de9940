#include "bootstrap/bootstrap.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>

#include "backup/pgbackrest.hpp"
#include "backup/restore.hpp"
#include "bootstrap/clone.hpp"
#include "bootstrap/data_dir.hpp"
#include "bootstrap/helper.hpp"
#include "bootstrap/replication_config.hpp"
#include "bootstrap/rewind_mark.hpp"
#include "fd.hpp"
#include "fs_util.hpp"
#include "log.hpp"

namespace im {

namespace {

awaitable<Result<int>> binaries_major_version(Reaper& reaper, const Config& cfg) {
    SpawnOptions opts;
    opts.argv = {cfg.pg_bin + "/postgres", "--version"};
    opts.deadline = std::chrono::seconds(30);
    auto r = co_await run_command(reaper, opts, "bootstrap");
    if (!r) co_return r.error();
    std::smatch m;
    static const std::regex re(R"(\(PostgreSQL\) (\d+))");
    if (!r->success() || !std::regex_search(r->output, m, re))
        co_return make_error("cannot tell the version of " + opts.argv[0]);
    co_return std::stoi(m[1].str());
}

// Whether a postgres answers at the upstream address (pg_isready: 0 accepts
// connections, 1 is starting up; both mean a cluster is there).
awaitable<bool> upstream_answers(Reaper& reaper, const Config& cfg) {
    SpawnOptions opts;
    opts.argv = {cfg.pg_bin + "/pg_isready",
                 "-q",
                 "-t",
                 "5",
                 "-d",
                 cfg.primary_conninfo + " dbname=postgres"};
    opts.deadline = std::chrono::seconds(30);  // -t 5 bounds it already, unless it hangs
    auto r = co_await run_command(reaper, opts, "bootstrap");
    co_return r&& exit_code_of(r->wait_status) <= 1;
}

awaitable<Status> run_initdb(Reaper& reaper, const Config& cfg) {
    SpawnOptions opts;
    opts.argv = {cfg.pg_bin + "/initdb", "--pgdata=" + cfg.pgdata,
                 "--username=postgres",  "--data-checksums",
                 "--auth-local=peer",    "--auth-host=scram-sha-256",
                 "--encoding=UTF8",      "--locale=C",
                 "--no-instructions"};
    opts.parent_death_signal = SIGTERM;
    // An empty cluster takes seconds; minutes only on a very slow disk.
    opts.deadline = std::chrono::minutes(10);
    log::info("bootstrap", "initializing an empty data directory", {{"pgdata", cfg.pgdata}});
    auto r = co_await run_command(reaper, opts, "initdb");
    if (!r) co_return r.error();
    if (!r->success()) co_return make_error("initdb " + describe_wait_status(r->wait_status));
    co_return Ok{};
}

Status copy_file(const std::string& from, const std::string& to, mode_t mode) {
    auto text = fs::read_file(from);
    if (!text) return text.error();
    return fs::write_file_atomic(to, *text, mode);
}

Status ensure_dir(const std::string& path) {
    if (fs::is_dir(path)) return Ok{};
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        return make_error("cannot create " + path + ": " + std::strerror(errno));
    return Ok{};
}

// The default socket directory is this instance's alone: ours, and nobody
// else's to write into (a socket there is then our postmaster's).
Status ensure_private_dir(const std::string& path) {
    if (auto st = ensure_dir(path); !st) return st;
    struct stat sb {};
    if (::lstat(path.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
        return make_error(path + " is not a directory");
    if (sb.st_uid != ::geteuid())
        return make_error(path + " belongs to another user; give --socket-dir");
    if ((sb.st_mode & 0077) != 0 && ::chmod(path.c_str(), 0700) != 0)
        return make_error("cannot make " + path + " private: " + std::strerror(errno));
    return Ok{};
}

// A quarter of the file system holding the data directory, in MB.
int64_t quarter_of_file_system_mb(const std::string& pgdata) {
    struct statvfs vfs {};
    if (::statvfs(pgdata.c_str(), &vfs) != 0) return 1024;
    auto total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    return std::max<int64_t>(64, static_cast<int64_t>(total / 4 / (1024 * 1024)));
}

}  // namespace

Result<std::string> upstream_conninfo(const Config& cfg, const Prepared& p,
                                      const std::string& upstream) {
    return replication_conninfo(upstream, cfg.name, {p.passfile, cfg.replication_ca_file});
}

Status write_managed_files(const Config& cfg, const Prepared& p) {
    std::string standby;
    if (p.replica && !p.persistent.primary_conninfo.empty()) {
        auto conninfo = upstream_conninfo(cfg, p, p.persistent.primary_conninfo);
        if (!conninfo) return conninfo.error();
        standby = render_standby_settings(*conninfo, slot_name_for(cfg.name));
    }
    // A replica ignores it; kept so a promoted instance commits as it was told.
    if (p.persistent.synchronous)
        standby += "synchronous_standby_names = " +
                   conf_quote(synchronous_standby_names(*p.persistent.synchronous)) + "\n";
    if (cfg.backups()) standby += backup::archive_settings(cfg);
    return write_pg_files(cfg, p.tls, p.superuser_enabled, standby, p.extra_hba);
}

namespace {
std::string stash_path(const Config& cfg) {
    return beside_data_dir(cfg.pgdata, ".instance-manager-stash");
}
}  // namespace

Result<std::string> stash_state_dir(const Config& cfg) {
    std::string stash = stash_path(cfg);
    std::error_code ec;
    std::filesystem::remove_all(stash, ec);
    std::filesystem::copy(cfg.state_dir(), stash, std::filesystem::copy_options::recursive, ec);
    if (ec) return make_error("cannot save " + cfg.state_dir() + ": " + ec.message());
    return stash;
}

Status restore_state_dir(const Config& cfg, const std::string& stash) {
    std::error_code ec;
    std::filesystem::remove_all(cfg.state_dir(), ec);
    std::filesystem::copy(stash, cfg.state_dir(), std::filesystem::copy_options::recursive, ec);
    if (ec) return make_error("cannot restore " + cfg.state_dir() + ": " + ec.message());
    std::filesystem::remove_all(stash, ec);
    return fs::fsync_dir(cfg.pgdata);
}

awaitable<Result<Prepared>> prepare_data_dir(Config& cfg, Reaper& reaper,
                                             std::function<void(int)> on_progress) {
    Prepared out;
    // A rejoin cut short (rewind_mark.hpp): the upstream it was rejoining is
    // the one to clone from if a re-clone had cleared the directory. Never
    // initdb there: that would be a second cluster under this name.
    auto mark = read_rewind_mark(cfg);
    if (!mark) co_return mark.error();
    if (*mark && !(*mark)->empty()) cfg.primary_conninfo = **mark;
    if (auto st = clear_interrupted_clone(cfg); !st) co_return st.error();
    auto kind = inspect_data_dir(cfg.pgdata);
    if (!kind) co_return kind.error();
    if (*mark && *kind == DataDirKind::empty && cfg.primary_conninfo.empty())
        co_return make_error("a re-clone was interrupted and names no upstream (" +
                             rewind_mark_path(cfg) + "); refusing to initdb over it");
    if (*mark && *kind == DataDirKind::cluster && fs::is_dir(stash_path(cfg))) {
        // pg_rewind may have copied the source's manager state over ours.
        if (auto st = restore_state_dir(cfg, stash_path(cfg)); !st) co_return st.error();
        log::warn("bootstrap", "a rewind was interrupted: this instance's own state is restored");
    }
    // A restore from the repository (backup/restore.hpp) stands in for
    // initdb: only the instance that may start a cluster restores (the
    // others clone from it, or keep their data). Unfinished, a restore is
    // continued or made again; finished, the directory is reused.
    const bool restore_wanted = cfg.restore_from_backup && (cfg.bootstrap_instance.empty() ||
                                                            cfg.bootstrap_instance == cfg.name);
    auto restore_mark = backup::read_restore_mark(cfg);
    if (!restore_mark) co_return restore_mark.error();
    bool restore_again = false, restore_recovering = false;
    if (*restore_mark && (*restore_mark)->stage == "recovering" && *kind == DataDirKind::cluster &&
        !fs::exists(fs::join(cfg.pgdata, "recovery.signal"))) {
        // It promoted (postgres removes recovery.signal then) before the
        // manager noted it: a primary with writes of its own, never restored
        // over. Noted now, with the request it was restored with.
        if (auto st = backup::scrub_restore_settings(cfg.pgdata); !st) co_return st.error();
        if (auto st = backup::set_restore_stage(cfg, "done", (*restore_mark)->request); !st)
            co_return st.error();
        (*restore_mark)->stage = "done";
        log::warn("restore", "the restore had promoted before its end was noted: noted now");
    }
    if (*restore_mark && (*restore_mark)->stage != "done") {
        if (!restore_wanted)
            co_return make_error("a restore from the repository is unfinished (" +
                                 backup::restore_mark_path(cfg) +
                                 "); start again with --restore-from-backup");
        // The same request continues its recovery; another starts afresh.
        restore_recovering = (*restore_mark)->stage == "recovering" &&
                             (*restore_mark)->request == backup::restore_request(cfg);
        restore_again = !restore_recovering;
    } else if (restore_wanted && *kind != DataDirKind::empty) {
        if (*restore_mark && (*restore_mark)->request != backup::restore_request(cfg))
            co_return make_error(
                "--restore-from-backup: " + cfg.pgdata + " was restored earlier with " +
                (*restore_mark)->request.dump() +
                "; another restore needs an empty data directory (nothing was changed)");
        if (*restore_mark) {
            log::info("restore", "the data directory was restored earlier: reusing it");
        } else if (*kind == DataDirKind::cluster &&
                   fs::exists(fs::join(cfg.pgdata, "standby.signal"))) {
            // The restored cluster's replica now (a failover made another
            // member its primary): its data is the cluster's.
            log::info("restore", "a replica's data directory: the restore does not apply");
        } else {
            co_return make_error("--restore-from-backup: " + cfg.pgdata +
                                 " is not empty; a restore only fills an empty data directory "
                                 "(nothing was changed)");
        }
    }
    if (*kind == DataDirKind::foreign && !restore_again)
        co_return make_error(
            cfg.pgdata +
            " is not empty and is not a PostgreSQL data directory; refusing to touch it");

    auto bin_major = co_await binaries_major_version(reaper, cfg);
    if (!bin_major) co_return bin_major.error();
    bool clone = *kind == DataDirKind::empty && !cfg.primary_conninfo.empty() && !restore_again;
    if (clone && !*mark && !cfg.bootstrap_instance.empty() && cfg.name == cfg.bootstrap_instance) {
        // The one instance allowed to start a new cluster does so only when
        // no primary answers: a replacement with an empty volume joins.
        clone = co_await upstream_answers(reaper, cfg);
        log::info("bootstrap",
                  clone ? "a primary answers: joining it" : "no primary answers: a new cluster",
                  {{"bootstrap_instance", cfg.bootstrap_instance}});
    }
    if (clone) {
        if (cfg.replication_password_file.empty() || !fs::exists(cfg.replication_password_file))
            co_return make_error(
                "a new replica needs --replication-password-file with the primary's password");
        auto password = fs::read_secret(cfg.replication_password_file);
        if (!password) co_return password.error();
        // A primary that does not answer yet (its pod is starting, its
        // Service has no endpoint yet) is waited for: the data directory is
        // still empty, and waiting beats a restart loop.
        auto backoff = std::chrono::milliseconds(1000);
        for (;;) {
            auto st =
                co_await clone_replica(cfg, reaper, cfg.primary_conninfo, *password, on_progress);
            if (st) break;
            // Unreachable is found before anything is written: still empty.
            if (st.error().http_status != kPrimaryUnreachable) co_return st.error();
            log::warn("bootstrap", "the primary does not answer yet; trying again",
                      {{"error", st.error().message}, {"retry_in_ms", backoff.count()}});
            asio::steady_timer timer(co_await asio::this_coro::executor, backoff);
            co_await timer.async_wait(use_awaitable);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
        }
        out.cloned = true;
        // A re-clone (--on-rewind-failure reclone) that a kill interrupted
        // left this instance's own state (term, passwords) beside the data
        // directory: it is this instance's again.
        if (fs::is_dir(stash_path(cfg))) {
            if (auto st = restore_state_dir(cfg, stash_path(cfg)); !st) co_return st.error();
            log::info("bootstrap", "restored the state an interrupted re-clone had set aside");
        }
        // A complete standby again: the interrupted rejoin is over (the
        // instance stays fenced, as that rejoin left it, until told to follow).
        if (*mark)
            if (auto st = clear_rewind_mark(cfg); !st) co_return st.error();
    } else if ((*kind == DataDirKind::empty && restore_wanted) || restore_again) {
        // The cluster starts from its backup instead of initdb.
        if (auto st = co_await backup::restore_data_dir(cfg, reaper, restore_again); !st)
            co_return st.error();
        out.restoring = true;
    } else if (*kind == DataDirKind::empty) {
        if (auto st = co_await run_initdb(reaper, cfg); !st) co_return st.error();
        out.initialized = true;
    } else {
        out.restoring = restore_recovering;
        auto major = cluster_major_version(cfg.pgdata);
        if (!major) co_return major.error();
        if (*major != *bin_major)
            co_return make_error("data directory is PostgreSQL " + std::to_string(*major) +
                                 " but the binaries are " + std::to_string(*bin_major));
        log::info("bootstrap", "reusing the existing data directory",
                  {{"pgdata", cfg.pgdata}, {"major", *major}});
    }

    std::string state = cfg.state_dir();
    if (auto st = ensure_dir(state); !st) co_return st.error();
    if (auto st = ensure_dir(state + "/tls"); !st) co_return st.error();
    if (cfg.socket_dir == default_socket_dir(cfg.name))
        if (auto st = ensure_private_dir(cfg.socket_dir); !st) co_return st.error();
    if (cfg.backups())
        if (auto st = backup::ensure_work_dirs(cfg); !st) co_return st.error();
    if (cfg.max_slot_wal_keep_mb == Config::kSlotKeepAuto)
        cfg.max_slot_wal_keep_mb = quarter_of_file_system_mb(cfg.pgdata);

    StateStore store(state + "/state.json");
    auto persistent = store.load();
    if (!persistent) co_return persistent.error();
    out.persistent = *persistent;
    out.replica = fs::exists(fs::join(cfg.pgdata, "standby.signal"));
    // The command line names the upstream of a replica until a controller says otherwise.
    if (out.replica && out.persistent.primary_conninfo.empty())
        out.persistent.primary_conninfo = cfg.primary_conninfo;
    if (!out.replica) out.persistent.primary_conninfo.clear();
    if (auto st = store.save(out.persistent); !st) co_return st.error();

    if (cfg.app_password_file.empty()) cfg.app_password_file = state + "/app.password";
    if (cfg.replication_password_file.empty())
        cfg.replication_password_file = state + "/replication.password";
    // The manager only makes sure the files exist; the helper that sets the
    // roles up reads them, so passwords do not sit in the manager's memory.
    if (auto app = fs::read_or_create_secret(cfg.app_password_file); !app)
        co_return make_error("app password: " + app.error().message);
    auto repl = fs::read_or_create_secret(cfg.replication_password_file);
    if (!repl) co_return make_error("replication password: " + repl.error().message);
    out.passfile = state + "/replication.pgpass";
    if (auto st = fs::write_file_atomic(out.passfile, render_passfile(*repl), 0600); !st)
        co_return st.error();
    if (!cfg.superuser_password_file.empty()) {
        if (auto su = fs::read_or_create_secret(cfg.superuser_password_file); !su)
            co_return make_error("superuser password: " + su.error().message);
        out.superuser_enabled = true;
    }

    out.tls = {state + "/tls/server.crt", state + "/tls/server.key"};
    if (!cfg.pg_tls_cert.empty()) {
        // Copied so that postgres sees a key with the 0600 mode it insists on,
        // whatever the mounted secret's mode is.
        if (auto st = copy_file(cfg.pg_tls_key, out.tls.key, 0600); !st) co_return st.error();
        if (auto st = copy_file(cfg.pg_tls_cert, out.tls.cert, 0644); !st) co_return st.error();
    } else {
        // Built outside the co_await: GCC 12 rejects braced lists inside it.
        SpawnOptions make_cert = helper_command({"make-cert", out.tls.cert, out.tls.key, cfg.name});
        auto made = co_await run_command(reaper, make_cert, "bootstrap");
        if (!made) co_return made.error();
        if (!made->success())
            co_return make_error("cannot make a TLS certificate: " + made->output);
    }

    if (auto st = write_managed_files(cfg, out); !st) co_return st.error();
    if (auto st = clear_stale_pid_file(cfg.pgdata); !st) co_return st.error();
    co_return out;
}

awaitable<Status> setup_roles(Reaper& reaper, const Config& cfg,
                              const std::string& local_conninfo) {
    std::vector<std::string> args = {"ensure-roles", local_conninfo, cfg.app_password_file,
                                     cfg.replication_password_file};
    if (!cfg.superuser_password_file.empty()) args.push_back(cfg.superuser_password_file);
    auto r = co_await run_command(reaper, helper_command(args), "bootstrap");
    if (!r) co_return r.error();
    if (!r->success()) {
        std::string out = r->output;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        co_return make_error("setting up roles: " + out);
    }
    co_return Ok{};
}

}  // namespace im
