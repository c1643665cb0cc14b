// libssh 0.10 server API, imported only by SSHServer.
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <libssh/callbacks.h>
#include <libssh/sftp.h>

#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <termios.h>

// ioctl(2) is variadic, which Swift cannot call; SSHServer needs exactly one
// request on a pty master: setting the window size (pty-req, window-change).
static inline int tether_pty_set_winsize(int fd, unsigned short rows, unsigned short cols,
                                         unsigned short xpixel, unsigned short ypixel) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols, .ws_xpixel = xpixel, .ws_ypixel = ypixel };
    return ioctl(fd, TIOCSWINSZ, &ws);
}

// glibc declares these only under _GNU_SOURCE, and Swift's Glibc module is
// built without it. They are stable glibc ≥ 2.34 symbols (Debian 12 ships
// 2.36); SSHServer needs them to start a session's program safely (no fd
// leaks, a working directory, a new session for the pty), for a pty, and for
// close-on-exec pipes and sockets in one call.
#include <spawn.h>
#include <sys/socket.h>
extern int pipe2(int pipefd[2], int flags);
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
extern int posix_openpt(int flags);
extern int grantpt(int fd);
extern int unlockpt(int fd);
extern int ptsname_r(int fd, char *buf, size_t buflen);
/// POSIX_SPAWN_SETSID from <spawn.h> (glibc ≥ 2.26).
static const short TETHER_POSIX_SPAWN_SETSID = 0x80;

// libssh 0.10 parses a pty-req's encoded terminal modes (RFC 4254 §6.2)
// into its private message struct but offers no accessor for them (the
// channel pty callback passes only TERM and sizes). This door reads them
// through a mirror of the first fields of that struct as libssh 0.10 lays
// it out (include/libssh/messages.h), and only after checking the mirror
// against the public accessors of the same message: if a libssh build lays
// the struct out differently, the checks fail and the modes read as absent
// (the server then applies its defaults). Other libssh versions: absent.
#if LIBSSH_VERSION_MAJOR == 0 && LIBSSH_VERSION_MINOR == 10
struct tether_libssh010_message_prefix {
    ssh_session session;
    int type;
    struct {
        char *username; int method; char *password; void *pubkey; char *sigtype; int signature_state;
        char kbdint_response;
    } auth;
    struct {
        int type; uint32_t sender; uint32_t window; uint32_t packet_size; char *originator;
        uint16_t originator_port; char *destination; uint16_t destination_port;
    } open;
    struct {
        int type; ssh_channel channel; uint8_t want_reply; char *term;
        uint32_t width; uint32_t height; uint32_t pxwidth; uint32_t pxheight; ssh_string modes;
    } request;
};
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
/// The pty-req message's fields; `modes`/`modes_length` are NULL/0 when
/// libssh's layout could not be confirmed. Returns 0, or -1 when `message`
/// is not a pty-req.
static inline int tether_pty_request(ssh_message message, const char **term, int *width, int *height,
                                     int *pxwidth, int *pxheight, const unsigned char **modes,
                                     size_t *modes_length) {
    if (ssh_message_type(message) != SSH_REQUEST_CHANNEL ||
        ssh_message_subtype(message) != SSH_CHANNEL_REQUEST_PTY) {
        return -1;
    }
    *term = ssh_message_channel_request_pty_term(message);
    *width = ssh_message_channel_request_pty_width(message);
    *height = ssh_message_channel_request_pty_height(message);
    *pxwidth = ssh_message_channel_request_pty_pxwidth(message);
    *pxheight = ssh_message_channel_request_pty_pxheight(message);
    *modes = NULL;
    *modes_length = 0;
#if LIBSSH_VERSION_MAJOR == 0 && LIBSSH_VERSION_MINOR == 10
    const struct tether_libssh010_message_prefix *m = (const void *)message;
    if (m->type == SSH_REQUEST_CHANNEL &&
        m->request.type == SSH_CHANNEL_REQUEST_PTY &&
        m->request.channel == ssh_message_channel_request_channel(message) && m->request.term == *term &&
        m->request.width == (uint32_t)*width && m->request.height == (uint32_t)*height &&
        m->request.pxwidth == (uint32_t)*pxwidth && m->request.pxheight == (uint32_t)*pxheight &&
        m->request.modes != NULL) {
        *modes = (const unsigned char *)ssh_string_data(m->request.modes);
        *modes_length = ssh_string_len(m->request.modes);
    }
#endif
    return 0;
}
#pragma GCC diagnostic pop
