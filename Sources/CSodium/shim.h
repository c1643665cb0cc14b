// libsodium, imported only by CryptoPrimitives. No shims are needed: every
// function we call is a plain C function.
#include <sodium.h>
