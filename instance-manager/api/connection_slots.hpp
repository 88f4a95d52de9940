#pragma once
// The HTTP server's open-connection cap, shared fairly with kubelet's probes.
//
// A fixed cap alone lets a flood of idle or slow clients hold every slot, so
// that /healthz gets 503 and the container is restarted. Instead, when the
// cap is reached, a new connection takes the slot of the connection that has
// waited longest for its next request (idle keep-alive, or a request that
// trickles in): that one is closed. A probe connects, sends its request at
// once and is answered within one turn of the loop, so it is never the one
// that has waited longest; a flood only evicts itself. Only when every slot
// is busy answering (a request read, its answer not yet written) is a new
// connection refused.
#include <cstddef>
#include <functional>
#include <list>
#include <memory>

namespace im {

class ConnectionSlots {
    struct State;

  public:
    // Held by a session for as long as its connection is open.
    class Slot {
      public:
        ~Slot();
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;

        // While waiting for a request the slot may be taken by a new
        // connection: `close` is then called (once) and must close this
        // connection's socket; the pending read then fails.
        void waiting(std::function<void()> close);
        // A request has arrived (or the wait ended): not evictable.
        void busy();
        bool evicted() const { return evicted_; }

      private:
        friend class ConnectionSlots;
        explicit Slot(std::shared_ptr<State> s) : state_(std::move(s)) {}
        std::shared_ptr<State> state_;
        std::function<void()> close_;
        std::list<Slot*>::iterator pos_;
        bool queued_ = false;
        bool evicted_ = false;
    };

    explicit ConnectionSlots(size_t max);

    // A slot for a new connection: a free one, else the one of the longest
    // waiting connection (which is closed), else nullptr (all are answering).
    std::unique_ptr<Slot> take();

    size_t open() const;       // slots held, evicted ones not counted
    size_t evictions() const;  // since start, for metrics and tests

  private:
    std::shared_ptr<State> state_;
};

}  // namespace im
