/* SPDX-License-Identifier: Apache-2.0 */
#include "forklock.h"

#include <stdbool.h>
#include <stddef.h>

#define FORKLOCK_MAX 8

static pthread_mutex_t *locks[FORKLOCK_MAX];
static size_t n_locks;

static void take_all(void)
{
	for (size_t i = 0; i < n_locks; i++)
		pthread_mutex_lock(locks[i]);
}

static void give_all(void)
{
	for (size_t i = n_locks; i-- > 0;)
		pthread_mutex_unlock(locks[i]);
}

void forklock_add(pthread_mutex_t *m)
{
	static bool registered;	    /* else tried again with the next lock */
	if (n_locks < FORKLOCK_MAX) /* the modules' fixed set of locks fits */
		locks[n_locks++] = m;
	if (!registered)
		registered = pthread_atfork(take_all, give_all, give_all) == 0;
}
