/*
 * nvs_signal.h - stopping a batch cleanly on SIGINT, SIGTERM and SIGHUP.
 *
 * A batch must not die in the middle of a unit, nor leave its worker
 * processes running: the handlers only record the signal (and pass it on
 * to the workers registered), the program looks at the record between
 * units, stops, cleans up, and then dies of the signal as it would have
 * (so its parent sees 128 + the signal number).
 */
#ifndef NVS_SIGNAL_H
#define NVS_SIGNAL_H

#include <sys/types.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* Installs the recording handlers for SIGINT, SIGTERM and SIGHUP (system
 * calls restarted after them).  Returns 0 or a negative errno value. */
int nvs_signal_install(void);

/* The first of those signals received since nvs_signal_install, 0 if none. */
int nvs_signal_caught(void);

/* Registers process `pid` to receive every signal the handlers record
 * (a worker of the batch).  Returns 0, or -ENOSPC when the table (64
 * processes) is full. */
int nvs_signal_forward(pid_t pid);

/* Stops passing signals on to `pid` (a worker that has ended). */
void nvs_signal_unforward(pid_t pid);

/* Restores the default action of `sig` and raises it: the process dies as
 * the signal would have killed it.  Returns only if it does not. */
void nvs_signal_reraise(int sig);

/* Linux: asks for `sig` when the parent process ends (a worker must not
 * outlive the batch that started it).  Returns 0 or a negative errno value
 * (-ENOSYS elsewhere). */
int nvs_signal_with_parent(int sig);

NVS_HIDDEN_END

#endif
