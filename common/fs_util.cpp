#include "fs_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fd.hpp"
#include "secrets.hpp"

namespace im::fs {

namespace {
std::string errno_text(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + std::strerror(errno);
}
}  // namespace

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return system_error(errno_text("cannot open", path), errno);
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return system_error(errno_text("cannot read", path), errno);
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > max_bytes) return make_error("file too large: " + path);
    }
    return out;
}

Status fsync_dir(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return system_error(errno_text("cannot open directory", dir), errno);
    if (::fsync(fd.get()) != 0) return system_error(errno_text("cannot fsync", dir), errno);
    return Ok{};
}

Status write_file_atomic(const std::string& path, const std::string& content, mode_t mode) {
    std::string tmp = path + ".tmp";
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        if (!fd) return system_error(errno_text("cannot create", tmp), errno);
        // open() honours the umask; the mode we were asked for is the one we want.
        ::fchmod(fd.get(), mode);
        size_t off = 0;
        while (off < content.size()) {
            ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                int e = errno;
                ::unlink(tmp.c_str());
                errno = e;
                return system_error(errno_text("cannot write", tmp), errno);
            }
            off += static_cast<size_t>(n);
        }
        if (::fsync(fd.get()) != 0) {
            ::unlink(tmp.c_str());
            return system_error(errno_text("cannot fsync", tmp), errno);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        errno = e;
        return system_error(errno_text("cannot rename to", path), errno);
    }
    return fsync_dir(dirname(path));
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string dirname(const std::string& path) {
    auto pos = path.find_last_of('/');
    if (pos == std::string::npos) return ".";
    if (pos == 0) return "/";
    return path.substr(0, pos);
}

std::string join(const std::string& a, const std::string& b) {
    if (a.empty() || a.back() == '/') return a + b;
    return a + "/" + b;
}

Status clear_directory(const std::string& dir) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::error_code rm;
        std::filesystem::remove_all(entry.path(), rm);
        if (rm) return make_error("cannot clear " + entry.path().string() + ": " + rm.message());
    }
    if (ec) return make_error("cannot list " + dir + ": " + ec.message());
    return fsync_dir(dir);
}

Result<std::string> read_secret(const std::string& path) {
    auto text = read_file(path, 64 * 1024);
    if (!text) return text.error();
    std::string s = text->substr(0, text->find('\n'));
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    if (s.empty()) return make_error("secret file is empty: " + path);
    return s;
}

Result<std::string> read_or_create_secret(const std::string& path) {
    if (exists(path)) return read_secret(path);
    std::string secret = random_token(24);
    if (auto st = write_file_atomic(path, secret + "\n", 0600); !st) return st.error();
    return secret;
}

}  // namespace im::fs
