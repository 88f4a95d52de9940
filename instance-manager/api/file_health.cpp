#include "api/file_health.hpp"

#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "fs_util.hpp"

namespace im {

namespace {
std::unique_ptr<X509, void (*)(X509*)> first_certificate(const std::string& pem_path) {
    std::unique_ptr<X509, void (*)(X509*)> none(nullptr, &X509_free);
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(pem_path.c_str(), "r"), &std::fclose);
    if (!f) return none;
    return {PEM_read_X509(f.get(), nullptr, nullptr, nullptr), &X509_free};
}
}  // namespace

std::optional<std::string> certificate_common_name(const std::string& pem_path) {
    auto cert = first_certificate(pem_path);
    if (!cert) return std::nullopt;
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn,
                                      sizeof cn);
    if (n <= 0) return std::nullopt;
    return std::string(cn, static_cast<size_t>(n));
}

std::optional<double> certificate_expiry(const std::string& pem_path) {
    auto cert = first_certificate(pem_path);
    if (!cert) return std::nullopt;
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) return std::nullopt;
    return static_cast<double>(timegm(&tm));
}

std::vector<std::pair<std::string, std::string>> certificates_in_use(const Config& cfg) {
    std::vector<std::pair<std::string, std::string>> out = {
        {"postgres", cfg.pgdata + "/instance-manager/tls/server.crt"}};
    if (!cfg.tls_cert.empty()) out.emplace_back("api", cfg.tls_cert);
    if (!cfg.backup_tls_cert.empty()) out.emplace_back("backup", cfg.backup_tls_cert);
    return out;
}

std::vector<std::pair<std::string, bool>> secret_files_ok(const Config& cfg) {
    std::vector<std::pair<std::string, bool>> out;
    for (const auto& [label, path] : std::vector<std::pair<std::string, std::string>>{
             {"app-password", cfg.app_password_file},
             {"replication-password", cfg.replication_password_file},
             {"superuser-password", cfg.superuser_password_file},
             {"api-token", cfg.api_token_file},
             {"backup-tls-key", cfg.backup_tls_key}})
        if (!path.empty()) out.emplace_back(label, static_cast<bool>(fs::read_secret(path)));
    return out;
}

}  // namespace im
