/*
 * saw-egressbench: the loopback peers and clients of tests/bench/bench-egress.sh.
 *
 *   saw-egressbench server PORT
 *       a target on 127.0.0.1:PORT; per connection the first byte says what to do:
 *       'e' echo one byte back and wait for EOF; 'b' then 8 bytes (big endian) N: send N
 *       bytes as fast as possible and close
 *   saw-egressbench conn PROXY_PORT|0 TARGET_PORT SECONDS THREADS
 *       connections per second: connect (to the proxy with CONNECT 127.0.0.1:TARGET, or
 *       directly when PROXY_PORT is 0), one byte there and back, close; THREADS in parallel
 *       for SECONDS. Prints "conn_per_s N failures F".
 *   saw-egressbench bulk PROXY_PORT|0 TARGET_PORT BYTES
 *       one connection, BYTES downstream; prints "mib_per_s X".
 * Loopback only; every loop is bounded by time or bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int target_port, proxy_port;
static double deadline;
static long total_ok, total_fail;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
dial(int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, c, n)) <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A connection to the target, through the proxy when there is one. */
static int
open_target(void)
{
	char req[128], buf[1024];
	size_t got = 0;
	ssize_t n;
	int fd;

	if ((fd = dial(proxy_port ? proxy_port : target_port)) < 0)
		return -1;
	if (proxy_port == 0)
		return fd;
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
		 target_port, target_port);
	if (write_all(fd, req, strlen(req)) != 0)
		goto fail;
	/* read exactly the response head, byte-wise after the first read is not needed: the
	 * target sends nothing before our first byte */
	while (got < sizeof(buf) - 1) {
		if ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) <= 0)
			goto fail;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 9, "200", 3) != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static void *
conn_worker(void *arg)
{
	long ok = 0, failed = 0;
	char c;
	int fd;

	while (now() < deadline) {
		if ((fd = open_target()) < 0) {
			failed++;
			continue;
		}
		if (write_all(fd, "e", 1) != 0 || read(fd, &c, 1) != 1)
			failed++;
		else
			ok++;
		close(fd);
	}
	pthread_mutex_lock(&mu);
	total_ok += ok;
	total_fail += failed;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *
serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char block[256 * 1024];
	unsigned char hdr[8];
	uint64_t n = 0, chunk;
	char c;
	size_t got = 0;
	ssize_t r;
	int i;

	if (read(fd, &c, 1) != 1)
		goto out;
	if (c == 'e') {
		(void)!write(fd, "e", 1);
		while (read(fd, &c, 1) > 0)
			;
		goto out;
	}
	if (c != 'b')
		goto out;
	while (got < 8 && (r = read(fd, hdr + got, 8 - got)) > 0)
		got += (size_t)r;
	if (got != 8)
		goto out;
	for (i = 0; i < 8; i++)
		n = (n << 8) | hdr[i];
	while (n > 0) {
		chunk = n < sizeof(block) ? n : sizeof(block);
		if (write_all(fd, block, chunk) != 0)
			break;
		n -= chunk;
	}
out:
	close(fd);
	return NULL;
}

static int
server(int port)
{
	struct sockaddr_in sin;
	pthread_attr_t at;
	pthread_t th;
	int s, fd, one = 1;

	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(s, 4096) != 0) {
		perror("server");
		return 1;
	}
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 * 1024);
	printf("READY\n");
	fflush(stdout);
	for (;;) {
		if ((fd = accept4(s, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&th, &at, serve_one, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "server") == 0)
		return server(atoi(argv[2]));
	if (argc == 6 && strcmp(argv[1], "conn") == 0) {
		int i, nth = atoi(argv[5]);
		double secs = atof(argv[4]), t0;
		pthread_t th[256];

		proxy_port = atoi(argv[2]);
		target_port = atoi(argv[3]);
		if (nth < 1 || nth > 256 || secs <= 0 || secs > 120)
			return 2;
		t0 = now();
		deadline = t0 + secs;
		for (i = 0; i < nth; i++)
			pthread_create(&th[i], NULL, conn_worker, NULL);
		for (i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		printf("conn_per_s %.0f failures %ld\n", (double)total_ok / (now() - t0),
		       total_fail);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "bulk") == 0) {
		static char buf[256 * 1024];
		unsigned char hdr[9] = { 'b' };
		uint64_t want = strtoull(argv[4], NULL, 10), got = 0;
		double t0;
		ssize_t n;
		int fd, i;

		proxy_port = atoi(argv[2]);
		target_port = atoi(argv[3]);
		for (i = 0; i < 8; i++)
			hdr[1 + i] = (unsigned char)(want >> (56 - 8 * i));
		t0 = now();
		if ((fd = open_target()) < 0 || write_all(fd, hdr, sizeof(hdr)) != 0) {
			printf("mib_per_s 0 (cannot connect)\n");
			return 1;
		}
		while (got < want && (n = read(fd, buf, sizeof(buf))) > 0)
			got += (uint64_t)n;
		close(fd);
		printf("mib_per_s %.0f%s\n", (double)got / 1048576.0 / (now() - t0),
		       got == want ? "" : " (short)");
		return got == want ? 0 : 1;
	}
	fprintf(stderr, "usage: see the comment at the top of saw-egressbench.c\n");
	return 2;
}
