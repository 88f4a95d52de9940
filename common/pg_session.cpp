#include "pg_session.hpp"

#include "resolve.hpp"

namespace im {

std::optional<std::string> pg_value(const PGresult* r, int row, int col) {
    if (!r || row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col))
        return std::nullopt;
    return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

namespace {
std::string conn_error(PGconn* c) {
    std::string msg = c ? PQerrorMessage(c) : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
}
}  // namespace

awaitable<bool> PgSession::wait_socket(bool for_read,
                                       std::chrono::steady_clock::time_point deadline) {
    // libpq may change its socket between calls, so PQsocket is read anew for
    // every wait and the descriptor released (never closed) afterwards.
    int fd = PQsocket(conn_.get());
    if (fd < 0) co_return false;
    struct Shared {
        asio::posix::stream_descriptor sd;
        bool timed_out = false;
        explicit Shared(asio::any_io_executor ex, int fd) : sd(ex, fd) {}
        ~Shared() {
            if (sd.is_open()) sd.release();
        }
    };
    auto shared = std::make_shared<Shared>(ex_, fd);
    asio::steady_timer timer(ex_, deadline);
    timer.async_wait([shared](boost::system::error_code ec) {
        if (!ec && shared->sd.is_open()) {
            shared->timed_out = true;
            boost::system::error_code ignored;
            shared->sd.cancel(ignored);
        }
    });
    boost::system::error_code ec;
    co_await shared->sd.async_wait(for_read ? asio::posix::stream_descriptor::wait_read
                                            : asio::posix::stream_descriptor::wait_write,
                                   asio::redirect_error(use_awaitable, ec));
    timer.cancel();
    // Deregistered now: the next wait may register the same fd again.
    shared->sd.release();
    co_return !shared->timed_out && !ec;
}

awaitable<Status> PgSession::connect(const std::string& conninfo,
                                     std::chrono::milliseconds timeout) {
    sqlstate_.clear();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // PQconnectStart would resolve a host name itself, blocking the loop for
    // as long as the name server takes: it gets the addresses instead.
    auto resolved = co_await resolve_conninfo(conninfo, deadline);
    if (!resolved) {
        conn_.reset();
        co_return make_error(resolved.error().message);
    }
    conn_.reset(PQconnectStart(resolved->c_str()));
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) {
        std::string msg = conn_error(conn_.get());
        conn_.reset();
        co_return make_error(msg);
    }
    PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
    while (poll != PGRES_POLLING_OK) {
        if (poll == PGRES_POLLING_FAILED) {
            std::string msg = conn_error(conn_.get());
            conn_.reset();
            co_return make_error(msg);
        }
        if (!co_await wait_socket(poll == PGRES_POLLING_READING, deadline)) {
            conn_.reset();
            co_return make_error("timeout connecting to postgres");
        }
        poll = PQconnectPoll(conn_.get());
    }
    PQsetnonblocking(conn_.get(), 1);
    co_return Ok{};
}

awaitable<Result<PgResultPtr>> PgSession::query(
    const std::string& sql, std::chrono::milliseconds timeout,
    const std::vector<std::optional<std::string>>& params) {
    sqlstate_.clear();
    if (!connected()) co_return make_error("not connected");
    auto deadline = std::chrono::steady_clock::now() + timeout;
    PGconn* c = conn_.get();
    int sent;
    if (params.empty()) {
        sent = PQsendQuery(c, sql.c_str());
    } else {
        std::vector<const char*> values;
        for (auto& p : params) values.push_back(p ? p->c_str() : nullptr);
        sent = PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    }
    if (!sent) {
        std::string msg = conn_error(c);
        conn_.reset();
        co_return make_error(msg);
    }
    for (int f; (f = PQflush(c)) != 0;) {
        if (f < 0 || !co_await wait_socket(false, deadline)) {
            conn_.reset();
            co_return make_error("timeout or error sending query");
        }
    }
    PgResultPtr last;
    std::optional<Error> failure;
    for (;;) {
        while (PQisBusy(c)) {
            if (!co_await wait_socket(true, deadline)) {
                // Abandoning a query half-way leaves the connection unusable.
                conn_.reset();
                co_return make_error("timeout waiting for query result");
            }
            if (!PQconsumeInput(c)) {
                std::string msg = conn_error(c);
                conn_.reset();
                co_return make_error(msg);
            }
        }
        PgResultPtr r(PQgetResult(c));
        if (!r) break;
        auto st = PQresultStatus(r.get());
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
            if (!failure) {
                const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
                sqlstate_ = state ? state : "";
                std::string msg = PQresultErrorMessage(r.get());
                while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
                failure = make_error(msg);
            }
            continue;
        }
        last = std::move(r);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        std::string msg = failure ? failure->message : conn_error(c);
        conn_.reset();
        co_return make_error(msg);
    }
    if (failure) co_return *failure;
    co_return std::move(last);
}

}  // namespace im
