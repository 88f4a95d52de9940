#pragma once
// What both files of the cluster's configuration share: lines read one by
// one, and every problem reported at once as "line N: why; ...".
#include <string>
#include <string_view>
#include <vector>

namespace im::parameters {

inline std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    for (size_t pos = 0; pos <= text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        out.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

class LineErrors {
  public:
    void add(size_t line, const std::string& why) {
        if (!text_.empty()) text_ += "; ";
        text_ += "line " + std::to_string(line) + ": " + why;
    }
    bool empty() const { return text_.empty(); }
    const std::string& text() const { return text_; }

  private:
    std::string text_;
};

}  // namespace im::parameters
