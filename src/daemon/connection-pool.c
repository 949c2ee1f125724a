/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "connection-pool.h"
#include "macro.h"

#define CONNECTION_SLAB_SIZE 256

struct ConnectionSlab {
        ConnectionSlab *next;
        Connection items[CONNECTION_SLAB_SIZE];
};

/* A free connection's timer is unarmed, so its link is free to thread the list. */
static Connection *next_free(const Connection *c) {
        return c->timer.next ? container_of(c->timer.next, Connection, timer) : NULL;
}

static void push_free(ConnectionPool *pool, Connection *c) {
        c->kind = 0;
        c->timer.next = pool->free_list ? &pool->free_list->timer : NULL;
        pool->free_list = c;
}

Connection *connection_pool_get(ConnectionPool *pool) {
        Connection *c;

        if (!pool->free_list) {
                ConnectionSlab *slab = malloc(sizeof *slab);

                if (!slab)
                        return NULL;
                slab->next = pool->slabs;
                pool->slabs = slab;
                for (size_t i = CONNECTION_SLAB_SIZE; i > 0; i--)
                        push_free(pool, &slab->items[i - 1]);
        }
        c = pool->free_list;
        pool->free_list = next_free(c);
        pool->n_used++;
        return c;
}

void connection_pool_put(ConnectionPool *pool, Connection *c) {
        push_free(pool, c);
        pool->n_used--;
}

void connection_pool_done(ConnectionPool *pool) {
        while (pool->slabs) {
                ConnectionSlab *s = pool->slabs;

                pool->slabs = s->next;
                free(s);
        }
        *pool = (ConnectionPool){ 0 };
}
