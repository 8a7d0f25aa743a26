/*
 * Background fdatasync (syncer.h). One thread, one request slot, a pipe back to the loop.
 */
#include "audit/syncer.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct syncer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;	    /* the dup to sync, -1: none pending (guarded by mu) */
	bool stop;  /* guarded by mu */
	int result; /* errno of the last sync, 0 ok (guarded by mu) */
	bool busy;  /* loop side: a request is out */
	int pipefd[2];
	struct event *ev;
	void (*done)(int err, void *arg);
	void *arg;
};

static void *
syncer_main(void *arg)
{
	struct syncer *s = arg;
	int fd, rc;
	char c = 1;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->fd == -1 && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->fd == -1 && s->stop)
			break;
		fd = s->fd;
		pthread_mutex_unlock(&s->mu);
		rc = fdatasync(fd) == -1 ? errno : 0;
		close(fd);
		pthread_mutex_lock(&s->mu);
		s->fd = -1;
		s->result = rc;
		/* A full pipe cannot happen: one request at a time, one byte each. */
		while (write(s->pipefd[1], &c, 1) == -1 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void
syncer_readable(evutil_socket_t fd, short what, void *arg)
{
	struct syncer *s = arg;
	char buf[16];
	int err;

	while (read(s->pipefd[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&s->mu);
	err = s->result;
	pthread_mutex_unlock(&s->mu);
	if (!s->busy)
		return;
	s->busy = false;
	s->done(err, s->arg);
}

struct syncer *
syncer_new(struct event_base *base, void (*done)(int err, void *arg), void *arg)
{
	struct syncer *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->fd = -1;
	s->done = done;
	s->arg = arg;
	s->pipefd[0] = s->pipefd[1] = -1;
	if (pipe2(s->pipefd, O_CLOEXEC | O_NONBLOCK) == -1)
		goto fail;
	if ((s->ev = event_new(base, s->pipefd[0], EV_READ | EV_PERSIST, syncer_readable, s)) ==
		    NULL ||
	    event_add(s->ev, NULL) == -1)
		goto fail;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
		goto fail;
	}
	return s;
fail:
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->pipefd[0] != -1)
		close(s->pipefd[0]);
	if (s->pipefd[1] != -1)
		close(s->pipefd[1]);
	free(s);
	return NULL;
}

int
syncer_start(struct syncer *s, int fd)
{
	int dfd;

	if (s->busy)
		return -1;
	if ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	pthread_mutex_lock(&s->mu);
	s->fd = dfd;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	s->busy = true;
	return 0;
}

bool
syncer_busy(const struct syncer *s)
{
	return s->busy;
}

void
syncer_free(struct syncer *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	event_free(s->ev);
	close(s->pipefd[0]);
	close(s->pipefd[1]);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
