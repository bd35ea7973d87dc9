/*
 * nvs_proc.h - what the processes of a batch (a recipe batch or an
 * mfg_gen run) need of the system: an output folder's lock, stop requests
 * (signals), and the ways a worker learns that its main process is gone.
 *
 * A batch must not die in the middle of a unit, nor leave its worker
 * processes running: the handlers only record the signal (and tell the
 * workers, by closing the watch pipe), the program looks at the record
 * between units, stops, cleans up, and then may die of the signal as it
 * would have (so its parent sees 128 + the signal number).  The workers
 * of both batch commands learn of a stop, and of their main process's
 * death (even by SIGKILL), in that one way: the pipe's end of file.
 */
#ifndef NVS_PROC_H
#define NVS_PROC_H

#include <sys/types.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* Takes the lock of an output folder with flock(2), at once or not at all.
 * The one lock primitive of the project: file `name` in `folder` (made
 * 0600 if missing, never through a symbolic link), or with `name` NULL the
 * folder itself (opened anew).  A flock lock belongs to the open file, not
 * to the process: no other descriptor the process opens or closes on that
 * file can drop it, and it lasts while any process holding the descriptor
 * (a worker that inherited it) lives.  A named file is locked as the name
 * still names it once locked (a holder removing it as it finishes would
 * otherwise let two processes lock two different files).  Returns the
 * descriptor (not inherited by a program started next), -EAGAIN when
 * another process holds the lock, -EINVAL for a name that is not a plain
 * file, or a negative errno value. */
int nvs_lock_take(int folder, const char *name);

/* Checks that `fd` (inherited from the batch's main process) is the lock
 * of file `name` in `folder` (of `folder` itself with `name` NULL) and
 * holds it.  0 or a negative errno value. */
int nvs_lock_adopt(int fd, int folder, const char *name);

/* Whether another open file holds the flock lock of file `name` in
 * `folder` (not created, nor followed if a link): 1 if so, 0 if not (or
 * no such file), or a negative errno value.  Tells who holds a folder's
 * lock (a recipe batch also locks its .nvsgen.lock). */
int nvs_lock_held(int folder, const char *name);

/* Removes `name` from `folder` (when `remove`) while the lock `fd` is
 * still held, then lets the lock go. */
void nvs_lock_release(int fd, int folder, const char *name, int remove);

/* Whether a process started next (exec) keeps `fd`.  0 or -errno. */
int nvs_fd_inherit(int fd, int inherit);

/* SIGINT, SIGTERM and SIGHUP become stop requests (system calls restarted
 * after them): the first is kept (nvs_stop_signal) and the pipe of
 * nvs_watch_open closed, so the workers stop too.
 * nvs_signals_default puts the default actions back and forgets the
 * request.  0 or a negative errno value. */
int nvs_signals_catch(void);
void nvs_signals_default(void);
/* The signal that asked the process to stop, or 0. */
int nvs_stop_signal(void);
/* Sets the function the handlers call after recording a stop request (or
 * none, NULL): it runs inside the signal handler, so it must do only what
 * is safe there. */
void nvs_signals_on_stop(void (*fn)(int sig));

/* Restores the default action of `sig` and raises it: the process dies as
 * the signal would have killed it.  Returns only if it does not. */
void nvs_signal_reraise(int sig);

/* A pipe whose writing end only this process holds (the workers inherit
 * the reading end): its end of file tells them the process is gone or
 * wants them to stop.  Returns the reading end's descriptor or -errno. */
int nvs_watch_open(void);
/* Closes the writing end (the workers see end of file). */
void nvs_watch_close(void);
/* 1 when the writing end of the pipe read at `fd` is closed, else 0. */
int nvs_watch_gone(int fd);

/* While a batch runs, a process ending through exit() (a recipe calling
 * os.exit) prints `message` and exits with status 1; NULL ends the guard.
 * 0 or a negative errno value. */
int nvs_exit_guard(const char *message);

NVS_HIDDEN_END

#endif
