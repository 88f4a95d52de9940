#include "backup/restore.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "backup/pgbackrest.hpp"
#include "bootstrap/clone.hpp"
#include "bootstrap/data_dir.hpp"
#include "fs_util.hpp"
#include "log.hpp"

namespace im::backup {

std::string restore_mark_path(const Config& cfg) {
    return beside_data_dir(cfg.pgdata, ".restore.json");
}

nlohmann::json restore_request(const Config& cfg) {
    return {{"stanza", cfg.source_stanza()},
            {"backup_set", cfg.backup_set},
            {"target_kind", cfg.recovery_target_kind},
            {"target", cfg.recovery_target}};
}

Result<std::optional<RestoreMark>> read_restore_mark(const Config& cfg) {
    std::string path = restore_mark_path(cfg);
    if (!fs::exists(path)) return std::optional<RestoreMark>();
    auto text = fs::read_file(path, 64 * 1024);
    if (!text) return text.error();
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("request") || !j.value("stage", nlohmann::json()).is_string())
        return make_error(path + " is unreadable; remove it only if no restore is under way");
    return std::optional<RestoreMark>(RestoreMark{j["request"], j["stage"].get<std::string>()});
}

Status set_restore_stage(const Config& cfg, const std::string& stage) {
    return set_restore_stage(cfg, stage, restore_request(cfg));
}

Status set_restore_stage(const Config& cfg, const std::string& stage,
                         const nlohmann::json& request) {
    nlohmann::json j = {{"request", request}, {"stage", stage}};
    if (auto st = fs::write_file_atomic(restore_mark_path(cfg), j.dump() + "\n", 0600); !st)
        return st;
    return fs::fsync_dir(std::filesystem::path(restore_mark_path(cfg)).parent_path().string());
}

awaitable<Result<bool>> restore_standby(const Config& cfg, Reaper& reaper) {
    auto info_text = co_await repository_info_json(cfg, reaper);
    if (!info_text) co_return info_text.error();
    auto info = parse_info(*info_text, cfg.backup_stanza);
    if (!info) co_return info.error();
    if (!info->stanza_exists || info->backups.empty()) co_return false;
    if (auto st = ensure_work_dirs(cfg); !st) co_return st.error();
    log::info("bootstrap", "a new replica from the repository's newest backup",
              {{"backup", info->backups.back().label}, {"stanza", cfg.backup_stanza}});
    std::vector<std::string> args = {"restore", "--type=standby"};
    auto opts = command(cfg, args);
    opts.stall_deadline = cfg.copy_stall_timeout;
    auto r = co_await run_command(reaper, opts, "restore");
    if (!r) co_return r.error();
    if (!r->success())
        co_return make_error("pgbackrest restore --type=standby " +
                             describe_wait_status(r->wait_status));
    co_return true;
}

Status scrub_restore_settings(const std::string& pgdata) {
    std::string path = fs::join(pgdata, "postgresql.auto.conf");
    if (!fs::exists(path)) return Ok{};
    auto text = fs::read_file(path, 16 << 20);
    if (!text) return text.error();
    std::string clean = without_restore_settings(*text);
    if (clean == *text) return Ok{};
    return fs::write_file_atomic(path, clean, 0600);
}

Status ensure_work_dirs(const Config& cfg) {
    for (const char* sub : {"", "/lock", "/spool"}) {
        std::string dir = work_dir(cfg) + sub;
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            return make_error("cannot create " + dir + ": " + std::strerror(errno));
    }
    return Ok{};
}

awaitable<Result<std::string>> repository_info_json(const Config& cfg, Reaper& reaper,
                                                   std::string stanza) {
    // Not logged line by line: it is one JSON document (joined again
    // without separators: a very long line comes in pieces).
    std::vector<std::string> args = {"--output=json", "info"};
    if (!stanza.empty()) args.insert(args.begin(), "--stanza=" + stanza);
    auto opts = command(cfg, args, std::chrono::minutes(2), false);
    auto text = std::make_shared<std::string>();
    // A local: GCC 12 mishandles temporaries inside co_await.
    std::function<bool(std::string_view)> keep = [text](std::string_view line) {
        text->append(line);
        return true;
    };
    auto r = co_await run_command(reaper, opts, "backup", keep);
    if (!r) co_return r.error();
    if (!r->success())
        co_return make_error("pgbackrest info " + describe_wait_status(r->wait_status) + ": " +
                             error_lines(*text));
    co_return *text;
}

awaitable<Status> restore_data_dir(const Config& cfg, Reaper& reaper, bool clear_first) {
    // A restore starts a new history; a member of a running cluster's write
    // authority it must not be (its promotion would be a write without grants).
    if (fs::exists(cfg.authority_file()))
        co_return make_error("--restore-from-backup: " + cfg.authority_file() +
                             " says this instance was a member of a cluster's write authority; a "
                             "restore starts a new cluster: remove that file if this is intended "
                             "(nothing was changed)");
    auto info_text = co_await repository_info_json(cfg, reaper, cfg.source_stanza());
    if (!info_text) co_return info_text.error();
    auto info = parse_info(*info_text, cfg.source_stanza());
    if (!info) co_return info.error();
    if (auto st = check_restore_target(cfg, *info, std::time(nullptr)); !st)
        co_return make_error("--restore-from-backup: " + st.error().message +
                             " (nothing was changed)");
    if (clear_first) {
        log::warn("restore", "an unfinished restore is replaced by a fresh one",
                  {{"pgdata", cfg.pgdata}});
        if (auto st = fs::clear_directory(cfg.pgdata); !st) co_return st;
    }
    if (::chmod(cfg.pgdata.c_str(), 0700) != 0)
        co_return make_error("cannot set the mode of " + cfg.pgdata + ": " + std::strerror(errno));
    if (auto st = ensure_work_dirs(cfg); !st) co_return st;
    // From here on the data directory fills: a kill leaves "copying".
    if (auto st = set_restore_stage(cfg, "copying"); !st) co_return st;
    log::info("restore", "restoring the data directory from the repository",
              {{"stanza", cfg.source_stanza()},
               {"backup_set", cfg.backup_set.empty() ? "chosen by pgBackRest" : cfg.backup_set},
               {"target", cfg.recovery_target_kind.empty()
                              ? std::string("the end of the archive")
                              : cfg.recovery_target_kind + " " + cfg.recovery_target}});
    auto opts = command(cfg, restore_args(cfg));
    opts.stall_deadline = cfg.copy_stall_timeout;
    auto r = co_await run_command(reaper, opts, "restore");
    if (!r) co_return r.error();
    if (!r->success())
        co_return make_error("pgbackrest restore " + describe_wait_status(r->wait_status) +
                             " (start again with --restore-from-backup to restore afresh)");
    drop_copied_state(cfg);
    // A copy made from a standby might carry standby.signal: this instance
    // recovers (recovery.signal), then leads.
    std::error_code ec;
    std::filesystem::remove(fs::join(cfg.pgdata, "standby.signal"), ec);
    if (auto st = fs::fsync_dir(cfg.pgdata); !st) co_return st;
    if (auto st = set_restore_stage(cfg, "recovering"); !st) co_return st;
    log::info("restore", "restored; postgres replays to the target and promotes");
    co_return Ok{};
}

}  // namespace im::backup
