/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a connection of a +proxy listener keeps beyond its 64 bytes: while its
 * PROXY header is incomplete, the bytes received so far (at most
 * PROXY_HEADER_MAX, freed once it is complete), and afterwards the client
 * address the header named, which logs show instead of the proxy's. Records
 * live in one array per worker, addressed by a 32-bit index (0: none), so a
 * connection holds an index, not a pointer, and the array may grow.
 */

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct PeerRecord {
        char *header; /* the PROXY header so far, while incomplete */
        uint16_t header_len;
        socklen_t addr_len; /* 0: no address from the header (LOCAL, UNKNOWN) */
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } addr; /* the client, as the header named it (TCP4, TCP6) */
        uint32_t next_free;
} PeerRecord;

typedef struct PeerTable {
        PeerRecord *items; /* items[0] is unused: index 0 means none */
        uint32_t n_items;  /* in use or free, index 0 included */
        uint32_t capacity;
        uint32_t free_head; /* 0: none free */
        uint32_t n_used;
} PeerTable;

/* A new empty record's index, or 0 when out of memory (or indexes). */
uint32_t peer_table_add(PeerTable *t);

/* Valid until the next peer_table_add(). */
static inline PeerRecord *peer_table_get(PeerTable *t, uint32_t i) {
        return &t->items[i];
}

/* Frees the record and what it holds. */
void peer_table_remove(PeerTable *t, uint32_t i);

void peer_table_done(PeerTable *t);
