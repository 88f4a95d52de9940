#include "bootstrap/tls_cert.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "fs_util.hpp"

namespace im {

namespace {

template <class T, void (*F)(T*)>
struct Free {
    void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION, X509_EXTENSION_free>>;

std::string openssl_error(const std::string& what) {
    char buf[256] = {};
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    return what + ": " + buf;
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<size_t>(n));
}

bool add_ext(X509* cert, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

}  // namespace

Result<bool> ensure_self_signed_cert(const std::string& cert_path, const std::string& key_path,
                                     const std::string& common_name) {
    if (fs::exists(cert_path) && fs::exists(key_path)) return false;

    PkeyPtr key(EVP_EC_gen("P-256"));
    if (!key) return make_error(openssl_error("generating the TLS key"));

    X509Ptr cert(X509_new());
    if (!cert) return make_error(openssl_error("X509_new"));
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;  // a positive serial number
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 3650);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    std::string san = "DNS:" + common_name + ",DNS:localhost,IP:127.0.0.1,IP:::1";
    if (!add_ext(cert.get(), NID_subject_alt_name, san) ||
        !add_ext(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"))
        return make_error(openssl_error("adding certificate extensions"));
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
        return make_error(openssl_error("signing the certificate"));

    BioPtr key_bio(BIO_new(BIO_s_mem())), cert_bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                  nullptr) ||
        !PEM_write_bio_X509(cert_bio.get(), cert.get()))
        return make_error(openssl_error("encoding PEM"));
    // Key first: a certificate without its key would be reused and fail.
    if (auto st = fs::write_file_atomic(key_path, bio_text(key_bio.get()), 0600); !st)
        return st.error();
    if (auto st = fs::write_file_atomic(cert_path, bio_text(cert_bio.get()), 0644); !st)
        return st.error();
    return true;
}

}  // namespace im
