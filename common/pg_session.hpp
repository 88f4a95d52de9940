#pragma once
// libpq driven from the event loop: non-blocking connect and queries whose
// socket waits are Asio operations, so a slow postgres never blocks probes.
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio.hpp"
#include "conninfo.hpp"
#include "result.hpp"

namespace im {

struct PgConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

class PgSession {
  public:
    explicit PgSession(asio::any_io_executor ex) : ex_(std::move(ex)) {}

    awaitable<Status> connect(const std::string& conninfo, std::chrono::milliseconds timeout);
    // Runs one or more statements; returns the last result. Any error result
    // fails the whole call; SQLSTATE of the failure is in last_sqlstate().
    awaitable<Result<PgResultPtr>> query(
        const std::string& sql, std::chrono::milliseconds timeout,
        const std::vector<std::optional<std::string>>& params = {});

    bool connected() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
    void close() { conn_.reset(); }
    PGconn* raw() const { return conn_.get(); }
    const std::string& last_sqlstate() const { return sqlstate_; }

  private:
    // Waits until libpq's socket is readable/writable; false on timeout or error.
    awaitable<bool> wait_socket(bool for_read, std::chrono::steady_clock::time_point deadline);

    asio::any_io_executor ex_;
    PgConnPtr conn_;
    std::string sqlstate_;
};

// Reads a text value of row/col, or nullopt for NULL.
std::optional<std::string> pg_value(const PGresult* r, int row, int col);

}  // namespace im
