#include "quorum/member_service.hpp"

#include <time.h>

#include "json_text.hpp"
#include "log.hpp"

namespace im::quorum {

using namespace authority;

namespace {
int64_t us(Duration d) { return d.count(); }
// A non-negative integer (JSON text parses as unsigned, a literal in code
// may be signed); anything else reads as 0.
uint64_t u64(const nlohmann::json& j, const char* key) {
    if (!j.is_object()) return 0;
    auto it = j.find(key);
    if (it == j.end()) return 0;
    if (it->is_number_unsigned()) return it->get<uint64_t>();
    if (it->is_number_integer() && it->get<int64_t>() >= 0)
        return static_cast<uint64_t>(it->get<int64_t>());
    return 0;
}
nlohmann::json refused(uint64_t promised_term, const std::string& reason) {
    return {{"ok", false}, {"promised_term", promised_term}, {"reason", reason}};
}
}  // namespace

Instant own_now() {
    // CLOCK_BOOTTIME, not CLOCK_MONOTONIC (steady_clock): it goes on while the
    // host is suspended, so a resumed primary never takes grants that ran out
    // meanwhile for live ones. The watchdog reads the same clock.
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return Instant{std::chrono::seconds(ts.tv_sec) +
                   std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(ts.tv_nsec))};
}

MemberService::MemberService(std::string self, GrantStore store, Duration max_ttl,
                             std::vector<std::string> configured)
    : self_(std::move(self)),
      store_(std::move(store)),
      max_ttl_(max_ttl),
      configured_(std::move(configured)) {}

MemberParams MemberService::params(uint64_t version) const { return MemberParams{version, max_ttl_}; }

Status MemberService::load(Instant now) {
    auto s = store_.load();
    if (!s) return s.error();
    stored_ = std::move(*s);
    auth_.reset();
    if (!configured_.empty() && stored_.membership.version != 0 &&
        stored_.membership.names != configured_)
        return make_error("--membership differs from the membership this member joined (" +
                          json_text(nlohmann::json(stored_.membership.names)) +
                          "): changing the membership is not supported");
    // A longer grant given before a restart with a shorter --grant-ttl is
    // still assumed to run its full length.
    max_ttl_ = std::max(max_ttl_, stored_.max_ttl);
    if (stored_.membership.version != 0)
        auth_ = MemberAuthority::restore(params(stored_.membership.version), stored_.grants, now);
    return Ok{};
}

Status MemberService::persist(const DurableGrantState& grants, const Membership& membership) {
    StoredAuthority next{grants, membership, max_ttl_};
    if (auto st = store_.save(next); !st) {
        log::error("authority", "cannot persist the promise/grant state: refusing to answer",
                   {{"error", st.error().message}});
        return st;
    }
    stored_ = std::move(next);
    return Ok{};
}

Result<nlohmann::json> MemberService::promise(const nlohmann::json& body, uint64_t received_lsn,
                                              Instant now) {
    PromiseRequest req;
    req.term = u64(body, "term");
    req.proposer = body.at("proposer").get<std::string>();
    req.membership_version = u64(body, "membership_version");
    Membership asked{req.membership_version, body.at("members").get<std::vector<std::string>>()};
    // Meant for another member (an address that now belongs to us): a
    // promise counted for the wrong name would make a false majority.
    if (body.at("to").get<std::string>() != self_)
        return refused(stored_.grants.promised_term,
                       "meant for " + body.at("to").get<std::string>() + ", this is " + self_);
    if (!asked.contains(self_))
        return refused(stored_.grants.promised_term, "this instance is not in that membership");
    if (!configured_.empty() && asked.names != configured_)
        return refused(stored_.grants.promised_term,
                       "not the configured membership " + json_text(nlohmann::json(configured_)));
    std::optional<MemberAuthority> fresh;
    MemberAuthority* auth = auth_ ? &*auth_ : nullptr;
    if (!auth) {
        // The first membership this member hears of: it joins with this promise.
        fresh = MemberAuthority::restore(params(asked.version), stored_.grants, now);
        auth = &*fresh;
    } else if (asked.version != stored_.membership.version ||
               asked.names != stored_.membership.names) {
        return refused(stored_.grants.promised_term,
                       "another membership (version " + std::to_string(stored_.membership.version) +
                           "): changing the membership is not supported");
    }
    auto d = auth->on_promise(req, now, received_lsn);
    if (d.persist)
        if (auto st = persist(*d.persist, asked); !st) return st.error();
    if (fresh && d.reply.ok) {
        auth_ = std::move(fresh);
        log::info("authority", "joined a membership", {{"members", asked.names},
                                                       {"version", asked.version}});
    }
    if (d.persist)
        log::info("authority", "promised a term",
                  {{"term", req.term}, {"proposer", req.proposer},
                   {"grants_run_ms", us(d.reply.grant_remaining) / 1000}});
    if (!d.reply.ok) return refused(d.reply.promised_term, "a term at least as new was promised");
    return nlohmann::json{{"ok", true},
                          {"member", self_},
                          {"promised_term", d.reply.promised_term},
                          {"grant_remaining_us", us(d.reply.grant_remaining)},
                          {"quiet", d.reply.quiet},
                          {"received_lsn", d.reply.received_lsn},
                          {"durability", to_json(d.reply.durability)}};
}

Result<GrantAnswer> MemberService::grant(const GrantRequest& req, Instant now) {
    if (!auth_) {
        GrantAnswer a;
        a.term = req.term;
        a.seq = req.seq;
        return a;  // not a member yet: refused, no newer term known
    }
    const DurableGrantState before = stored_.grants;
    auto d = auth_->on_grant(req, now);
    if (d.persist) {
        if (auto st = persist(*d.persist, stored_.membership); !st) return st.error();
        if (d.persist->granted_to != before.granted_to || d.persist->granted_term != before.granted_term)
            log::info("authority", "granted the write right",
                      {{"holder", req.holder}, {"term", req.term}});
        if (!(d.persist->durability == before.durability))
            log::info("authority", "stored the holder's durability record",
                      {{"holder", req.holder},
                       {"term", d.persist->durability.term},
                       {"version", d.persist->durability.version},
                       {"sets", describe(d.persist->durability.sets)}});
    }
    return d.reply;
}

Result<nlohmann::json> MemberService::grant(const nlohmann::json& body, Instant now) {
    GrantRequest req;
    req.holder = body.at("holder").get<std::string>();
    req.term = u64(body, "term");
    req.ttl = std::chrono::milliseconds(body.at("ttl_ms").get<int64_t>());
    req.membership_version = u64(body, "membership_version");
    req.seq = u64(body, "seq");
    if (auto it = body.find("durability"); it != body.end())
        req.durability = authority::parse_durability(*it);  // checked by the endpoint
    if (body.at("to").get<std::string>() != self_) {
        GrantAnswer a;
        a.term = req.term;
        a.seq = req.seq;
        nlohmann::json out = to_json(a);
        out["reason"] = "meant for " + body.at("to").get<std::string>() + ", this is " + self_;
        return out;
    }
    if (auth_ && !stored_.membership.contains(req.holder)) {
        GrantAnswer a;
        a.term = req.term;
        a.seq = req.seq;
        nlohmann::json out = to_json(a);
        out["reason"] = "the holder is not a member";
        return out;
    }
    auto a = grant(req, now);
    if (!a) return a.error();
    nlohmann::json out = to_json(*a);
    out["member"] = self_;
    if (!a->ok)
        out["reason"] = !auth_ ? "not a member of any membership yet"
                               : "refused: another holder, an older term, or another membership";
    return out;
}

bool MemberService::release(const std::string& holder, uint64_t term) {
    if (!auth_) return false;
    bool released = auth_->on_release(holder, term);
    if (released) log::info("authority", "grant released", {{"holder", holder}, {"term", term}});
    return released;
}

nlohmann::json MemberService::release(const nlohmann::json& body) {
    return {{"released", release(body.at("holder").get<std::string>(), u64(body, "term"))}};
}

Duration MemberService::grant_remaining(Instant now) const {
    return auth_ ? auth_->grant_remaining(now) : Duration{0};
}

nlohmann::json MemberService::status(Instant now) const {
    const auto& g = stored_.grants;
    return {{"membership",
             stored_.membership.version == 0
                 ? nlohmann::json()
                 : nlohmann::json{{"version", stored_.membership.version},
                                  {"members", stored_.membership.names}}},
            {"promised_term", g.promised_term},
            {"promised_to", g.promised_to},
            {"granted_term", g.granted_term},
            {"granted_to", g.granted_to},
            {"durability", to_json(g.durability)},
            {"grant_remaining_ms", us(grant_remaining(now)) / 1000}};
}

nlohmann::json to_json(const GrantRequest& r) {
    nlohmann::json out = {{"holder", r.holder},
            {"term", r.term},
            {"ttl_ms", std::chrono::duration_cast<std::chrono::milliseconds>(r.ttl).count()},
            {"membership_version", r.membership_version},
            {"seq", r.seq}};
    if (r.durability) out["durability"] = to_json(*r.durability);
    return out;
}

nlohmann::json to_json(const GrantAnswer& a) {
    return {{"ok", a.ok},
            {"granted_us", us(a.granted)},
            {"promised_term", a.promised_term},
            {"term", a.term},
            {"seq", a.seq},
            {"durability_version", a.durability_version},
            {"durability_match", a.durability_match}};
}

namespace {
Duration us_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return Duration{it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0};
}
}  // namespace

GrantAnswer grant_answer_from(const nlohmann::json& j) {
    GrantAnswer a;
    if (!j.is_object()) return a;
    auto ok = j.find("ok");
    a.ok = ok != j.end() && ok->is_boolean() && ok->get<bool>();
    a.granted = us_field(j, "granted_us");
    a.promised_term = u64(j, "promised_term");
    a.term = u64(j, "term");
    a.seq = u64(j, "seq");
    a.durability_version = u64(j, "durability_version");
    auto match = j.find("durability_match");
    a.durability_match = match != j.end() && match->is_boolean() && match->get<bool>();
    return a;
}

PromiseAnswer promise_answer_from(const nlohmann::json& j) {
    PromiseAnswer a;
    if (!j.is_object()) return a;
    auto ok = j.find("ok");
    a.ok = ok != j.end() && ok->is_boolean() && ok->get<bool>();
    a.promised_term = u64(j, "promised_term");
    // A remaining time that does not parse is the longest: never shorter than the truth.
    auto rem = j.find("grant_remaining_us");
    a.grant_remaining = rem != j.end() && rem->is_number_integer()
                            ? Duration{rem->get<int64_t>()}
                            : std::chrono::duration_cast<Duration>(std::chrono::hours(1));
    a.received_lsn = u64(j, "received_lsn");
    auto quiet = j.find("quiet");
    a.quiet = quiet != j.end() && quiet->is_boolean() && quiet->get<bool>();
    if (auto d = j.find("durability"); d != j.end()) a.durability = durability_from(*d);
    return a;
}

}  // namespace im::quorum
