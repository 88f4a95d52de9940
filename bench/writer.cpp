// bench-writer: one client that commits numbered rows as fast as it can
// through a libpq multi-host connection string (read-write), reconnecting
// after every failure, and prints one line per committed row:
// "<id> <unix ms> <server port>". A failover or switchover shows as a gap;
// every printed id must be found on the new primary (nothing lost).
#include <libpq-fe.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace {
volatile sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }
long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: bench-writer CONNINFO FIRST_ID\n");
        return 2;
    }
    ::signal(SIGTERM, on_signal);
    ::signal(SIGINT, on_signal);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    long long id = std::stoll(argv[2]);
    PGconn* conn = nullptr;
    while (!stop) {
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
            if (conn) PQfinish(conn);
            conn = PQconnectdb(argv[1]);
            if (PQstatus(conn) != CONNECTION_OK) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                continue;
            }
        }
        std::string text = std::to_string(id);
        const char* params[] = {text.c_str()};
        PGresult* r = PQexecParams(
            conn, "INSERT INTO bench_log (id) VALUES ($1::bigint) RETURNING inet_server_port()", 1,
            nullptr, params, nullptr, nullptr, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            std::printf("%lld %lld %s\n", id, now_ms(), PQgetvalue(r, 0, 0));
            ++id;
        } else {
            // The commit's fate is unknown: that id is not claimed; the next try uses a new one.
            ++id;
            PQfinish(conn);
            conn = nullptr;
        }
        PQclear(r);
    }
    if (conn) PQfinish(conn);
    return 0;
}
