/*
 * The egress address classifier (guestd/netclass.c): every range, both edges of each, and
 * every IPv6 form that embeds an IPv4 address. Pure function tests: no packet is sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "guestd/netclass.h"

static enum netclass
cls(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return netclass_of((struct sockaddr *)sin);
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return netclass_of((struct sockaddr *)sin6);
	}
	fail_msg("bad test address %s", text);
	return NETCLASS_PUBLIC;
}

struct expect {
	const char *addr;
	enum netclass c;
};

static void
check_all(const struct expect *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		enum netclass got = cls(e[i].addr);

		if (got != e[i].c)
			fail_msg("%s: got %s, expected %s", e[i].addr, netclass_name(got),
				 netclass_name(e[i].c));
	}
}

#define CHECK(tab) check_all(tab, sizeof(tab) / sizeof(tab[0]))

static void
test_ipv4_ranges(void **state)
{
	static const struct expect t[] = {
		/* 0/8 */
		{ "0.0.0.0", NETCLASS_UNSPECIFIED },
		{ "0.255.255.255", NETCLASS_UNSPECIFIED },
		{ "1.0.0.0", NETCLASS_PUBLIC },
		/* 10/8 */
		{ "9.255.255.255", NETCLASS_PUBLIC },
		{ "10.0.0.0", NETCLASS_PRIVATE },
		{ "10.255.255.255", NETCLASS_PRIVATE },
		{ "11.0.0.0", NETCLASS_PUBLIC },
		/* 100.64/10 */
		{ "100.63.255.255", NETCLASS_PUBLIC },
		{ "100.64.0.0", NETCLASS_CGNAT },
		{ "100.127.255.255", NETCLASS_CGNAT },
		{ "100.128.0.0", NETCLASS_PUBLIC },
		{ "100.100.100.200", NETCLASS_METADATA },
		{ "100.100.100.199", NETCLASS_CGNAT },
		/* 127/8 */
		{ "126.255.255.255", NETCLASS_PUBLIC },
		{ "127.0.0.0", NETCLASS_LOOPBACK },
		{ "127.0.0.1", NETCLASS_LOOPBACK },
		{ "127.255.255.255", NETCLASS_LOOPBACK },
		{ "128.0.0.0", NETCLASS_PUBLIC },
		/* 169.254/16 and metadata */
		{ "169.253.255.255", NETCLASS_PUBLIC },
		{ "169.254.0.0", NETCLASS_LINKLOCAL },
		{ "169.254.169.253", NETCLASS_LINKLOCAL },
		{ "169.254.169.254", NETCLASS_METADATA },
		{ "169.254.169.255", NETCLASS_LINKLOCAL },
		{ "169.254.170.2", NETCLASS_METADATA },
		{ "169.254.255.255", NETCLASS_LINKLOCAL },
		{ "169.255.0.0", NETCLASS_PUBLIC },
		/* 172.16/12 */
		{ "172.15.255.255", NETCLASS_PUBLIC },
		{ "172.16.0.0", NETCLASS_PRIVATE },
		{ "172.31.255.255", NETCLASS_PRIVATE },
		{ "172.32.0.0", NETCLASS_PUBLIC },
		/* 192.0.0/24, 192.0.2/24 */
		{ "191.255.255.255", NETCLASS_PUBLIC },
		{ "192.0.0.0", NETCLASS_RESERVED },
		{ "192.0.0.255", NETCLASS_RESERVED },
		{ "192.0.1.0", NETCLASS_PUBLIC },
		{ "192.0.2.0", NETCLASS_RESERVED },
		{ "192.0.2.255", NETCLASS_RESERVED },
		{ "192.0.3.0", NETCLASS_PUBLIC },
		/* 192.88.99/24 */
		{ "192.88.98.255", NETCLASS_PUBLIC },
		{ "192.88.99.0", NETCLASS_RESERVED },
		{ "192.88.99.255", NETCLASS_RESERVED },
		{ "192.88.100.0", NETCLASS_PUBLIC },
		/* 192.168/16 */
		{ "192.167.255.255", NETCLASS_PUBLIC },
		{ "192.168.0.0", NETCLASS_PRIVATE },
		{ "192.168.255.255", NETCLASS_PRIVATE },
		{ "192.169.0.0", NETCLASS_PUBLIC },
		/* 198.18/15 */
		{ "198.17.255.255", NETCLASS_PUBLIC },
		{ "198.18.0.0", NETCLASS_RESERVED },
		{ "198.19.255.255", NETCLASS_RESERVED },
		{ "198.20.0.0", NETCLASS_PUBLIC },
		/* 198.51.100/24 */
		{ "198.51.99.255", NETCLASS_PUBLIC },
		{ "198.51.100.0", NETCLASS_RESERVED },
		{ "198.51.100.255", NETCLASS_RESERVED },
		{ "198.51.101.0", NETCLASS_PUBLIC },
		/* 203.0.113/24 */
		{ "203.0.112.255", NETCLASS_PUBLIC },
		{ "203.0.113.0", NETCLASS_RESERVED },
		{ "203.0.113.255", NETCLASS_RESERVED },
		{ "203.0.114.0", NETCLASS_PUBLIC },
		/* 224/4, 240/4, broadcast */
		{ "223.255.255.255", NETCLASS_PUBLIC },
		{ "224.0.0.0", NETCLASS_MULTICAST },
		{ "239.255.255.255", NETCLASS_MULTICAST },
		{ "240.0.0.0", NETCLASS_RESERVED },
		{ "255.255.255.254", NETCLASS_RESERVED },
		{ "255.255.255.255", NETCLASS_MULTICAST },
		/* ordinary public */
		{ "8.8.8.8", NETCLASS_PUBLIC },
		{ "1.1.1.1", NETCLASS_PUBLIC },
		{ "93.184.216.34", NETCLASS_PUBLIC },
	};

	CHECK(t);
}

static void
test_ipv6_ranges(void **state)
{
	static const struct expect t[] = {
		{ "::", NETCLASS_UNSPECIFIED },
		{ "::1", NETCLASS_LOOPBACK },
		{ "::2", NETCLASS_UNSPECIFIED }, /* IPv4-compatible 0.0.0.2 */
		/* fc00::/7 */
		{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		{ "fc00::", NETCLASS_PRIVATE },
		{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_PRIVATE },
		{ "fd00:ec2::254", NETCLASS_METADATA },
		{ "fd00:ec2::253", NETCLASS_PRIVATE },
		/* fe80::/10, fec0::/10 */
		{ "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		{ "fe80::", NETCLASS_LINKLOCAL },
		{ "fe80::1", NETCLASS_LINKLOCAL },
		{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_LINKLOCAL },
		{ "fec0::", NETCLASS_PRIVATE },
		{ "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_PRIVATE },
		/* ff00::/8 */
		{ "ff00::", NETCLASS_MULTICAST },
		{ "ff02::1", NETCLASS_MULTICAST },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_MULTICAST },
		/* 2000::/3 edges */
		{ "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		{ "2000::", NETCLASS_PUBLIC },
		{ "3fef:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_PUBLIC },
		{ "3fff::", NETCLASS_RESERVED }, /* documentation, RFC 9637 */
		{ "3fff:0fff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		{ "3fff:1000::", NETCLASS_PUBLIC },
		{ "4000::", NETCLASS_RESERVED },
		/* 100::/64 discard, unallocated */
		{ "100::", NETCLASS_RESERVED },
		{ "100::ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		/* 2001::/23 (Teredo, benchmarking …) and 2001:db8::/32 */
		{ "2001::", NETCLASS_RESERVED },
		{ "2001:0:4136:e378:8000:63bf:3fff:fdd2", NETCLASS_RESERVED },
		{ "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		{ "2001:200::", NETCLASS_PUBLIC },
		{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_PUBLIC },
		{ "2001:db8::", NETCLASS_RESERVED },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", NETCLASS_RESERVED },
		{ "2001:db9::", NETCLASS_PUBLIC },
		/* ordinary public */
		{ "2606:4700:4700::1111", NETCLASS_PUBLIC },
		{ "2a00:1450:4001:80b::200e", NETCLASS_PUBLIC },
	};

	CHECK(t);
}

static void
test_ipv6_embedded(void **state)
{
	static const struct expect t[] = {
		/* IPv4-mapped: exactly the IPv4 class */
		{ "::ffff:127.0.0.1", NETCLASS_LOOPBACK },
		{ "::ffff:7f00:1", NETCLASS_LOOPBACK },
		{ "::ffff:10.1.2.3", NETCLASS_PRIVATE },
		{ "::ffff:169.254.169.254", NETCLASS_METADATA },
		{ "::ffff:169.254.1.1", NETCLASS_LINKLOCAL },
		{ "::ffff:100.64.0.1", NETCLASS_CGNAT },
		{ "::ffff:0.0.0.0", NETCLASS_UNSPECIFIED },
		{ "::ffff:224.0.0.1", NETCLASS_MULTICAST },
		{ "::ffff:8.8.8.8", NETCLASS_PUBLIC },
		{ "::ffff:255.255.255.255", NETCLASS_MULTICAST },
		/* IPv4-compatible (deprecated) */
		{ "::127.0.0.1", NETCLASS_LOOPBACK },
		{ "::10.0.0.1", NETCLASS_PRIVATE },
		{ "::169.254.169.254", NETCLASS_METADATA },
		{ "::8.8.8.8", NETCLASS_RESERVED },
		{ "::0.0.0.2", NETCLASS_UNSPECIFIED },
		/* IPv4-translated (SIIT) */
		{ "::ffff:0:127.0.0.1", NETCLASS_LOOPBACK },
		{ "::ffff:0:192.168.1.1", NETCLASS_PRIVATE },
		{ "::ffff:0:8.8.8.8", NETCLASS_RESERVED },
		/* NAT64 well-known prefix */
		{ "64:ff9b::127.0.0.1", NETCLASS_LOOPBACK },
		{ "64:ff9b::10.0.0.1", NETCLASS_PRIVATE },
		{ "64:ff9b::a9fe:a9fe", NETCLASS_METADATA },
		{ "64:ff9b::100.64.0.1", NETCLASS_CGNAT },
		{ "64:ff9b::8.8.8.8", NETCLASS_RESERVED },
		{ "64:ff9b::1:8.8.8.8", NETCLASS_RESERVED }, /* outside /96, not NAT64 */
		/* NAT64 local-use 64:ff9b:1::/48, RFC 6052 /48 layout */
		{ "64:ff9b:1:7f00:0:100::", NETCLASS_LOOPBACK },
		{ "64:ff9b:1:0a00:0:100::", NETCLASS_PRIVATE },
		{ "64:ff9b:1:0808:0:808::", NETCLASS_RESERVED },
		/* 6to4 */
		{ "2002:7f00:1::", NETCLASS_LOOPBACK },
		{ "2002:a9fe:a9fe::1", NETCLASS_METADATA },
		{ "2002:c0a8:101::1", NETCLASS_PRIVATE },
		{ "2002:0a00:0001::", NETCLASS_PRIVATE },
		{ "2002:6440:1::", NETCLASS_CGNAT },
		{ "2002:e000:1::", NETCLASS_MULTICAST },
		{ "2002::", NETCLASS_UNSPECIFIED },
		{ "2002:808:808::1", NETCLASS_PUBLIC },
	};

	CHECK(t);
}

static void
test_embedded_helper(void **state)
{
	struct in6_addr a;
	uint32_t v4 = 0;

	inet_pton(AF_INET6, "::ffff:1.2.3.4", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_MAPPED);
	assert_int_equal(v4, 0x01020304);
	inet_pton(AF_INET6, "::1.2.3.4", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_COMPAT);
	inet_pton(AF_INET6, "::1", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_NONE);
	inet_pton(AF_INET6, "::", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_NONE);
	inet_pton(AF_INET6, "::ffff:0:1.2.3.4", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_TRANSLATED);
	inet_pton(AF_INET6, "64:ff9b::1.2.3.4", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_NAT64);
	assert_int_equal(v4, 0x01020304);
	inet_pton(AF_INET6, "64:ff9b:1:102:3:400::", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_NAT64);
	assert_int_equal(v4, 0x01020304);
	inet_pton(AF_INET6, "2002:102:304::", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_6TO4);
	assert_int_equal(v4, 0x01020304);
	inet_pton(AF_INET6, "2606:4700::1", &a);
	assert_int_equal(netclass_embedded_ipv4(&a, &v4), NETCLASS_EMBED_NONE);
}

/* Every /8 of IPv4 against a reference written differently (a switch on the first octet),
 * and the mapped form of each: the two must agree on the whole first-octet space. */
static void
test_ipv4_sweep(void **state)
{
	uint32_t a8;

	for (a8 = 0; a8 < 256; a8++) {
		uint32_t a = a8 << 24 | 0x00050607; /* .5.6.7: inside no special /16 or /24 */
		enum netclass want, got;
		uint8_t m[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (a8 == 0)
			want = NETCLASS_UNSPECIFIED;
		else if (a8 == 10)
			want = NETCLASS_PRIVATE;
		else if (a8 == 127)
			want = NETCLASS_LOOPBACK;
		else if (a8 >= 224 && a8 < 240)
			want = NETCLASS_MULTICAST;
		else if (a8 >= 240)
			want = NETCLASS_RESERVED;
		else
			want = NETCLASS_PUBLIC;
		got = netclass_of_ipv4(a);
		if (got != want)
			fail_msg("%u.5.6.7: got %s, expected %s", a8, netclass_name(got),
				 netclass_name(want));
		m[12] = (uint8_t)(a >> 24);
		m[13] = (uint8_t)(a >> 16);
		m[14] = (uint8_t)(a >> 8);
		m[15] = (uint8_t)a;
		assert_int_equal(netclass_of_ipv6(m), got);
	}
}

static void
test_not_inet(void **state)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(netclass_of((struct sockaddr *)&sun), NETCLASS_RESERVED);
	assert_int_equal(netclass_of(NULL), NETCLASS_RESERVED);
	assert_string_equal(netclass_name(NETCLASS_METADATA), "metadata");
	assert_string_equal(netclass_name(NETCLASS_PUBLIC), "public");
	assert_string_equal(netclass_name(NETCLASS_LINKLOCAL), "link-local");
	assert_string_equal(netclass_name((enum netclass)99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_ranges),   cmocka_unit_test(test_ipv6_ranges),
		cmocka_unit_test(test_ipv6_embedded), cmocka_unit_test(test_embedded_helper),
		cmocka_unit_test(test_ipv4_sweep),    cmocka_unit_test(test_not_inet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
