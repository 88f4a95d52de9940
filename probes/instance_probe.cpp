// instance-probe: asks the instance manager one probe and turns the answer
// into an exit code, for Docker HEALTHCHECK and Kubernetes exec probes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "config.hpp"
#include "http_client.hpp"

int main(int argc, char** argv) {
    CLI::App app{"instance-probe: exit 0 when the instance manager's probe answers 200"};
    std::string url = "http://127.0.0.1:8000", probe, timeout = "5s";
    app.add_option("--url", url, "the manager's HTTP API")->envname("IM_PROBE_URL");
    app.add_option("--timeout", timeout, "how long to wait, e.g. 5s or 500ms");
    im::http_client::TlsClientOptions tls;
    app.add_option("--ca-file", tls.ca_file, "https: verify the manager against this CA")
        ->envname("IM_PROBE_CA_FILE");
    app.add_flag("--insecure", tls.insecure,
                 "https: do not verify the manager's certificate (a local check of our own pod)")
        ->envname("IM_PROBE_INSECURE");
    app.add_option("probe", probe, "healthz | readyz | startupz")
        ->required()
        ->check(CLI::IsMember({"healthz", "readyz", "startupz"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    std::chrono::milliseconds deadline;
    if (!im::parse_duration(timeout, deadline)) {
        std::fprintf(stderr, "instance-probe: --timeout: expected a duration like 5s\n");
        return 2;
    }
    auto base = im::http_client::parse_url(url);
    if (!base) {
        std::fprintf(stderr, "instance-probe: %s\n", base.error().message.c_str());
        return 2;
    }
    base->path = "/" + probe;
    auto reply = im::http_client::http_request("GET", *base, "", "", deadline, tls);
    if (!reply) {
        std::fprintf(stderr, "instance-probe: %s: %s\n", probe.c_str(),
                     reply.error().message.c_str());
        return 1;
    }
    if (reply->status == 200) return 0;
    std::string reason = "HTTP " + std::to_string(reply->status);
    auto j = nlohmann::json::parse(reply->body, nullptr, false);
    if (j.is_object() && j.contains("reason") && j["reason"].is_string())
        reason += ": " + j["reason"].get<std::string>();
    std::fprintf(stderr, "instance-probe: %s: %s\n", probe.c_str(), reason.c_str());
    return 1;
}
