/* SPDX-License-Identifier: Apache-2.0 */
/* Which Mbed TLS copy a pass-through call belongs to when a process has several (real.h,
 * real_many): a 2.28 daemon that dlopen()s a 3.6 plugin, or the reverse.
 *
 * Without the shim a call binds in its caller's scope: a plugin's to the libmbedtls it depends
 * on, a libmbedtls's internal calls (through its PLT, so they reach the shim too) to itself. The
 * shim finds the loaded object the return address lies in, opens it (RTLD_NOLOAD) and takes the
 * wrapped functions from that object's own dependency scope. A caller whose scope has no Mbed TLS,
 * or reaches the shim first (the program, in the global scope), gets what follows the shim in
 * the global scope; with none there, the first copy's (`real`), as with one copy.
 *
 * Each object's answer is kept, looked up by address range without a lock. The reference the
 * open takes is never given back: the object and its Mbed TLS stay mapped (a dlclose() of such a
 * plugin unloads nothing), so a kept answer can never point into memory that was reused. */
#include "real.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "forklock.h"

#define KEPT 64

struct answer {
	uintptr_t lo, hi; /* the caller object's mapped range */
	const struct real_fns *fns;
};

static struct answer answers[KEPT];
static struct real_fns tables[KEPT];
static atomic_uint kept; /* answers[0..kept) are complete */
static pthread_mutex_t keep_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void caller_at_load(void)
{
	forklock_add(&keep_lock); /* fork() while another thread keeps an answer */
}

struct object {
	uintptr_t at;	  /* the return address to place */
	uintptr_t lo, hi; /* the range of the object holding it; lo == hi: none does */
	uintptr_t base;	  /* its load bias */
	char name[4096];  /* its path; "" for the program */
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct object *o = arg;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	bool here = false;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
		here |= o->at >= start && o->at < end;
		lo = start < lo ? start : lo;
		hi = end > hi ? end : hi;
	}
	if (!here || strlen(info->dlpi_name) >= sizeof(o->name))
		return 0;
	o->lo = lo, o->hi = hi, o->base = info->dlpi_addr;
	strcpy(o->name, info->dlpi_name);
	return 1;
}

static bool in_shim(const void *p)
{
	Dl_info a, b;
	return dladdr(p, &a) && dladdr((const void *)in_shim, &b) && a.dli_fbase == b.dli_fbase;
}

/* The functions object o binds to, filled into f; NULL when they are the first copy's. The
 * handle stays open when they come from it (file comment). */
static const struct real_fns *bind_object(const struct object *o, struct real_fns *f)
{
	void *h = dlopen(o->name[0] ? o->name : NULL, RTLD_LAZY | RTLD_NOLOAD);
	struct link_map *map = NULL;
	/* The name must lead back to this very object (another namespace may share it). */
	if (h && (dlinfo(h, RTLD_DI_LINKMAP, &map) != 0 || map->l_addr != o->base)) {
		dlclose(h);
		h = NULL;
	}
	void *own = h ? dlsym(h, "mbedtls_ssl_init") : NULL;
	if (own && !in_shim(own)) {
		real_fill(f, h, NULL);
		return f;
	}
	if (h)
		dlclose(h);
	if (dlsym(RTLD_NEXT, "mbedtls_ssl_init")) {
		real_fill(f, NULL, RTLD_NEXT);
		return f;
	}
	return NULL;
}

static const struct real_fns *kept_answer(uintptr_t at)
{
	unsigned n = atomic_load_explicit(&kept, memory_order_acquire);
	for (unsigned i = 0; i < n; i++)
		if (at >= answers[i].lo && at < answers[i].hi)
			return answers[i].fns;
	return NULL;
}

/* Keeps the answer found for o (f: its functions, or NULL for the first copy's) unless another
 * thread kept one meanwhile; only the keeping takes the lock, never the loader calls before it
 * (a plugin's constructor may call Mbed TLS while the loader's lock is held). Past KEPT objects,
 * each call finds its answer again, into the thread's own table. */
static const struct real_fns *keep(const struct object *o, const struct real_fns *f)
{
	static __thread struct real_fns spare;
	pthread_mutex_lock(&keep_lock);
	const struct real_fns *fns = kept_answer(o->at);
	unsigned n = atomic_load_explicit(&kept, memory_order_relaxed);
	if (!fns && n < KEPT) {
		if (f)
			tables[n] = *f;
		fns = f ? &tables[n] : &real;
		answers[n] = (struct answer){ o->lo, o->hi, fns };
		atomic_store_explicit(&kept, n + 1, memory_order_release);
	} else if (!fns) {
		spare = f ? *f : real;
		fns = &spare;
	}
	pthread_mutex_unlock(&keep_lock);
	return fns;
}

const struct real_fns *real_for_caller(const void *ret)
{
	const struct real_fns *fns = kept_answer((uintptr_t)ret);
	if (fns)
		return fns;
	struct object o = { .at = (uintptr_t)ret };
	real_walk(find_object, &o);
	if (o.lo == o.hi)
		return &real; /* code outside any object: the first copy */
	struct real_fns f;
	return keep(&o, bind_object(&o, &f));
}
