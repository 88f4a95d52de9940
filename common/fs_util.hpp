#pragma once
// Small file helpers. Files the manager owns are replaced atomically:
// temp file, fsync, rename, fsync of the directory.
#include <sys/types.h>

#include <string>

#include "result.hpp"

namespace im::fs {

Result<std::string> read_file(const std::string& path, size_t max_bytes = 1 << 20);
Status write_file_atomic(const std::string& path, const std::string& content, mode_t mode = 0600);
Status fsync_dir(const std::string& dir);
// Removes everything in `dir` but not `dir` itself (often a mount point).
Status clear_directory(const std::string& dir);
bool exists(const std::string& path);
bool is_dir(const std::string& path);
std::string dirname(const std::string& path);
std::string join(const std::string& a, const std::string& b);

// Reads a secret file (password, token): the first line, trailing whitespace cut.
Result<std::string> read_secret(const std::string& path);

// Reads the secret at path; when the file does not exist, creates it with a
// random password (mode 0600) and returns that.
Result<std::string> read_or_create_secret(const std::string& path);

}  // namespace im::fs
