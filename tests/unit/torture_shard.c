/*
 * guestd-shard.c with real threads: closures posted from several threads run exactly once,
 * on the shard's own thread, in each poster's order; gshard_free()'s last closure runs after
 * everything posted before it; what is posted later still runs, on the caller's thread; a
 * shard of an existing loop runs its closures on that loop; gshard_run_pending() runs the
 * queue at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "guestd/guestd-shard.h"

#define POSTERS 4
#define PER_POSTER 20000

struct tally {
	pthread_t runner;     /* the thread every closure must run on */
	bool wrong_thread;    /* a closure ran elsewhere */
	int next[POSTERS];    /* the next sequence number expected from each poster */
	bool out_of_order;    /* a poster's closure ran before an earlier one of it */
	long ran;	      /* closures run */
	long ran_before_last; /* closures run when the last closure ran */
	bool last_ran;
};

struct item {
	struct tally *t;
	int poster, seq;
};

static void
item_cb(struct gshard *sh, void *arg)
{
	struct item *it = arg;
	struct tally *t = it->t;

	if (!pthread_equal(pthread_self(), t->runner))
		t->wrong_thread = true;
	if (it->seq != t->next[it->poster])
		t->out_of_order = true;
	t->next[it->poster] = it->seq + 1;
	t->ran++;
	free(it);
}

static void
runner_cb(struct gshard *sh, void *arg)
{
	struct tally *t = arg;

	t->runner = pthread_self(); /* the first closure: says which thread the shard is */
}

static void
last_cb(struct gshard *sh, void *arg)
{
	struct tally *t = arg;

	if (!pthread_equal(pthread_self(), t->runner))
		t->wrong_thread = true;
	t->last_ran = true;
	t->ran_before_last = t->ran;
}

struct poster {
	struct gshard *sh;
	struct tally *t;
	int id;
	int failed;
};

static void *
poster_main(void *arg)
{
	struct poster *p = arg;
	int i;

	for (i = 0; i < PER_POSTER; i++) {
		struct item *it = malloc(sizeof(*it));

		if (it == NULL) {
			p->failed++;
			continue;
		}
		it->t = p->t;
		it->poster = p->id;
		it->seq = i;
		if (gshard_post(p->sh, item_cb, it) != 0) {
			free(it);
			p->failed++;
		}
	}
	return NULL;
}

static void
test_threaded_shard(void **state)
{
	struct tally t;
	struct poster p[POSTERS];
	pthread_t th[POSTERS];
	struct gshard *sh;
	int i;

	memset(&t, 0, sizeof(t));
	assert_non_null(sh = gshard_new(NULL, 3));
	assert_int_equal(gshard_index(sh), 3);
	assert_int_equal(gshard_start(sh), 0);
	gshard_set_data(sh, &t);
	assert_ptr_equal(gshard_data(sh), &t);
	/* the first closure names the runner thread (closures run in posting order) */
	assert_int_equal(gshard_post(sh, runner_cb, &t), 0);
	for (i = 0; i < POSTERS; i++) {
		p[i] = (struct poster){ sh, &t, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, poster_main, &p[i]), 0);
	}
	for (i = 0; i < POSTERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(p[i].failed, 0);
	}
	gshard_free(sh, last_cb, &t); /* joins the thread: t is ours again */
	assert_false(pthread_equal(t.runner, pthread_self()));
	assert_false(t.wrong_thread);
	assert_false(t.out_of_order);
	assert_int_equal(t.ran, (long)POSTERS * PER_POSTER);
	for (i = 0; i < POSTERS; i++)
		assert_int_equal(t.next[i], PER_POSTER);
	assert_true(t.last_ran);
	assert_int_equal(t.ran_before_last, (long)POSTERS * PER_POSTER);
}

/* ---- a shard of an existing loop --------------------------------------------------------- */

struct loop_tally {
	struct event_base *base;
	pthread_t main;
	int ran, want;
	bool wrong_thread;
	bool late_ran;
};

static void
loop_item_cb(struct gshard *sh, void *arg)
{
	struct loop_tally *t = gshard_data(sh);

	if (!pthread_equal(pthread_self(), t->main))
		t->wrong_thread = true;
	if (++t->ran == t->want)
		event_base_loopbreak(t->base);
}

static void *
loop_poster_main(void *arg)
{
	struct gshard *sh = arg;
	struct loop_tally *t = gshard_data(sh);
	int i;

	for (i = 0; i < t->want; i++)
		if (gshard_post(sh, loop_item_cb, NULL) != 0)
			break;
	return NULL;
}

static void
late_cb(struct gshard *sh, void *arg)
{
	struct loop_tally *t = gshard_data(sh);

	t->late_ran = pthread_equal(pthread_self(), t->main);
}

static void
loop_last_cb(struct gshard *sh, void *arg)
{
	/* posted from the last closure: not lost, run by gshard_free() after it */
	assert_int_equal(gshard_post(sh, late_cb, NULL), 0);
}

static void
test_loop_shard(void **state)
{
	struct loop_tally t;
	struct gshard *sh;
	pthread_t th;
	struct timeval bound = { 20, 0 }; /* a lost wake-up fails the test, not CI */

	memset(&t, 0, sizeof(t));
	t.main = pthread_self();
	t.want = 5000;
	assert_non_null(t.base = event_base_new());
	assert_non_null(sh = gshard_new(t.base, 0));
	gshard_set_data(sh, &t);
	assert_int_equal(pthread_create(&th, NULL, loop_poster_main, sh), 0);
	event_base_loopexit(t.base, &bound);
	event_base_loop(t.base, EVLOOP_NO_EXIT_ON_EMPTY);
	pthread_join(th, NULL);
	assert_int_equal(t.ran, t.want);
	assert_false(t.wrong_thread);

	/* gshard_run_pending: what is queued runs now, without the loop */
	t.want = -1;
	assert_int_equal(gshard_post(sh, loop_item_cb, NULL), 0);
	assert_int_equal(gshard_post(sh, loop_item_cb, NULL), 0);
	gshard_run_pending(sh);
	assert_int_equal(t.ran, 5002);

	gshard_free(sh, loop_last_cb, NULL);
	assert_true(t.late_ran);
	event_base_free(t.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threaded_shard),
		cmocka_unit_test(test_loop_shard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
