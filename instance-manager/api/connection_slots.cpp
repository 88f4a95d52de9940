#include "api/connection_slots.hpp"

namespace im {

// Shared with the slots: a session that outlives the server still finds it.
struct ConnectionSlots::State {
    size_t max = 0;
    size_t open = 0;
    size_t evictions = 0;
    std::list<Slot*> waiting;  // oldest wait first
};

ConnectionSlots::ConnectionSlots(size_t max) : state_(std::make_shared<State>()) {
    state_->max = max;
}

size_t ConnectionSlots::open() const { return state_->open; }
size_t ConnectionSlots::evictions() const { return state_->evictions; }

std::unique_ptr<ConnectionSlots::Slot> ConnectionSlots::take() {
    if (state_->open >= state_->max) {
        if (state_->waiting.empty()) return nullptr;
        Slot* oldest = state_->waiting.front();
        state_->waiting.pop_front();
        oldest->queued_ = false;
        oldest->evicted_ = true;
        --state_->open;
        ++state_->evictions;
        // Moved out first: closing may run code that touches the slot.
        auto close = std::move(oldest->close_);
        if (close) close();
    }
    ++state_->open;
    return std::unique_ptr<Slot>(new Slot(state_));
}

void ConnectionSlots::Slot::waiting(std::function<void()> close) {
    if (evicted_) return;
    busy();
    close_ = std::move(close);
    pos_ = state_->waiting.insert(state_->waiting.end(), this);
    queued_ = true;
}

void ConnectionSlots::Slot::busy() {
    if (queued_) state_->waiting.erase(pos_);
    queued_ = false;
    close_ = nullptr;
}

ConnectionSlots::Slot::~Slot() {
    busy();
    if (!evicted_) --state_->open;
}

}  // namespace im
