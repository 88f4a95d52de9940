#pragma once
// One role command at a time on an instance: the commands the controller
// sends and the manager's own self-fence (a lapsed lease) take the same
// slot, so none ever runs beside another. This is the only place the rule
// lives; the HTTP layer does not keep a flag of its own.
#include <optional>

namespace im {

class CommandSlot {
  public:
    // Held while a command runs; releases the slot when it goes.
    class Held {
      public:
        explicit Held(bool& taken) : taken_(&taken) { *taken_ = true; }
        Held(Held&& other) noexcept : taken_(other.taken_) { other.taken_ = nullptr; }
        Held(const Held&) = delete;
        Held& operator=(const Held&) = delete;
        Held& operator=(Held&&) = delete;
        ~Held() {
            if (taken_) *taken_ = false;
        }

      private:
        bool* taken_;
    };

    // The slot, or nothing when a command holds it already.
    std::optional<Held> try_take() {
        if (taken_) return std::nullopt;
        return std::optional<Held>(std::in_place, taken_);
    }
    bool busy() const { return taken_; }

  private:
    bool taken_ = false;
};

}  // namespace im
