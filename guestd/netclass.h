/*
 * Address classifier for egress: which resolved addresses an agent may never reach unless
 * the policy names them. Pure functions, unit-tested exhaustively (tests never send a packet
 * to such an address).
 */
#ifndef SAW_GUESTD_NETCLASS_H
#define SAW_GUESTD_NETCLASS_H

#include <sys/socket.h>

enum netclass {
	NETCLASS_PUBLIC = 0,
	NETCLASS_LOOPBACK,    /* 127/8, ::1 */
	NETCLASS_PRIVATE,     /* RFC 1918, fc00::/7 unique-local */
	NETCLASS_LINKLOCAL,   /* 169.254/16 (but see METADATA), fe80::/10 */
	NETCLASS_METADATA,    /* 169.254.169.254, fd00:ec2::254, 100.100.100.200 */
	NETCLASS_CGNAT,	      /* 100.64/10 */
	NETCLASS_UNSPECIFIED, /* 0.0.0.0/8, :: */
	NETCLASS_MULTICAST,   /* 224/4, ff00::/8, 255.255.255.255 */
	NETCLASS_RESERVED, /* 240/4, 192.0.0/24, 198.18/15, documentation ranges, 64:ff9b::/96 … */
};

/* Classifies an IPv4 or IPv6 address; IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible,
 * NAT64 and 6to4-embedded IPv4 addresses are classified by the embedded IPv4 address. */
enum netclass netclass_of(const struct sockaddr *sa);
const char *netclass_name(enum netclass c);

/* Additions (the functions above are the fixed contract). */
#include <stdint.h>

/* Classifies a bare address: v4 in host byte order, addr6 the 16 bytes of an in6_addr. */
enum netclass netclass_of_ipv4(uint32_t v4);
enum netclass netclass_of_ipv6(const void *addr6);

enum netclass_embed {
	NETCLASS_EMBED_NONE = 0,
	NETCLASS_EMBED_MAPPED,	   /* ::ffff:a.b.c.d */
	NETCLASS_EMBED_COMPAT,	   /* ::a.b.c.d (deprecated), other than :: and ::1 */
	NETCLASS_EMBED_TRANSLATED, /* ::ffff:0:a.b.c.d (SIIT) */
	NETCLASS_EMBED_NAT64,	   /* 64:ff9b::/96 and 64:ff9b:1::/48 */
	NETCLASS_EMBED_6TO4,	   /* 2002:a.b.c.d::/48 */
};
/* Which IPv4 address (host byte order, into *v4) an IPv6 address embeds, if any. */
enum netclass_embed netclass_embedded_ipv4(const void *addr6, uint32_t *v4);

#endif
