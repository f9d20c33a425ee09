/* SPDX-License-Identifier: Apache-2.0 */
/* Locks fork() takes first and gives back in both processes: a child never starts with a lock
 * that a thread it does not have was holding (its next use would hang). */
#ifndef KTLSSHIM_FORKLOCK_H
#define KTLSSHIM_FORKLOCK_H

#include <pthread.h>

/* From a constructor (load time, one thread). Taken in the order added, given back in reverse. */
void forklock_add(pthread_mutex_t *m);

#endif
