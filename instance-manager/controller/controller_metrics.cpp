#include "controller/controller_metrics.hpp"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <sstream>

namespace im {

namespace {
prometheus::Family<prometheus::Gauge>& gauge(prometheus::Registry& r, const char* name,
                                             const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
}  // namespace

ControllerMetrics::ControllerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      decisions_(prometheus::BuildCounter()
                     .Name("instance_manager_controller_decisions_total")
                     .Help("Decisions taken, by action (failover, switchover-done, ...)")
                     .Register(*registry_)),
      last_decision_(gauge(*registry_, "instance_manager_controller_last_decision_timestamp_seconds",
                           "Unix time of the last decision, by action")),
      term_(gauge(*registry_, "instance_manager_controller_term", "The controller's term")),
      primary_(gauge(*registry_, "instance_manager_controller_primary",
                     "1 for the member the controller holds as primary")),
      writable_primaries_(gauge(*registry_, "instance_manager_controller_writable_primaries",
                                "Members reporting themselves a ready primary holding the write "
                                "right (more than 1 must never last)")),
      members_(gauge(*registry_, "instance_manager_controller_members", "Members polled")),
      reachable_(gauge(*registry_, "instance_manager_controller_members_reachable",
                       "Members that answered the last poll")),
      member_role_(gauge(*registry_, "instance_manager_controller_member_role",
                         "1 for each member's reported role (unreachable: role=\"unreachable\")")),
      member_lag_(gauge(*registry_, "instance_manager_controller_member_lag_bytes",
                        "Each replica's replay lag as it reports it")),
      standing_by_(gauge(*registry_, "instance_manager_controller_standing_by",
                         "1 while a newer controller is in charge")),
      failover_blocked_(gauge(*registry_, "instance_manager_controller_failover_blocked",
                              "1 while the durability rule keeps it from promoting anyone")),
      rollout_active_(gauge(*registry_, "instance_manager_controller_rollout_active",
                            "1 while a rolling restart runs")),
      primary_lost_(gauge(*registry_, "instance_manager_controller_primary_lost_seconds",
                          "Seconds without a writable primary (0 while there is one)")) {}

void ControllerMetrics::count_decision(const std::string& action) {
    decisions_.Add({{"action", action}}).Increment();
    last_decision_.Add({{"action", action}})
        .Set(std::chrono::duration<double>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count());
}

std::string ControllerMetrics::render(const std::vector<MemberView>& members,
                                      const ControllerSnapshot& s) {
    term_.Add({}).Set(static_cast<double>(s.term));
    size_t reachable = 0, writable = 0;
    for (const auto& m : members) {
        primary_.Add({{"member", m.name}}).Set(m.name == s.primary ? 1 : 0);
        // One series per member: the role it reports now is 1, the rest 0.
        const std::string role = m.reachable ? m.role : "unreachable";
        for (const char* r : {"primary", "replica", "starting", "stopping", "stopped", "promoting",
                              "demoting", "fencing", "fenced", "unreachable"})
            member_role_.Add({{"member", m.name}, {"role", r}}).Set(role == r ? 1 : 0);
        if (m.reachable) ++reachable;
        if (m.reachable && m.role == "primary" && m.ready && (m.write_term == 0 || m.may_write))
            ++writable;
        if (m.reachable && m.role == "replica")
            member_lag_.Add({{"member", m.name}}).Set(static_cast<double>(m.lag_bytes));
    }
    members_.Add({}).Set(static_cast<double>(members.size()));
    reachable_.Add({}).Set(static_cast<double>(reachable));
    writable_primaries_.Add({}).Set(static_cast<double>(writable));
    standing_by_.Add({}).Set(s.standing_by ? 1 : 0);
    failover_blocked_.Add({}).Set(s.failover_blocked ? 1 : 0);
    rollout_active_.Add({}).Set(s.rollout_active ? 1 : 0);
    primary_lost_.Add({}).Set(s.primary_lost_seconds);
    std::ostringstream out;
    prometheus::TextSerializer{}.Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace im
