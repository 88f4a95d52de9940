#pragma once
// Looks at postgres at least once per check interval over one persistent
// local connection, and records what it saw in InstanceState. Probes and
// status answer from that record, so they cost postgres nothing.
#include <functional>

#include "asio.hpp"
#include "config.hpp"
#include "daemon/instance_state.hpp"
#include "event.hpp"
#include "pg_session.hpp"

namespace im {

class Monitor {
  public:
    // Called after each check, on the loop, with the session (still connected
    // when the check succeeded) so the daemon can act on what was seen.
    using AfterCheck = std::function<awaitable<void>(PgSession&)>;

    Monitor(asio::any_io_executor ex, const Config& cfg, InstanceState& state);

    awaitable<void> run(AfterCheck after);
    void poke();  // check now (after a start, a stop, a command)
    void stop();
    std::string local_conninfo() const;
    // A session to our own postgres, verified to be ours (its data
    // directory): every command's connection is made here.
    awaitable<Status> connect_local(PgSession& session, std::chrono::milliseconds timeout) const;

  private:
    awaitable<void> check_once();
    Status check_serving(const std::string& data_directory) const;

    asio::any_io_executor ex_;
    const Config& cfg_;
    InstanceState& state_;
    PgSession session_;
    std::shared_ptr<Event> wake_;
    bool stopped_ = false;
};

}  // namespace im
