/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

Profile *profile_new_with(const Settings *s, unsigned generation, const char *ack, size_t ack_len,
                          uint64_t max_message, uint64_t idle_timeout_ms) {
        size_t unit = ack_len + 1;
        size_t count = PROFILE_REPLY_BUFFER / unit;
        Profile *p;

        p = malloc(sizeof *p + count * unit);
        if (!p)
                return NULL;
        *p = (Profile){
                .n_ref = 1,
                .generation = generation,
                .max_message = max_message,
                .n_proxy_from = s->n_proxy_from,
                .ack_len = ack_len,
                .line_unit = unit,
                .line_count = count,
        };
        timer_queue_init(&p->idle, idle_timeout_ms);
        timer_queue_init(&p->proxy, s->proxy_timeout_ms);
        memcpy(p->proxy_from, s->proxy_from, s->n_proxy_from * sizeof *p->proxy_from);
        for (size_t i = 0; i < count; i++) {
                memcpy(p->replies + i * unit, ack, ack_len);
                p->replies[i * unit + ack_len] = '\n';
        }
        return p;
}

Profile *profile_new(const Settings *s, unsigned generation) {
        return profile_new_with(s, generation, s->ack, s->ack_len, s->max_message, s->idle_timeout_ms);
}

bool profile_proxy_trusted(const Profile *p, const struct sockaddr *peer, socklen_t peer_len) {
        if (p->n_proxy_from == 0 || peer->sa_family == AF_UNIX)
                return true; /* any source; a unix socket's file permissions say who may connect */
        for (size_t i = 0; i < p->n_proxy_from; i++)
                if (address_prefix_match(&p->proxy_from[i], peer, peer_len))
                        return true;
        return false;
}

Profile *profile_ref(Profile *p) {
        p->n_ref++;
        return p;
}

void profile_list_push(ProfileList *l, Profile *p) {
        Profile *old = l->current;

        p->next = l->all;
        l->all = p;
        l->current = p;
        if (old)
                profile_list_release(l, old);
}

void profile_list_add(ProfileList *l, Profile *p) {
        p->next = l->all;
        l->all = p;
}

void profile_list_release(ProfileList *l, Profile *p) {
        if (--p->n_ref > 0)
                return;
        for (Profile **pp = &l->all; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        free(p);
}

void profile_list_done(ProfileList *l) {
        if (l->current)
                profile_list_release(l, l->current);
        l->current = NULL;
}
