/*
 * nvs_signal.c - recording SIGINT, SIGTERM and SIGHUP for a clean stop (POSIX).
 */
#if !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* SA_RESTART */
#endif
#include "nvs_signal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MAX_FORWARD 64

static volatile sig_atomic_t caught;
/* Workers to pass a signal on to: a slot is 0 when free.  Written outside
 * the handler only, read by it; a pid_t fits in a sig_atomic_t on the
 * systems this runs on, and a slot is written in one store. */
static volatile sig_atomic_t forward_to[MAX_FORWARD];

static const int handled[] = {SIGINT, SIGTERM, SIGHUP};

static void on_signal(int sig)
{
    int saved = errno; /* kill() must not change what the interrupted code sees */
    int i;
    if (caught == 0)
        caught = sig;
    for (i = 0; i < MAX_FORWARD; i++)
        if (forward_to[i] > 0)
            kill((pid_t)forward_to[i], sig);
    errno = saved;
}

int nvs_signal_install(void)
{
    struct sigaction sa;
    size_t i;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof handled / sizeof handled[0]; i++)
        sigaddset(&sa.sa_mask, handled[i]);
    for (i = 0; i < sizeof handled / sizeof handled[0]; i++)
        if (sigaction(handled[i], &sa, NULL) < 0)
            return -errno;
    return 0;
}

int nvs_signal_caught(void)
{
    return (int)caught;
}

int nvs_signal_forward(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_FORWARD; i++)
        if (forward_to[i] == 0) {
            forward_to[i] = (sig_atomic_t)pid;
            /* A signal that came before the slot was filled is passed on
             * here, so a worker started during a stop stops too. */
            if (caught != 0)
                kill(pid, (int)caught);
            return 0;
        }
    return -ENOSPC;
}

void nvs_signal_unforward(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_FORWARD; i++)
        if (forward_to[i] == (sig_atomic_t)pid)
            forward_to[i] = 0;
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

int nvs_signal_with_parent(int sig)
{
#if defined(__linux__) && defined(PR_SET_PDEATHSIG)
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig) < 0)
        return -errno;
    /* The parent may have ended before the request: then nothing would
     * ever be sent.  Being adopted (parent 1) says so. */
    if (getppid() == 1)
        raise(sig);
    return 0;
#else
    (void)sig;
    return -ENOSYS;
#endif
}
