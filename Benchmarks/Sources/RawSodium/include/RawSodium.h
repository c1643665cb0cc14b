#ifndef RAW_SODIUM_H
#define RAW_SODIUM_H
#include <stddef.h>
#include <stdint.h>

// Reference measurements: libsodium called straight from C, the way a C
// WireGuard implementation would, for the same work our Swift code does.

int raw_sodium_init(void);

/// Seals `len` bytes in place with ChaCha20-Poly1305 (IETF), WireGuard nonce
/// layout (4 zero bytes, 64-bit little-endian counter); tag written after.
void raw_chacha_seal(uint8_t *buf, size_t len, const uint8_t key[32], uint64_t counter);

/// Opens `len` bytes (ciphertext, then 16-byte tag) in place; 0 on success.
int raw_chacha_open(uint8_t *buf, size_t len, const uint8_t key[32], uint64_t counter);

/// One X25519 scalar multiplication; 0 on success.
int raw_x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32]);
#endif
