// OpenSSL 3 libcrypto, imported only by CryptoPrimitives, which uses it for
// BLAKE2s (EVP_MD "BLAKE2S-256", EVP_MAC "BLAKE2SMAC" and "HMAC").
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

// OSSL_PARAM arrays are built with macros and compound literals in C; Swift
// cannot expand them, so these shims build the two parameter lists we need.

/// Parameters for EVP_MAC "HMAC" with digest "BLAKE2S-256".
static inline int tether_hmac_blake2s_set_digest(EVP_MAC_CTX *ctx) {
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"BLAKE2S-256", 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(ctx, params);
}

/// Parameters for EVP_MAC "BLAKE2SMAC": the output length in the BLAKE2
/// parameter block (RFC 7693 §2.5), which is not the same as truncating.
static inline int tether_blake2smac_set_size(EVP_MAC_CTX *ctx, size_t size) {
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(ctx, params);
}
