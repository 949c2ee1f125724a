/* SPDX-License-Identifier: MIT */
#pragma once

/* The connection pool's operations, private to connection.c (see ConnectionPool). */

#include "connection.h"

/* A connection's memory, uninitialised, or NULL when out of memory. */
Connection *connection_pool_get(ConnectionPool *pool);

/* Gives c back. */
void connection_pool_put(ConnectionPool *pool, Connection *c);

/* Frees every slab; no connection may be in use. */
void connection_pool_done(ConnectionPool *pool);
