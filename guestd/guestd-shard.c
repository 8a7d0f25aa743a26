/*
 * Event loops on threads, and closures posted between them (guestd-shard.h).
 *
 * The queue is a mutex-protected FIFO with an eventfd that the shard's loop watches. A
 * poster writes the eventfd only when it found the queue empty; the loop reads the eventfd
 * before it takes the whole queue, so a closure posted at any moment either is in what the
 * loop takes or makes the eventfd readable again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/log.h"
#include "guestd/guestd-shard.h"

struct gshard_item {
	struct gshard_item *next;
	gshard_fn fn;
	void *arg;
};

struct gshard {
	struct event_base *base;
	bool own_base; /* a thread of its own runs base */
	unsigned idx;
	int efd;
	struct event *ev;
	pthread_t thread;
	bool started;
	bool stop; /* the shard's thread only */
	pthread_mutex_t mu;
	struct gshard_item *head, **tail; /* under mu */
	struct gshard_item stop_item;	  /* posted by gshard_free(): needs no memory */
	gshard_fn last;
	void *data;
};

static struct gshard_item *
gshard_take(struct gshard *sh)
{
	struct gshard_item *list;

	pthread_mutex_lock(&sh->mu);
	list = sh->head;
	sh->head = NULL;
	sh->tail = &sh->head;
	pthread_mutex_unlock(&sh->mu);
	return list;
}

static void
gshard_run(struct gshard *sh, struct gshard_item *list)
{
	struct gshard_item *it;

	while ((it = list) != NULL) {
		list = it->next;
		it->fn(sh, it->arg);
		if (it != &sh->stop_item)
			free(it);
	}
}

static void
gshard_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gshard *sh = arg;
	uint64_t n;

	(void)!read(sh->efd, &n, sizeof(n)); /* before the take: see the top of the file */
	gshard_run(sh, gshard_take(sh));
	if (sh->stop)
		event_base_loopbreak(sh->base);
}

static void *
gshard_main(void *arg)
{
	struct gshard *sh = arg;
	char name[16];

	snprintf(name, sizeof(name), "saw-proxy-%u", sh->idx);
	(void)pthread_setname_np(pthread_self(), name);
	while (!sh->stop)
		if (event_base_loop(sh->base, EVLOOP_NO_EXIT_ON_EMPTY) != 0)
			break;
	return NULL;
}

struct gshard *
gshard_new(struct event_base *base, unsigned idx)
{
	struct gshard *sh;
	int err;

	if ((sh = calloc(1, sizeof(*sh))) == NULL)
		return NULL;
	sh->idx = idx;
	sh->efd = -1;
	sh->tail = &sh->head;
	pthread_mutex_init(&sh->mu, NULL);
	sh->own_base = base == NULL;
	if (base == NULL && (base = event_base_new()) == NULL)
		goto fail;
	sh->base = base;
	if ((sh->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (sh->ev = event_new(base, sh->efd, EV_READ | EV_PERSIST, gshard_wake_cb, sh)) == NULL ||
	    event_add(sh->ev, NULL) != 0)
		goto fail;
	return sh;
fail:
	err = errno;
	gshard_free(sh, NULL, NULL);
	errno = err != 0 ? err : ENOMEM;
	return NULL;
}

static void
gshard_enqueue(struct gshard *sh, struct gshard_item *it)
{
	bool was_empty;
	uint64_t one = 1;

	it->next = NULL;
	pthread_mutex_lock(&sh->mu);
	was_empty = sh->head == NULL;
	*sh->tail = it;
	sh->tail = &it->next;
	pthread_mutex_unlock(&sh->mu);
	if (was_empty)
		(void)!write(sh->efd, &one, sizeof(one)); /* a full counter is readable anyway */
}

int
gshard_start(struct gshard *sh)
{
	int err;

	if (!sh->own_base || sh->started)
		return 0;
	if ((err = pthread_create(&sh->thread, NULL, gshard_main, sh)) != 0) {
		errno = err;
		return -1;
	}
	sh->started = true;
	return 0;
}

int
gshard_post(struct gshard *sh, gshard_fn fn, void *arg)
{
	struct gshard_item *it;

	if ((it = malloc(sizeof(*it))) == NULL)
		return -1;
	it->fn = fn;
	it->arg = arg;
	gshard_enqueue(sh, it);
	return 0;
}

void
gshard_run_pending(struct gshard *sh)
{
	gshard_run(sh, gshard_take(sh)); /* the eventfd may stay readable: a wake-up for nothing */
}

struct event_base *
gshard_base(const struct gshard *sh)
{
	return sh->base;
}

unsigned
gshard_index(const struct gshard *sh)
{
	return sh->idx;
}

void
gshard_set_data(struct gshard *sh, void *data)
{
	sh->data = data;
}

void *
gshard_data(const struct gshard *sh)
{
	return sh->data;
}

static void
gshard_stop_cb(struct gshard *sh, void *arg)
{
	if (sh->last != NULL)
		sh->last(sh, arg);
	sh->stop = true; /* gshard_wake_cb breaks the loop after this batch */
}

void
gshard_free(struct gshard *sh, gshard_fn last, void *arg)
{
	struct gshard_item *list;

	if (sh == NULL)
		return;
	sh->last = last;
	sh->stop_item.fn = gshard_stop_cb;
	sh->stop_item.arg = arg;
	if (sh->started) {
		gshard_enqueue(sh, &sh->stop_item);
		pthread_join(sh->thread, NULL);
	} else if (sh->efd != -1) {
		gshard_enqueue(sh, &sh->stop_item); /* run below, on the caller's thread */
	}
	/* what was posted after the stop (or to a loop that no longer runs, or by these very
	 * closures) still runs once */
	while ((list = gshard_take(sh)) != NULL)
		gshard_run(sh, list);
	if (sh->ev != NULL)
		event_free(sh->ev);
	if (sh->efd != -1)
		close(sh->efd);
	if (sh->own_base && sh->base != NULL)
		event_base_free(sh->base);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}
