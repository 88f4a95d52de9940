#include "bootstrap/data_dir.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <sstream>

#include "fs_util.hpp"
#include "log.hpp"

namespace im {

namespace {
Status mkdir_p(const std::string& path) {
    if (fs::is_dir(path)) return Ok{};
    if (path.empty() || path == "/") return make_error("cannot create " + path);
    if (auto st = mkdir_p(fs::dirname(path)); !st) return st;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        return make_error("cannot create " + path + ": " + std::strerror(errno));
    return Ok{};
}
}  // namespace

Result<DataDirKind> inspect_data_dir(const std::string& pgdata) {
    if (!fs::exists(pgdata)) {
        if (auto st = mkdir_p(pgdata); !st) return st.error();
        return DataDirKind::empty;
    }
    if (!fs::is_dir(pgdata)) return make_error(pgdata + " exists and is not a directory");
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(pgdata.c_str()), ::closedir);
    if (!dir) return make_error("cannot open " + pgdata + ": " + std::strerror(errno));
    bool empty = true;
    while (dirent* e = ::readdir(dir.get())) {
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            empty = false;
            break;
        }
    }
    if (empty) return DataDirKind::empty;
    if (fs::exists(fs::join(pgdata, "PG_VERSION")) &&
        fs::exists(fs::join(pgdata, "global/pg_control")))
        return DataDirKind::cluster;
    return DataDirKind::foreign;
}

std::string beside_data_dir(const std::string& pgdata, const std::string& suffix) {
    std::string dir = pgdata;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir + suffix;
}

Result<int> cluster_major_version(const std::string& pgdata) {
    auto text = fs::read_file(fs::join(pgdata, "PG_VERSION"), 64);
    if (!text) return text.error();
    try {
        return std::stoi(*text);
    } catch (...) {
        return make_error("PG_VERSION is not a number");
    }
}

Result<PidFileInfo> read_pid_file(const std::string& pgdata) {
    auto text = fs::read_file(fs::join(pgdata, "postmaster.pid"), 4096);
    if (!text) return text.error();
    std::istringstream in(*text);
    std::string line;
    PidFileInfo info;
    for (int i = 1; std::getline(in, line); ++i) {
        if (i == 1) {
            try {
                info.pid = static_cast<pid_t>(std::stol(line));
            } catch (...) {
                info.pid = -1;
            }
        } else if (i == 8) {
            while (!line.empty() && line.back() == ' ') line.pop_back();
            info.status = line;
        }
    }
    return info;
}

Status clear_stale_pid_file(const std::string& pgdata) {
    auto info = read_pid_file(pgdata);
    if (!info) return Ok{};  // no pid file: nothing to clear
    std::string path = fs::join(pgdata, "postmaster.pid");
    bool alive = info->pid > 0 && (::kill(info->pid, 0) == 0 || errno == EPERM);
    if (alive && info->pid != ::getpid()) {
        // The PID may belong to an unrelated process now (a new container
        // reuses small PIDs): it is only ours if it runs postgres on this directory.
        auto cmdline = fs::read_file("/proc/" + std::to_string(info->pid) + "/cmdline", 1 << 16);
        if (cmdline) {
            std::string args = *cmdline;
            for (char& c : args)
                if (c == '\0') c = ' ';
            if (args.find("postgres") != std::string::npos &&
                args.find(pgdata) != std::string::npos)
                return make_error("a postgres (pid " + std::to_string(info->pid) +
                                  ") is still running on " + pgdata);
        }
    }
    log::warn("bootstrap", "removing stale postmaster.pid", {{"pid", info->pid}});
    if (::unlink(path.c_str()) != 0)
        return make_error("cannot remove " + path + ": " + std::strerror(errno));
    return Ok{};
}

}  // namespace im
