#pragma once
// The primary's side of the write authority, on the daemon: it holds the
// pure WriteRight (authority/write_right.hpp) for its term, asks every
// member's manager for a grant every ttl/3 (itself through its own
// MemberService, the others over HTTP, each answer counted when it comes),
// and says when the right is lost. It decides nothing about postgres: the
// daemon is told (on_lost) and stops it, and the watchdog is fed deadline().
//
// A dead controller never stops writes (the primary renews by itself); a
// controller cut off together with the primary cannot keep it writable
// (only the members' grants can).
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl.hpp>

#include "asio.hpp"
#include "authority/write_right.hpp"
#include "quorum/member_service.hpp"

namespace im::quorum {

enum class GatherVerdict { granted, no_majority, superseded };

class WriteKeeper {
  public:
    // `lost`: the right is gone while held: superseded (a newer term exists:
    // step down for good) or lapsed (no majority renewed in time).
    using LostHook = std::function<void(bool superseded, const std::string& why)>;
    // The deadline moved (later, or away): the watchdog follows it.
    using DeadlineHook = std::function<void()>;

    WriteKeeper(asio::any_io_executor ex, std::string self, MemberService& own,
                authority::WriteRightParams params, std::string token);

    void on_lost(LostHook h) { lost_ = std::move(h); }
    void on_deadline(DeadlineHook h) { moved_ = std::move(h); }
    // Peers' TLS (https member URLs).
    void set_tls(std::shared_ptr<asio::ssl::context> tls) { tls_ = std::move(tls); }

    // Holds the right for `term` from now on (a new WriteRight: nothing of an
    // earlier one counts) and starts renewing. `urls`: member -> manager URL.
    void hold(uint64_t term, authority::Membership membership,
              std::map<std::string, std::string> urls);
    void set_urls(std::map<std::string, std::string> urls) { urls_ = std::move(urls); }
    // Waits until a majority granted, the right is superseded, or `timeout`.
    awaitable<GatherVerdict> gather(std::chrono::milliseconds timeout);
    // Stops holding: no more renewals. release(): and asks every member to
    // forget its grant (only once postgres no longer accepts writes).
    void drop();
    awaitable<void> release();

    // The durability record sent with every grant request
    // (authority/durability.hpp). continue_record: right after hold(), from
    // the newest record known. set_sets: a new version, sent at once; the
    // primary uses the sets only once recorded() (a majority stored them).
    void continue_record(const authority::DurabilityRecord& start);
    void set_sets(std::vector<authority::QuorumSet> sets);
    bool recorded() const;
    // Waits until recorded(), the right is gone, or `timeout`.
    awaitable<bool> confirm(std::chrono::milliseconds timeout);
    const authority::DurabilityRecord* record() const { return right_ ? &right_->record() : nullptr; }

    bool holding() const { return right_.has_value(); }
    uint64_t term() const { return right_ ? right_->term() : 0; }
    std::optional<authority::Instant> deadline() const;
    nlohmann::json status() const;

  private:
    awaitable<void> renew_loop(uint64_t generation);
    void round();
    awaitable<void> ask(std::string member, std::string url, std::string body, uint64_t generation);
    void answered(const std::string& member, const authority::GrantAnswer& a);
    void check();

    asio::any_io_executor ex_;
    std::string self_;
    MemberService& own_;
    authority::WriteRightParams params_;
    std::string token_;
    std::shared_ptr<asio::ssl::context> tls_;
    std::optional<authority::WriteRight> right_;
    std::map<std::string, std::string> urls_;
    uint64_t generation_ = 0;  // bumped by hold/drop: older loops and answers stop counting
    bool reported_ = false;    // the loss was told once
    // The last right held was superseded (kept after a drop: a gather cut
    // short by the drop says why).
    bool superseded_ = false;
    std::optional<authority::Instant> last_deadline_;
    std::shared_ptr<asio::steady_timer> wake_;  // the renewal loop's timer, poked on changes
    LostHook lost_;
    DeadlineHook moved_;
};

}  // namespace im::quorum
