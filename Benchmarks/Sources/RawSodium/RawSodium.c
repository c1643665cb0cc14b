#include "RawSodium.h"
#include <sodium.h>
#include <string.h>

int raw_sodium_init(void) { return sodium_init(); }

static void wireguard_nonce(uint8_t nonce[12], uint64_t counter) {
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

void raw_chacha_seal(uint8_t *buf, size_t len, const uint8_t key[32], uint64_t counter) {
    uint8_t nonce[12];
    wireguard_nonce(nonce, counter);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf, buf + len, NULL, buf, len, NULL, 0, NULL, nonce, key);
}

int raw_chacha_open(uint8_t *buf, size_t len, const uint8_t key[32], uint64_t counter) {
    uint8_t nonce[12];
    wireguard_nonce(nonce, counter);
    if (len < 16) return -1;
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(buf, NULL, buf, len - 16, buf + len - 16, NULL, 0, nonce, key);
}

int raw_x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32]) {
    return crypto_scalarmult_curve25519(out, scalar, point);
}
