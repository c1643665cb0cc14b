// zlib, imported only by ControlPlane (the gzip-compressed agent download).
// `deflateInit2` is a macro; `czlib_deflate_init_gzip` is the function form.
#include <zlib.h>

static inline int czlib_deflate_init_gzip(z_stream *stream, int level) {
    // windowBits 15 + 16: a gzip wrapper (RFC 1952) instead of zlib's.
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
