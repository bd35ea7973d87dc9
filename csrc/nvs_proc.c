/*
 * nvs_proc.c - an output folder's lock, stop requests, the workers' watch pipe (POSIX).
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* flock */
#endif
#if !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* SA_RESTART */
#endif
#include "nvs_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder itself: a new open file of it, so that the lock is this
 * descriptor's alone (closing another descriptor of the folder keeps it). */
static int lock_folder_itself(int folder)
{
    int fd = openat(folder, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EAGAIN : -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int nvs_lock_take(int folder, const char *name)
{
    int attempt;
    if (name == NULL)
        return lock_folder_itself(folder);
    for (attempt = 0; attempt < 100; attempt++) {
        struct stat held, named;
        int fd = openat(folder, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return errno == ELOOP ? -EINVAL : -errno; /* ELOOP: a planted link */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int rc = errno == EWOULDBLOCK ? -EAGAIN : -errno;
            close(fd);
            return rc;
        }
        if (fstat(fd, &held) == 0 && fstatat(folder, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
            if (!S_ISREG(held.st_mode) || held.st_nlink != 1) {
                close(fd);
                return -EINVAL;
            }
            return fd;
        }
        /* Removed (or replaced) by the holder before we locked: again. */
        close(fd);
    }
    return -EAGAIN;
}

int nvs_lock_adopt(int fd, int folder, const char *name)
{
    struct stat held, named;
    int rc = name == NULL ? fstat(folder, &named) : fstatat(folder, name, &named, AT_SYMLINK_NOFOLLOW);
    if (fstat(fd, &held) < 0 || rc < 0)
        return -errno;
    if (held.st_dev != named.st_dev || held.st_ino != named.st_ino)
        return -ESTALE;
    /* On the holder's own open file this succeeds; on any other it fails. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return nvs_fd_inherit(fd, 0);
}

int nvs_lock_held(int folder, const char *name)
{
    int held;
    /* Never made, nor followed; a fifo planted there must not block. */
    int fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP ? 0 : -errno;
    held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd); /* drops the shared lock taken when not held */
    return held;
}

void nvs_lock_release(int fd, int folder, const char *name, int remove)
{
    if (remove && name != NULL)
        unlinkat(folder, name, 0);
    close(fd);
}

int nvs_fd_inherit(int fd, int inherit)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return -errno;
    flags = inherit ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC;
    return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t watch_fd = -1;

/* What the handler calls last (nvs_signals_on_stop), or NULL. */
static void (*volatile stop_callback)(int);

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define STOP_SIGNALS (int)(sizeof stop_signals / sizeof stop_signals[0])

static void on_stop(int sig)
{
    int saved = errno; /* close() must not change what the interrupted code sees */
    int fd = watch_fd;
    if (stop_signal == 0)
        stop_signal = sig;
    if (fd >= 0) {
        watch_fd = -1;
        close(fd);
    }
    if (stop_callback != NULL)
        stop_callback(sig);
    errno = saved;
}

void nvs_signals_on_stop(void (*fn)(int sig))
{
    stop_callback = fn;
}

/* Blocks the stop signals (or unblocks them, restoring `old`), so that the
 * watch pipe's end is not closed by the handler while closed here. */
static void block_stops(sigset_t *old)
{
    sigset_t set;
    int i;
    sigemptyset(&set);
    for (i = 0; i < STOP_SIGNALS; i++)
        sigaddset(&set, stop_signals[i]);
    sigprocmask(SIG_BLOCK, &set, old);
}

int nvs_signals_catch(void)
{
    struct sigaction sa;
    int i;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    /* One handler at a time: a second signal waits for the first's. */
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < STOP_SIGNALS; i++)
        sigaddset(&sa.sa_mask, stop_signals[i]);
    /* Restarted calls: the batch looks at the request between units. */
    sa.sa_flags = SA_RESTART;
    for (i = 0; i < STOP_SIGNALS; i++)
        if (sigaction(stop_signals[i], &sa, NULL) < 0)
            return -errno;
    return 0;
}

void nvs_signals_default(void)
{
    struct sigaction sa;
    int i;
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    for (i = 0; i < STOP_SIGNALS; i++)
        sigaction(stop_signals[i], &sa, NULL);
    stop_signal = 0;
}

int nvs_stop_signal(void)
{
    return stop_signal;
}

void nvs_signal_reraise(int sig)
{
    sigset_t set;
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

int nvs_watch_open(void)
{
    int fds[2];
    sigset_t old;
    if (pipe(fds) < 0)
        return -errno;
    if (nvs_fd_inherit(fds[0], 0) < 0 || nvs_fd_inherit(fds[1], 0) < 0) {
        int rc = -errno;
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    nvs_watch_close();
    block_stops(&old);
    /* A stop already asked for: the workers must see it at once. */
    if (stop_signal != 0)
        close(fds[1]);
    else
        watch_fd = fds[1];
    sigprocmask(SIG_SETMASK, &old, NULL);
    return fds[0];
}

void nvs_watch_close(void)
{
    sigset_t old;
    block_stops(&old);
    if (watch_fd >= 0) {
        close(watch_fd);
        watch_fd = -1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int nvs_watch_gone(int fd)
{
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) < 0)
        return 0;
    /* Nobody writes to the pipe: readable means end of file. */
    return (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static char exit_message[256];
static volatile sig_atomic_t exit_guarded;

/* At exit (a recipe's os.exit, kept from before the batch began): the run
 * fails with the message instead of the status the recipe gave. */
static void on_exit_guarded(void)
{
    if (exit_guarded) {
        ssize_t n = write(STDERR_FILENO, exit_message, strlen(exit_message));
        (void)n;
        _exit(1);
    }
}

int nvs_exit_guard(const char *message)
{
    static int registered;
    if (!registered) {
        if (atexit(on_exit_guarded) != 0)
            return -ENOMEM;
        registered = 1;
    }
    if (message == NULL) {
        exit_guarded = 0;
        return 0;
    }
    strncpy(exit_message, message, sizeof exit_message - 1);
    exit_message[sizeof exit_message - 1] = '\0';
    exit_guarded = 1;
    return 0;
}
