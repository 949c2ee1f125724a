/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "macro.h"
#include "peer-table.h"

#define PEER_TABLE_MIN 64

uint32_t peer_table_add(PeerTable *t) {
        uint32_t i;

        if (t->free_head == 0) {
                if (t->n_items == UINT32_MAX)
                        return 0;
                if (t->n_items == t->capacity) {
                        uint32_t capacity = t->capacity == 0
                                                    ? PEER_TABLE_MIN
                                                    : (uint32_t)MIN((uint64_t)t->capacity * 2, UINT32_MAX);
                        PeerRecord *items = realloc(t->items, (size_t)capacity * sizeof *items);

                        if (!items)
                                return 0;
                        t->items = items;
                        t->capacity = capacity;
                }
                if (t->n_items == 0)
                        t->n_items = 1; /* index 0: none */
                i = t->n_items++;
        } else {
                i = t->free_head;
                t->free_head = t->items[i].next_free;
        }
        t->items[i] = (PeerRecord){ 0 };
        t->n_used++;
        return i;
}

void peer_table_remove(PeerTable *t, uint32_t i) {
        PeerRecord *r = &t->items[i];

        free(r->header);
        *r = (PeerRecord){ .next_free = t->free_head };
        t->free_head = i;
        t->n_used--;
}

void peer_table_done(PeerTable *t) {
        for (uint32_t i = 1; i < t->n_items; i++)
                free(t->items[i].header);
        free(t->items);
        *t = (PeerTable){ 0 };
}
