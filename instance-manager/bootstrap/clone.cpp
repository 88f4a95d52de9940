#include "bootstrap/clone.hpp"

#include "backup/restore.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "bootstrap/data_dir.hpp"
#include "event.hpp"
#include "fd.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "pg_session.hpp"
#include "bootstrap/replication_config.hpp"

namespace im {

int parse_basebackup_progress(std::string_view line) {
    auto close = line.find("%)");
    if (close == std::string_view::npos) return -1;
    auto open = line.rfind('(', close);
    if (open == std::string_view::npos || open + 1 >= close) return -1;
    int pct = 0;
    for (size_t i = open + 1; i < close; ++i) {
        if (line[i] < '0' || line[i] > '9') return -1;
        pct = pct * 10 + (line[i] - '0');
    }
    return pct > 100 ? 100 : pct;
}

awaitable<Status> ensure_upstream_slot(const std::string& replication_conninfo,
                                       const std::string& slot) {
    PgSession session(co_await asio::this_coro::executor);
    auto st = co_await session.connect(replication_conninfo + " replication=true",
                                       std::chrono::seconds(10));
    if (!st)
        co_return make_error("cannot reach the primary for replication: " + st.error().message,
                             kPrimaryUnreachable);
    auto r = co_await session.query("CREATE_REPLICATION_SLOT \"" + slot + "\" PHYSICAL RESERVE_WAL",
                                    std::chrono::seconds(30));
    if (!r && session.last_sqlstate() != "42710")  // 42710: the slot exists already
        co_return make_error("cannot create replication slot " + slot + ": " + r.error().message,
                             502);
    if (r) log::info("replication", "created replication slot on the primary", {{"slot", slot}});
    co_return Ok{};
}

awaitable<Status> run_basebackup(Reaper& reaper, const Config& cfg,
                                 const std::string& replication_conninfo, const std::string& slot,
                                 std::function<void(int)> on_progress) {
    SpawnOptions opts;
    opts.argv = {cfg.pg_bin + "/pg_basebackup",
                 "--pgdata=" + cfg.pgdata,
                 "--dbname=" + replication_conninfo,
                 "--wal-method=stream",
                 "--checkpoint=fast",
                 "--slot=" + slot,
                 "--progress",
                 "--no-password",
                 "--verbose"};
    opts.parent_death_signal = SIGTERM;
    // A clone of a big database may rightly take hours, but its progress
    // line moves every second while data flows: silence means it is stuck.
    opts.stall_deadline = cfg.copy_stall_timeout;
    log::info("replication", "cloning the primary with pg_basebackup");
    int last_logged = -10;
    // Progress lines become clone_progress and a log line per 10 %; the rest
    // (pg_basebackup's messages) is logged and kept for the error.
    auto progress_line = [&](std::string_view line) {
        if (line.empty()) return true;
        int pct = parse_basebackup_progress(line);
        if (pct < 0) return false;
        on_progress(pct);
        if (pct >= last_logged + 10 || pct == 100) {
            log::info("pg_basebackup", "progress", {{"percent", pct}});
            last_logged = pct;
        }
        return true;
    };
    auto r = co_await run_command(reaper, opts, "pg_basebackup", progress_line);
    if (!r) co_return make_error(r.error().message, 502);
    if (!r->success())
        co_return make_error("pg_basebackup " + describe_wait_status(r->wait_status) + ": " +
                                 r->output,
                             502);
    on_progress(100);
    co_return Ok{};
}

std::string clone_marker_path(const std::string& pgdata) {
    return beside_data_dir(pgdata, ".clone-in-progress");
}

void drop_copied_state(const Config& cfg) {
    std::error_code ec;
    for (const char* own : {"state.json", "tls", "replication.pgpass"})
        std::filesystem::remove_all(fs::join(cfg.state_dir(), own), ec);
}

Status clear_interrupted_clone(const Config& cfg) {
    std::string marker = clone_marker_path(cfg.pgdata);
    if (!fs::exists(marker)) return Ok{};
    if (cfg.primary_conninfo.empty())
        return make_error("an interrupted clone left " + cfg.pgdata + " incomplete (" + marker +
                          "); give --primary-conninfo to clone it again");
    log::warn("bootstrap", "an interrupted clone left the data directory incomplete: cloning again",
              {{"pgdata", cfg.pgdata}});
    return fs::clear_directory(cfg.pgdata);
}

awaitable<Status> clone_replica(const Config& cfg, Reaper& reaper, const std::string& upstream,
                                const std::string& replication_password,
                                std::function<void(int)> on_progress) {
    // The data directory must stay empty for pg_basebackup: a private temporary passfile.
    char tmpl[] = "/tmp/instance-manager-pgpass-XXXXXX";
    UniqueFd fd(::mkostemp(tmpl, O_CLOEXEC));
    if (!fd) co_return make_error("cannot create a temporary passfile");
    std::string tmp_passfile = tmpl;
    struct Remove {
        std::string path;
        ~Remove() { ::unlink(path.c_str()); }
    } remove{tmp_passfile};
    std::string line = render_passfile(replication_password);
    if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        co_return make_error("cannot write the temporary passfile");

    auto conninfo =
        replication_conninfo(upstream, cfg.name, {tmp_passfile, cfg.replication_ca_file});
    if (!conninfo) co_return conninfo.error();
    std::string slot = slot_name_for(cfg.name);
    if (auto st = co_await ensure_upstream_slot(*conninfo, slot); !st) co_return st;
    // postgres wants 0700 (or 0750); pg_basebackup keeps what an existing
    // empty directory has, unlike initdb.
    if (::chmod(cfg.pgdata.c_str(), 0700) != 0)
        co_return make_error("cannot set the mode of " + cfg.pgdata + ": " + std::strerror(errno));
    // From here on the data directory fills: a kill leaves this marker.
    std::string marker = clone_marker_path(cfg.pgdata);
    if (auto st = fs::write_file_atomic(marker, cfg.name + "\n", 0600); !st)
        co_return make_error("cannot note the clone beside the data directory: " +
                             st.error().message);
    // From the repository when asked (the primary only keeps the WAL since
    // the slot was made); from the primary otherwise, or when it holds no backup.
    bool restored = false;
    if (cfg.clone_from_backup) {
        auto r = co_await backup::restore_standby(cfg, reaper);
        if (!r) co_return r.error();
        restored = *r;
        if (!restored)
            log::info("bootstrap", "the repository holds no backup yet: cloning the primary");
    }
    if (!restored)
        if (auto st = co_await run_basebackup(reaper, cfg, *conninfo, slot, on_progress); !st)
            co_return st;

    drop_copied_state(cfg);
    // A copy of a restored primary (or of its backup) must not stop at the
    // restore's target and promote itself (backup/restore.hpp).
    if (auto st = backup::scrub_restore_settings(cfg.pgdata); !st) co_return st;
    if (auto st = fs::write_file_atomic(fs::join(cfg.pgdata, "standby.signal"), "", 0600); !st)
        co_return st;
    if (auto st = fs::fsync_dir(cfg.pgdata); !st) co_return st;
    // Complete and a standby: no longer an interrupted clone.
    if (::unlink(marker.c_str()) != 0)
        co_return make_error("cannot remove " + marker + ": " + std::strerror(errno));
    co_return fs::fsync_dir(std::filesystem::path(marker).parent_path().string());
}

}  // namespace im
