#include "quorum/write_keeper.hpp"

#include <random>

#include "http_client.hpp"
#include "json_fields.hpp"
#include "json_text.hpp"
#include "log.hpp"

namespace im::quorum {

using namespace authority;

namespace {
uint64_t random_seq() {
    // A fresh start for every WriteRight: a late answer to a round of an
    // earlier incarnation never matches a new one (write_right.hpp).
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}
int64_t ms_left(Instant until, Instant now) {
    return until > now ? std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()
                       : 0;
}
}  // namespace

WriteKeeper::WriteKeeper(asio::any_io_executor ex, std::string self, MemberService& own,
                         WriteRightParams params, std::string token)
    : ex_(std::move(ex)),
      self_(std::move(self)),
      own_(own),
      params_(params),
      token_(std::move(token)) {}

void WriteKeeper::hold(uint64_t term, Membership membership,
                       std::map<std::string, std::string> urls) {
    ++generation_;
    if (wake_) wake_->cancel();
    right_.emplace(self_, term, std::move(membership), params_, random_seq());
    urls_ = std::move(urls);
    reported_ = false;
    superseded_ = false;
    last_deadline_.reset();
    log::info("authority", "holding the write right", {{"term", term}});
    asio::co_spawn(ex_, renew_loop(generation_), asio::detached);
}

void WriteKeeper::drop() {
    if (!right_) return;
    ++generation_;
    log::info("authority", "write right dropped", {{"term", right_->term()}});
    right_.reset();
    last_deadline_.reset();
    if (wake_) wake_->cancel();
    if (moved_) moved_();
}

awaitable<void> WriteKeeper::release() {
    if (!right_) co_return;
    const uint64_t term = right_->term();
    auto members = right_->membership().names;
    drop();
    own_.release(self_, term);
    std::vector<http_client::HttpCall> calls;
    const std::string body = json_text(nlohmann::json{{"holder", self_}, {"term", term}});
    for (const auto& name : members) {
        if (name == self_) continue;
        auto it = urls_.find(name);
        if (it == urls_.end() || it->second.empty()) continue;
        auto url = http_client::parse_url(it->second);
        if (!url) continue;
        url->path = "/v1/authority/release";
        calls.push_back({"POST", *url, body});
    }
    // Best effort: a member that does not hear it reports the grant, and the
    // next promotion waits it out.
    (void)co_await http_client::async_http_all(calls, token_, std::chrono::milliseconds(500), tls_,
                                               false);
}

std::optional<Instant> WriteKeeper::deadline() const {
    if (!right_) return std::nullopt;
    return right_->deadline();
}

void WriteKeeper::round() {
    const Instant now = own_now();
    GrantRequest req = right_->begin_round(now);
    nlohmann::json body = to_json(req);
    for (const auto& name : right_->membership().names) {
        if (name == self_) continue;
        auto it = urls_.find(name);
        if (it == urls_.end() || it->second.empty()) continue;  // unknown address: unreachable
        body["to"] = name;  // a member answers only for itself (an address may be reused)
        asio::co_spawn(ex_, ask(name, it->second, json_text(body), generation_), asio::detached);
    }
    // Our own member grants like any other, without the network.
    auto mine = own_.grant(req, now);
    if (mine) answered(self_, *mine);
}

awaitable<void> WriteKeeper::ask(std::string member, std::string url_text, std::string body,
                                 uint64_t generation) {
    auto url = http_client::parse_url(url_text);
    if (!url) co_return;
    url->path = "/v1/authority/grant";
    // An answer later than the ttl could not count for anything.
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(params_.ttl);
    auto reply = co_await http_client::async_http_request("POST", *url, body, token_, timeout,
                                                          tls_, false);
    if (generation != generation_ || !right_) co_return;
    if (!reply || reply->status != 200) co_return;
    auto j = parse_json_object(reply->body);
    if (!j || json_string(*j, "member") != member) co_return;  // not the member we asked
    answered(member, grant_answer_from(*j));
}

void WriteKeeper::answered(const std::string& member, const GrantAnswer& a) {
    if (!right_) return;
    auto outcome = right_->on_answer(member, a);
    if (outcome == AnswerOutcome::superseded)
        log::warn("authority", "a member promised a newer term",
                  {{"member", member}, {"term", a.promised_term}});
    check();
}

void WriteKeeper::check() {
    if (!right_) return;
    const Instant now = own_now();
    auto d = right_->deadline();
    if (d != last_deadline_) {
        bool later = d && (!last_deadline_ || *d > *last_deadline_);
        last_deadline_ = d;
        if (later && moved_) moved_();
        if (wake_) wake_->cancel();  // the loop re-arms for the new deadline
    }
    if (right_->superseded()) {
        superseded_ = true;
        if (reported_) return;
        reported_ = true;
        std::string why = "term " + std::to_string(*right_->newer_term()) +
                          " was promised: this primary of term " + std::to_string(right_->term()) +
                          " steps down";
        if (lost_) lost_(true, why);
        return;
    }
    if (!last_deadline_) return;  // never held a majority: nothing to lose (gather says so)
    if (now < *last_deadline_) {
        reported_ = false;  // held (again): a later lapse is news
        return;
    }
    if (reported_) return;
    reported_ = true;
    if (lost_) lost_(false, "no majority renewed the write right in time");
}

awaitable<GatherVerdict> WriteKeeper::gather(std::chrono::milliseconds timeout) {
    asio::steady_timer timer(ex_);
    const auto until = std::chrono::steady_clock::now() + timeout;
    const uint64_t generation = generation_;
    for (;;) {
        if (!right_ || generation != generation_)
            co_return superseded_ ? GatherVerdict::superseded : GatherVerdict::no_majority;
        if (right_->superseded()) co_return GatherVerdict::superseded;
        // The grants, and the durability record they carry: a primary that
        // may write uses synchronous standbys a majority knows about.
        if (right_->may_write(own_now()) && recorded()) co_return GatherVerdict::granted;
        if (std::chrono::steady_clock::now() >= until) co_return GatherVerdict::no_majority;
        timer.expires_after(std::chrono::milliseconds(5));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

void WriteKeeper::continue_record(const DurabilityRecord& start) {
    if (right_) right_->continue_record(start);
}

void WriteKeeper::set_sets(std::vector<QuorumSet> sets) {
    if (!right_) return;
    const uint64_t before = right_->record().version;
    right_->set_record(std::move(sets));
    if (right_->record().version == before) return;
    log::info("authority", "durability record",
              {{"term", right_->term()},
               {"version", right_->record().version},
               {"sets", describe(right_->record().sets)}});
    round();  // at once: a change waits for it
}

bool WriteKeeper::recorded() const {
    return right_ && right_->recorded_version() >= right_->record().version;
}

awaitable<bool> WriteKeeper::confirm(std::chrono::milliseconds timeout) {
    asio::steady_timer timer(ex_);
    const auto until = std::chrono::steady_clock::now() + timeout;
    const uint64_t generation = generation_;
    while (right_ && generation == generation_ && !right_->superseded()) {
        if (recorded()) co_return true;
        if (std::chrono::steady_clock::now() >= until) break;
        timer.expires_after(std::chrono::milliseconds(5));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    co_return false;
}

awaitable<void> WriteKeeper::renew_loop(uint64_t generation) {
    auto timer = std::make_shared<asio::steady_timer>(ex_);
    wake_ = timer;
    while (generation == generation_ && right_) {
        const Instant now = own_now();
        if (now >= right_->next_renewal()) round();
        check();
        if (generation != generation_ || !right_) break;
        Instant wake = right_->next_renewal();
        if (auto d = right_->deadline(); d && *d > own_now()) wake = std::min(wake, *d);
        // The authority's clock is not the timer's: wait the difference.
        timer->expires_after(std::max(wake - own_now(), Duration{0}));
        boost::system::error_code ec;
        co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

nlohmann::json WriteKeeper::status() const {
    if (!right_) return nullptr;
    const Instant now = own_now();
    nlohmann::json grants = nlohmann::json::object();
    for (const auto& [member, until] : right_->valid_until()) grants[member] = ms_left(until, now);
    auto d = right_->deadline();
    return {{"term", right_->term()},
            {"may_write", right_->may_write(now)},
            {"remaining_ms", d ? ms_left(*d, now) : 0},
            {"majority", right_->membership().majority()},
            {"grants_ms", grants},
            {"superseded_by",
             right_->newer_term() ? nlohmann::json(*right_->newer_term()) : nlohmann::json()},
            {"durability",
             {{"record", to_json(right_->record())},
              {"recorded_version", right_->recorded_version()},
              {"sets", describe(right_->record().sets)}}}};
}

}  // namespace im::quorum
