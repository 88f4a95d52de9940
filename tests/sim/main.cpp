// authority_sim: runs seeds of the deterministic simulation and prints what
// it found. A failing seed prints its number and a short trace, and replays
// exactly with --seed N --trace.
//
//   authority_sim --seeds 100000              the new rule: expects no violation
//   authority_sim --seed 4711 --trace         one seed, every decision
//   authority_sim --rogue-proposer --seeds 20000
//                                             proposers that promote without waiting
//                                             (a buggy or second controller, a promote
//                                             by hand): the members' rule alone holds
//   authority_sim --old-rule --seeds 2000 --expect-violation
//                                             today's rule: exits 0 only if the
//                                             simulator finds two writable primaries
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "sim_world.hpp"

namespace {

struct Options {
    uint64_t first = 1, count = 1000;
    bool single = false, trace = false, old_rule = false, expect_violation = false, rogue = false;
    uint64_t sync = 0;
    bool sync_stale = false;
};

int usage() {
    std::fprintf(stderr,
                 "usage: authority_sim [--seeds N] [--first S] [--seed S [--trace]] "
                 "[--old-rule] [--rogue-proposer] [--synchronous K [--sync-stale-reads]] "
                 "[--expect-violation]\n");
    return 2;
}

void print_trace(const sim::World& w, size_t last) {
    const auto& lines = w.trace_lines();
    size_t from = lines.size() > last ? lines.size() - last : 0;
    if (from > 0) std::printf("  ... (%zu earlier lines; --trace shows all)\n", from);
    for (size_t i = from; i < lines.size(); ++i) std::printf("  %s\n", lines[i].c_str());
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](uint64_t& out) {
            if (i + 1 >= argc) return false;
            char* end = nullptr;
            out = std::strtoull(argv[++i], &end, 10);
            return end && *end == '\0';
        };
        if (a == "--seeds") {
            if (!value(o.count)) return usage();
        } else if (a == "--first") {
            if (!value(o.first)) return usage();
        } else if (a == "--seed") {
            if (!value(o.first)) return usage();
            o.count = 1;
            o.single = true;
        } else if (a == "--trace") {
            o.trace = true;
        } else if (a == "--old-rule") {
            o.old_rule = true;
        } else if (a == "--rogue-proposer") {
            o.rogue = true;
        } else if (a == "--synchronous") {
            if (!value(o.sync) || o.sync == 0 || o.sync > 4) return usage();
        } else if (a == "--sync-stale-reads") {
            o.sync_stale = true;
        } else if (a == "--expect-violation") {
            o.expect_violation = true;
        } else {
            return usage();
        }
    }
    sim::Params params;
    params.old_rule = o.old_rule;
    params.rogue_proposer = o.rogue;
    params.sync = static_cast<unsigned>(o.sync);
    params.sync_stale = o.sync_stale;

    const auto t0 = std::chrono::steady_clock::now();
    uint64_t events = 0, violations = 0, liveness = 0, first_bad = 0;
    double sim_seconds = 0;
    std::array<uint64_t, static_cast<size_t>(sim::FaultKind::count)> by_fault{}, alone{};
    uint64_t with_two_controllers = 0, without_active_fault = 0;
    std::map<std::string, uint64_t> shapes;
    std::string first_what;
    uint64_t promotions = 0, seeds_promoting = 0, takeovers = 0, superseded_rounds = 0;
    uint64_t step_downs = 0, crashes = 0, crashes_at_persist = 0, switchovers = 0, releases = 0;
    uint64_t acknowledged = 0, sync_blocked = 0;
    for (uint64_t s = o.first; s < o.first + o.count; ++s) {
        sim::World w(s, params, o.trace && o.single);
        sim::Outcome r = w.run();
        events += r.events;
        promotions += r.promotions;
        seeds_promoting += r.promotions > 0 ? 1 : 0;
        takeovers += r.takeovers;
        superseded_rounds += r.superseded_rounds;
        step_downs += r.step_downs;
        crashes += r.crashes;
        crashes_at_persist += r.crashes_at_persist;
        switchovers += r.switchovers;
        releases += r.releases;
        acknowledged += r.acknowledged;
        sync_blocked += r.sync_blocked;
        sim_seconds += static_cast<double>(r.sim_time) / 1e6;
        if (o.single) {
            if (o.trace) print_trace(w, SIZE_MAX);
            std::printf("seed %llu: %d members, %d controller(s), %llu events, %.1f simulated s: %s\n",
                        static_cast<unsigned long long>(s), w.members(), w.controllers(),
                        static_cast<unsigned long long>(r.events),
                        static_cast<double>(r.sim_time) / 1e6,
                        r.violation || r.liveness_failed ? r.what.c_str() : "ok");
        }
        if (!r.violation && !r.liveness_failed) continue;
        if (r.violation) {
            ++violations;
            bool seen[static_cast<size_t>(sim::FaultKind::count)] = {};
            for (auto k : r.active) seen[static_cast<size_t>(k)] = true;
            size_t kinds = 0, only = 0;
            for (size_t k = 0; k < by_fault.size(); ++k) {
                by_fault[k] += seen[k] ? 1 : 0;
                if (seen[k]) ++kinds, only = k;
            }
            if (kinds == 1) ++alone[only];  // the one kind of fault about at the time
            if (r.active.empty()) ++without_active_fault;
            if (w.controllers() == 2) ++with_two_controllers;
        } else {
            ++liveness;
        }
        shapes[std::to_string(w.members()) + " members, " + std::to_string(w.controllers()) +
               " controller(s)"]++;
        if (!first_bad) {
            first_bad = s;
            first_what = r.what;
            if (!o.single) {
                // Replayed with the trace on: the same seed, the same run.
                sim::World again(s, params, true);
                sim::Outcome r2 = again.run();
                std::printf("seed %llu FAILS: %s\n", static_cast<unsigned long long>(s),
                            r2.what.c_str());
                print_trace(again, 25);
                std::string sync_flags =
                    o.sync ? " --synchronous " + std::to_string(o.sync) +
                                 (o.sync_stale ? " --sync-stale-reads" : "")
                           : "";
                std::printf("  replay: authority_sim%s%s%s --seed %llu --trace\n",
                            o.old_rule ? " --old-rule" : "", o.rogue ? " --rogue-proposer" : "",
                            sync_flags.c_str(), static_cast<unsigned long long>(s));
            }
        }
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!o.single) {
        std::printf("%s rule: %llu seeds (from %llu) in %.2f s wall: %.0f seeds/s, %.0f events/s, "
                    "%.1f simulated s per seed, %.0f events per seed\n",
                    o.old_rule ? "old" : (o.rogue ? "quorum (rogue proposers)" : "quorum"),
                    static_cast<unsigned long long>(o.count),
                    static_cast<unsigned long long>(o.first), wall,
                    static_cast<double>(o.count) / wall, static_cast<double>(events) / wall,
                    sim_seconds / static_cast<double>(o.count),
                    static_cast<double>(events) / static_cast<double>(o.count));
        auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
        std::printf("exercised: %llu promotions (in %llu seeds), %llu rounds by a stood-by "
                    "controller taking over, %llu rounds refused (superseded), %llu primaries "
                    "stepping down, %llu crashes (%llu between persist and reply)\n",
                    u(promotions), u(seeds_promoting), u(takeovers), u(superseded_rounds),
                    u(step_downs), u(crashes), u(crashes_at_persist));
        std::printf("switchovers: %llu begun, %llu grants released\n", u(switchovers),
                    u(releases));
        if (o.sync)
            std::printf("synchronous ANY %llu%s: %llu commits acknowledged, %llu failovers the "
                        "rule held back for a while\n",
                        u(o.sync), o.sync_stale ? " (stale reads)" : "", u(acknowledged),
                        u(sync_blocked));
        std::printf("violations (two writable primaries%s): %llu; liveness failures: %llu\n",
                    o.sync ? ", or an acknowledged commit lost" : "",
                    static_cast<unsigned long long>(violations),
                    static_cast<unsigned long long>(liveness));
        if (violations) {
            std::printf("faults active (or healed < 10 s before) at the violations:");
            for (size_t k = 0; k < by_fault.size(); ++k)
                std::printf(" %s %llu;", sim::to_string(static_cast<sim::FaultKind>(k)),
                            static_cast<unsigned long long>(by_fault[k]));
            std::printf(" none %llu; with two controllers %llu\n",
                        static_cast<unsigned long long>(without_active_fault),
                        static_cast<unsigned long long>(with_two_controllers));
            std::printf("violations where one kind of fault alone was about:");
            for (size_t k = 0; k < alone.size(); ++k)
                std::printf(" %s %llu;", sim::to_string(static_cast<sim::FaultKind>(k)),
                            static_cast<unsigned long long>(alone[k]));
            std::printf("\n");
        }
        for (const auto& [shape, n] : shapes)
            std::printf("  failing seeds with %s: %llu\n", shape.c_str(),
                        static_cast<unsigned long long>(n));
    }
    const bool failed = violations > 0 || liveness > 0;
    if (o.expect_violation) return violations > 0 ? 0 : 1;
    return failed ? 1 : 0;
}
