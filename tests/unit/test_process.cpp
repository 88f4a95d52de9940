// Child processes: what a child inherits and how run_command ends.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "../process_gone.hpp"
#include "environment.hpp"
#include "fd.hpp"
#include "process.hpp"

using namespace im;

namespace {
// Runs `opts` with run_command on a loop of its own that feeds the reaper.
Result<CommandResult> run(SpawnOptions opts) {
    asio::io_context io(1);
    Reaper reaper;
    asio::signal_set chld(io, SIGCHLD);
    std::function<void()> arm = [&] {
        chld.async_wait([&](boost::system::error_code ec, int) {
            if (ec) return;
            reaper.reap();
            arm();
        });
    };
    arm();
    std::optional<Result<CommandResult>> out;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            out = co_await run_command(reaper, opts, "test");
            chld.cancel();
        },
        asio::detached);
    io.run();
    return std::move(*out);
}
using test_util::gone;
// SIGKILL is delivered asynchronously: waits (bounded) until `pid` is gone.
bool becomes_gone(pid_t pid) {
    for (int i = 0; i < 1000; ++i) {
        if (gone(pid)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}
}  // namespace

TEST_CASE("a spawned child holds only stdin, stdout and stderr", "[process]") {
    // A listening socket and a pipe as the API's sockets would be: without close-on-exec.
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM, 0));
    REQUIRE(listener);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    int p[2];
    REQUIRE(::pipe(p) == 0);
    UniqueFd pipe_r(p[0]), pipe_w(p[1]);

    SpawnOptions opts;
    // The shell's own descriptors, listed by its child ls.
    opts.argv = {"/bin/sh", "-c", "ls /proc/$$/fd"};
    auto r = run(opts);
    REQUIRE(r);
    CHECK(r->success());
    CHECK(r->output == "0\n1\n2\n");
}

TEST_CASE("a child's environment: the allow-list and what the manager sets, no PG*", "[process]") {
    ::setenv("PGPASSWORD", "wrong", 1);
    ::setenv("PGSSLMODE", "verify-full", 1);
    ::setenv("HOME", "/root", 1);
    ::setenv("IM_UNIT_STRAY", "x", 1);
    ::setenv("LC_ALL", "C.UTF-8", 1);
    SpawnOptions opts;
    opts.argv = {"/usr/bin/env"};
    opts.env = {"PGDATA=/data", "LC_ALL=C"};
    auto r = run(opts);
    REQUIRE(r);
    REQUIRE(r->success());
    INFO(r->output);
    const std::string& env = r->output;
    CHECK(env.find("PGDATA=/data\n") != std::string::npos);
    CHECK(env.find("LC_ALL=C\n") != std::string::npos);
    CHECK(env.find("LC_ALL=C.UTF-8") == std::string::npos);
    CHECK(env.find("PGPASSWORD") == std::string::npos);
    CHECK(env.find("PGSSLMODE") == std::string::npos);
    CHECK(env.find("HOME=") == std::string::npos);
    CHECK(env.find("IM_UNIT_STRAY") == std::string::npos);
    if (std::getenv("PATH")) CHECK(env.find("PATH=") != std::string::npos);
    ::unsetenv("IM_UNIT_STRAY");
    ::unsetenv("LC_ALL");

    // The manager's own: every PG* variable goes, the rest stays.
    drop_pg_environment();
    CHECK(std::getenv("PGPASSWORD") == nullptr);
    CHECK(std::getenv("PGSSLMODE") == nullptr);
    CHECK(std::getenv("HOME") != nullptr);
}

TEST_CASE("run_command: a passed deadline kills the child's whole group", "[process]") {
    char tmpl[] = "/tmp/im-unit-pids-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::string pids = tmpl;
    SpawnOptions opts;
    // The shell and a background job of its own, both far past the deadline.
    opts.argv = {"/bin/sh", "-c", "sleep 60 & echo $! > " + pids + "; echo $$ >> " + pids +
                                      "; sleep 60"};
    opts.deadline = std::chrono::milliseconds(200);
    auto r = run(opts);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "/bin/sh timed out after 200 ms");
    std::ifstream in(pids);
    pid_t grandchild = 0, child = 0;
    in >> grandchild >> child;
    std::filesystem::remove(pids);
    REQUIRE(grandchild > 0);
    REQUIRE(child > 0);
    CHECK(gone(child));  // reaped before run_command returned
    CHECK(becomes_gone(grandchild));  // the background job went with its group

    // No output for the stall deadline: the same end, with its own message.
    SpawnOptions stall;
    stall.argv = {"/bin/sh", "-c", "echo started; sleep 60"};
    stall.stall_deadline = std::chrono::milliseconds(200);
    auto s = run(stall);
    REQUIRE_FALSE(s);
    CHECK(s.error().message == "/bin/sh made no progress for 200 ms");

    // A command that ends in time is not disturbed, and nothing is left waiting.
    SpawnOptions quick;
    quick.argv = {"/bin/sh", "-c", "echo done"};
    quick.deadline = std::chrono::minutes(10);
    quick.stall_deadline = std::chrono::minutes(10);
    auto q = run(quick);
    REQUIRE(q);
    CHECK(q->success());
    CHECK(q->output == "done\n");
    CHECK(describe_duration(std::chrono::minutes(10)) == "10 min");
    CHECK(describe_duration(std::chrono::seconds(30)) == "30 s");
}
