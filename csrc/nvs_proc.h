/*
 * nvs_proc.h - what the processes of one batch need of the system: the
 * output folder's lock, stop requests (signals), and a pipe by which the
 * workers learn that the batch's main process is gone.
 */
#ifndef NVS_PROC_H
#define NVS_PROC_H

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* Takes the lock of an output folder: file `name` in `folder` (made 0600
 * if missing, never through a symbolic link), locked with flock(2).  A
 * flock lock belongs to the open file, not to the process: no other
 * descriptor the process opens or closes on that file can drop it, and it
 * lasts while any process holding the descriptor (a worker that inherited
 * it) lives.  The lock is taken on the file the name still names once
 * locked (a holder removing it as it finishes would otherwise let two
 * processes lock two different files).  Returns the descriptor, -EAGAIN
 * when another process holds the lock, or a negative errno value. */
int nvs_lock_take(int folder, const char *name);

/* Checks that `fd` (inherited from the batch's main process) is the lock
 * of file `name` in `folder` and holds it.  0 or a negative errno value. */
int nvs_lock_adopt(int fd, int folder, const char *name);

/* Removes `name` from `folder` while the lock `fd` is still held, then
 * lets the lock go. */
void nvs_lock_release(int fd, int folder, const char *name, int remove);

/* Whether a process started next (exec) keeps `fd`.  0 or -errno. */
int nvs_fd_inherit(int fd, int inherit);

/* SIGINT, SIGTERM and SIGHUP become stop requests: the first is kept
 * (nvs_stop_signal) and the pipe of nvs_watch_open closed, so the workers
 * stop too.  nvs_signals_default puts the default actions back. */
int nvs_signals_catch(void);
void nvs_signals_default(void);
/* The signal that asked the process to stop, or 0. */
int nvs_stop_signal(void);

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
