/*
 * Address classifier for egress (netclass.h). Every address guestd is about to dial is
 * classified here, after guestd resolved the name itself; anything but NETCLASS_PUBLIC is
 * refused unless the policy names it (policy_address_allowed).
 *
 * Why the IPv6 forms that embed an IPv4 address are unwrapped: a dual-stack socket connects
 * ::ffff:127.0.0.1 to the IPv4 loopback, and NAT64 / 6to4 / IPv4-compatible forms reach the
 * embedded address through a translator or tunnel where there is one. An embedded address
 * that is not public gives its class to the whole address; a public one leaves deprecated
 * or translator-only forms (IPv4-compatible, SIIT, NAT64) RESERVED, because nothing in a
 * workspace should need them, and 6to4 PUBLIC, because that is what it is.
 *
 * IPv6 outside 2000::/3 (global unicast) that is not one of the named ranges is RESERVED:
 * unallocated space is never a legitimate destination.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "guestd/netclass.h"

struct netclass_v4range {
	uint32_t net;
	int prefix;
	enum netclass cls;
};

/* First match wins: the more specific entries come first. */
static const struct netclass_v4range netclass_v4[] = {
	{ 0xa9fea9fe, 32, NETCLASS_METADATA },	 /* 169.254.169.254 cloud metadata */
	{ 0xa9feaa02, 32, NETCLASS_METADATA },	 /* 169.254.170.2 ECS task metadata */
	{ 0x646464c8, 32, NETCLASS_METADATA },	 /* 100.100.100.200 Alibaba metadata */
	{ 0xffffffff, 32, NETCLASS_MULTICAST },	 /* 255.255.255.255 limited broadcast */
	{ 0x00000000, 8, NETCLASS_UNSPECIFIED }, /* 0.0.0.0/8 "this network" */
	{ 0x0a000000, 8, NETCLASS_PRIVATE },	 /* 10/8 */
	{ 0x64400000, 10, NETCLASS_CGNAT },	 /* 100.64/10 */
	{ 0x7f000000, 8, NETCLASS_LOOPBACK },	 /* 127/8 */
	{ 0xa9fe0000, 16, NETCLASS_LINKLOCAL },	 /* 169.254/16 */
	{ 0xac100000, 12, NETCLASS_PRIVATE },	 /* 172.16/12 */
	{ 0xc0000000, 24, NETCLASS_RESERVED },	 /* 192.0.0/24 IETF protocol assignments */
	{ 0xc0000200, 24, NETCLASS_RESERVED },	 /* 192.0.2/24 TEST-NET-1 */
	{ 0xc0586300, 24, NETCLASS_RESERVED },	 /* 192.88.99/24 6to4 relay anycast */
	{ 0xc0a80000, 16, NETCLASS_PRIVATE },	 /* 192.168/16 */
	{ 0xc6120000, 15, NETCLASS_RESERVED },	 /* 198.18/15 benchmarking */
	{ 0xc6336400, 24, NETCLASS_RESERVED },	 /* 198.51.100/24 TEST-NET-2 */
	{ 0xcb007100, 24, NETCLASS_RESERVED },	 /* 203.0.113/24 TEST-NET-3 */
	{ 0xe0000000, 4, NETCLASS_MULTICAST },	 /* 224/4 */
	{ 0xf0000000, 4, NETCLASS_RESERVED },	 /* 240/4 */
};

enum netclass
netclass_of_ipv4(uint32_t a)
{
	size_t i;

	for (i = 0; i < sizeof(netclass_v4) / sizeof(netclass_v4[0]); i++) {
		uint32_t mask = netclass_v4[i].prefix == 0 ?
					0 :
					0xffffffffu << (32 - netclass_v4[i].prefix);

		if ((a & mask) == netclass_v4[i].net)
			return netclass_v4[i].cls;
	}
	return NETCLASS_PUBLIC;
}

static uint32_t
netclass_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int
netclass_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

enum netclass_embed
netclass_embedded_ipv4(const void *addr6, uint32_t *v4)
{
	const uint8_t *b = addr6;
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t nat64_local[6] = { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 };

	if (netclass_zero(b, 10) && b[10] == 0xff && b[11] == 0xff) {
		*v4 = netclass_be32(b + 12);
		return NETCLASS_EMBED_MAPPED;
	}
	/* ::a.b.c.d, but :: and ::1 are themselves */
	if (netclass_zero(b, 12) && !(netclass_zero(b + 12, 3) && b[15] <= 1)) {
		*v4 = netclass_be32(b + 12);
		return NETCLASS_EMBED_COMPAT;
	}
	/* ::ffff:0:a.b.c.d, IPv4-translated (SIIT, RFC 2765) */
	if (netclass_zero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
		*v4 = netclass_be32(b + 12);
		return NETCLASS_EMBED_TRANSLATED;
	}
	if (memcmp(b, nat64, sizeof(nat64)) == 0) {
		*v4 = netclass_be32(b + 12);
		return NETCLASS_EMBED_NAT64;
	}
	/* 64:ff9b:1::/48 (RFC 8215), RFC 6052 /48 layout: bits 48..63 and 72..87 */
	if (memcmp(b, nat64_local, sizeof(nat64_local)) == 0) {
		*v4 = (uint32_t)b[6] << 24 | (uint32_t)b[7] << 16 | (uint32_t)b[9] << 8 |
		      (uint32_t)b[10];
		return NETCLASS_EMBED_NAT64;
	}
	if (b[0] == 0x20 && b[1] == 0x02) { /* 2002:a.b.c.d::/48 */
		*v4 = netclass_be32(b + 2);
		return NETCLASS_EMBED_6TO4;
	}
	return NETCLASS_EMBED_NONE;
}

enum netclass
netclass_of_ipv6(const void *addr6)
{
	const uint8_t *b = addr6;
	static const uint8_t metadata6[16] = { 0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,	   0,
					       0,    0,	   0,	 0,    0, 0, 0x02, 0x54 };
	enum netclass_embed e;
	enum netclass c;
	uint32_t v4;

	if (netclass_zero(b, 16))
		return NETCLASS_UNSPECIFIED;
	if (netclass_zero(b, 15) && b[15] == 1)
		return NETCLASS_LOOPBACK;
	if ((e = netclass_embedded_ipv4(b, &v4)) != NETCLASS_EMBED_NONE) {
		c = netclass_of_ipv4(v4);
		if (e == NETCLASS_EMBED_MAPPED || c != NETCLASS_PUBLIC)
			return c;
		return e == NETCLASS_EMBED_6TO4 ? NETCLASS_PUBLIC : NETCLASS_RESERVED;
	}
	if (memcmp(b, metadata6, 16) == 0) /* fd00:ec2::254, AWS IMDS */
		return NETCLASS_METADATA;
	if (b[0] == 0xff)
		return NETCLASS_MULTICAST;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 */
		return NETCLASS_LINKLOCAL;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) /* fec0::/10, deprecated site-local */
		return NETCLASS_PRIVATE;
	if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 */
		return NETCLASS_PRIVATE;
	if ((b[0] & 0xe0) != 0x20) /* outside 2000::/3: 100::/64 discard, unallocated … */
		return NETCLASS_RESERVED;
	if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xfe) == 0x00) /* 2001::/23 (Teredo …) */
		return NETCLASS_RESERVED;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) /* 2001:db8::/32 */
		return NETCLASS_RESERVED;
	if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0x00) /* 3fff::/20 doc */
		return NETCLASS_RESERVED;
	return NETCLASS_PUBLIC;
}

enum netclass
netclass_of(const struct sockaddr *sa)
{
	if (sa == NULL)
		return NETCLASS_RESERVED;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		return netclass_of_ipv4(ntohl(sin->sin_addr.s_addr));
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		return netclass_of_ipv6(&sin6->sin6_addr);
	}
	default:
		/* not an Internet address: never dialled */
		return NETCLASS_RESERVED;
	}
}

const char *
netclass_name(enum netclass c)
{
	switch (c) {
	case NETCLASS_PUBLIC:
		return "public";
	case NETCLASS_LOOPBACK:
		return "loopback";
	case NETCLASS_PRIVATE:
		return "private";
	case NETCLASS_LINKLOCAL:
		return "link-local";
	case NETCLASS_METADATA:
		return "metadata";
	case NETCLASS_CGNAT:
		return "cgnat";
	case NETCLASS_UNSPECIFIED:
		return "unspecified";
	case NETCLASS_MULTICAST:
		return "multicast";
	case NETCLASS_RESERVED:
		return "reserved";
	}
	return "unknown";
}
