#include "bootstrap/rewind_mark.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bootstrap/data_dir.hpp"
#include "fs_util.hpp"

namespace im {

std::string rewind_mark_path(const Config& cfg) {
    return beside_data_dir(cfg.pgdata, ".rewind-in-progress");
}

Status set_rewind_mark(const Config& cfg, const std::string& upstream) {
    // write_file_atomic fsyncs the file and its directory.
    return fs::write_file_atomic(rewind_mark_path(cfg), upstream + "\n", 0600);
}

Result<std::optional<std::string>> read_rewind_mark(const Config& cfg) {
    std::string path = rewind_mark_path(cfg);
    if (!fs::exists(path)) return std::optional<std::string>();
    auto text = fs::read_file(path, 64 * 1024);
    if (!text) return text.error();
    std::string upstream = *text;
    while (!upstream.empty() && (upstream.back() == '\n' || upstream.back() == '\r'))
        upstream.pop_back();
    return std::optional<std::string>(upstream);
}

Status clear_rewind_mark(const Config& cfg) {
    std::string path = rewind_mark_path(cfg);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return make_error("cannot remove " + path + ": " + std::strerror(errno));
    return fs::fsync_dir(fs::dirname(path));
}

}  // namespace im
