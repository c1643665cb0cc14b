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
