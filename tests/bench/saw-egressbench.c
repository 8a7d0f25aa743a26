/*
 * saw-egressbench: the loopback peers and clients of tests/bench/bench-egress.sh.
 *
 *   saw-egressbench server PORT
 *       a target on 127.0.0.1:PORT; per connection the first byte says what to do:
 *       'e' echo one byte back and wait for EOF; 'b' then 8 bytes (big endian) N: send N
 *       bytes as fast as possible and close; 'p' then N: the same with a position-dependent
 *       pattern; 'h' read to EOF, then answer the byte count and a checksum of what came
 *       (16 bytes, big endian) and close
 *   saw-egressbench conn PROXY_PORT|0 TARGET_PORT SECONDS THREADS
 *       connections per second: connect (to the proxy with CONNECT 127.0.0.1:TARGET, or
 *       directly when PROXY_PORT is 0), one byte there and back, close; THREADS in parallel
 *       for SECONDS. Prints "conn_per_s N failures F conns C cpu_s S" (S: this process's
 *       user+system CPU seconds).
 *   saw-egressbench bulk PROXY_PORT|0 TARGET_PORT BYTES
 *       one connection, BYTES downstream; prints "mib_per_s X bytes B cpu_s S".
 *   saw-egressbench check PROXY_PORT|0 TARGET_PORT
 *       not a measurement: the relay's correctness. 64 MiB downstream compared byte for byte
 *       with the pattern; then the request head, 'h' and the first 1000 bytes in one write
 *       (bytes sent before the 200 arrived), 32 MiB upstream, a half-close, and the target's
 *       count and checksum must match what was sent. Prints "check ok" or what failed
 *       (exit 1).
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
#include <sys/resource.h>
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

static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The check pattern: byte i of a stream. */
static unsigned char
pattern(uint64_t i)
{
	return (unsigned char)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24));
}

static void
pattern_fill(unsigned char *p, size_t n, uint64_t off)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = pattern(off + i);
}

/* FNV-1a over a stream, a byte at a time */
static uint64_t
fnv(uint64_t h, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL
#define CHECK_BUF (64 * 1024)

static void
put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
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

/* A connection to the target, through the proxy when there is one; early (at most 1024
 * bytes) is sent right after the request head, in the same write, before the 200. */
static int
open_target_early(const void *early, size_t elen)
{
	char req[128 + 1024], buf[1024];
	size_t got = 0, rlen;
	ssize_t n;
	int fd;

	if (elen > 1024 || (fd = dial(proxy_port ? proxy_port : target_port)) < 0)
		return -1;
	if (proxy_port == 0) {
		if (elen > 0 && write_all(fd, early, elen) != 0)
			goto fail;
		return fd;
	}
	snprintf(req, 128, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
		 target_port, target_port);
	rlen = strlen(req);
	if (elen > 0)
		memcpy(req + rlen, early, elen);
	if (write_all(fd, req, rlen + elen) != 0)
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

static int
open_target(void)
{
	return open_target_early(NULL, 0);
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
	unsigned char hdr[8], *buf = NULL;
	uint64_t n = 0, chunk;
	char c;
	size_t got = 0;
	ssize_t r;

	if (read(fd, &c, 1) != 1)
		goto out;
	if (c == 'e') {
		(void)!write(fd, "e", 1);
		while (read(fd, &c, 1) > 0)
			;
		goto out;
	}
	if (c == 'h') {
		unsigned char ans[16];
		uint64_t h = FNV_INIT;

		/* heap, not stack: these threads have 64 KiB stacks */
		if ((buf = malloc(CHECK_BUF)) == NULL)
			goto out;
		while ((r = read(fd, buf, CHECK_BUF)) > 0) {
			h = fnv(h, buf, (size_t)r);
			n += (uint64_t)r;
		}
		put64(ans, n);
		put64(ans + 8, h);
		(void)!write_all(fd, ans, sizeof(ans));
		goto out;
	}
	if (c != 'b' && c != 'p')
		goto out;
	while (got < 8 && (r = read(fd, hdr + got, 8 - got)) > 0)
		got += (size_t)r;
	if (got != 8)
		goto out;
	n = get64(hdr);
	if (c == 'p') {
		uint64_t off = 0;

		if ((buf = malloc(CHECK_BUF)) == NULL)
			goto out;
		while (n > 0) {
			chunk = n < CHECK_BUF ? n : CHECK_BUF;
			pattern_fill(buf, chunk, off);
			if (write_all(fd, buf, chunk) != 0)
				break;
			off += chunk;
			n -= chunk;
		}
		goto out;
	}
	while (n > 0) {
		chunk = n < sizeof(block) ? n : sizeof(block);
		if (write_all(fd, block, chunk) != 0)
			break;
		n -= chunk;
	}
out:
	free(buf);
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

/* 64 MiB downstream, compared with the pattern. */
static int
check_down(void)
{
	static unsigned char got[256 * 1024], want[256 * 1024];
	unsigned char hdr[9] = { 'p' };
	uint64_t total = 64ULL << 20, off = 0;
	ssize_t n;
	int fd;

	put64(hdr + 1, total);
	if ((fd = open_target()) < 0 || write_all(fd, hdr, sizeof(hdr)) != 0) {
		printf("check: cannot open a connection for the download\n");
		return -1;
	}
	while (off < total && (n = read(fd, got, sizeof(got))) > 0) {
		pattern_fill(want, (size_t)n, off);
		if (memcmp(got, want, (size_t)n) != 0) {
			printf("check: downstream bytes differ near offset %llu\n",
			       (unsigned long long)off);
			close(fd);
			return -1;
		}
		off += (uint64_t)n;
	}
	close(fd);
	if (off != total) {
		printf("check: downstream ended after %llu of %llu bytes\n",
		       (unsigned long long)off, (unsigned long long)total);
		return -1;
	}
	return 0;
}

/* 'h' and 1000 bytes sent with the request head, 32 MiB more, half-close, the answer. */
static int
check_up(void)
{
	static unsigned char buf[256 * 1024];
	unsigned char first[1001], ans[16];
	uint64_t total = 32ULL << 20, off, h = FNV_INIT;
	size_t chunk, got = 0;
	ssize_t n;
	int fd;

	first[0] = 'h';
	pattern_fill(first + 1, 1000, 0);
	h = fnv(h, first + 1, 1000);
	if ((fd = open_target_early(first, sizeof(first))) < 0) {
		printf("check: cannot open a connection for the upload (with early data)\n");
		return -1;
	}
	for (off = 1000; off < total; off += chunk) {
		chunk = total - off < sizeof(buf) ? (size_t)(total - off) : sizeof(buf);
		pattern_fill(buf, chunk, off);
		h = fnv(h, buf, chunk);
		if (write_all(fd, buf, chunk) != 0) {
			printf("check: upload failed at offset %llu\n", (unsigned long long)off);
			close(fd);
			return -1;
		}
	}
	shutdown(fd, SHUT_WR);
	while (got < sizeof(ans) && (n = read(fd, ans + got, sizeof(ans) - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (got != sizeof(ans)) {
		printf("check: no answer after a half-close\n");
		return -1;
	}
	if (get64(ans) != total || get64(ans + 8) != h) {
		printf("check: the target got %llu bytes (sent %llu)%s\n",
		       (unsigned long long)get64(ans), (unsigned long long)total,
		       get64(ans) == total ? " with a different checksum" : "");
		return -1;
	}
	return 0;
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
		printf("conn_per_s %.0f failures %ld conns %ld cpu_s %.3f\n",
		       (double)total_ok / (now() - t0), total_fail, total_ok, cpu_seconds());
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
		printf("mib_per_s %.0f bytes %llu cpu_s %.3f%s\n",
		       (double)got / 1048576.0 / (now() - t0), (unsigned long long)got,
		       cpu_seconds(), got == want ? "" : " (short)");
		return got == want ? 0 : 1;
	}
	if (argc == 4 && strcmp(argv[1], "check") == 0) {
		proxy_port = atoi(argv[2]);
		target_port = atoi(argv[3]);
		if (check_down() != 0 || check_up() != 0)
			return 1;
		printf("check ok\n");
		return 0;
	}
	fprintf(stderr, "usage: see the comment at the top of saw-egressbench.c\n");
	return 2;
}
