/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a connection needs from the settings it was accepted under: the reply
 * text, prebuilt as one constant buffer of back-to-back replies (so flushing N
 * acknowledgements is a single write), the message limit and the idle timer
 * queue. A SIGHUP gives new connections a new profile; existing connections
 * keep theirs until they close. Owned by one worker: the reference count is
 * not atomic.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settings.h"
#include "timer.h"

/* Size of the prebuilt reply buffer: the most one write sends, and the backpressure bound. */
#define PROFILE_REPLY_BUFFER 65536

typedef struct Profile {
        unsigned n_ref;
        struct Profile *next; /* the list of profiles still in use */
        unsigned generation;  /* of the settings it was made from */
        uint64_t max_message;
        TimerQueue idle;  /* connections reading or replying */
        TimerQueue proxy; /* connections waiting for their PROXY header */
        AddressPrefix proxy_from[SETTINGS_PROXY_FROM_MAX];
        size_t n_proxy_from; /* 0: any source */
        size_t ack_len;      /* oneshot reply: the first ack_len bytes of replies[] */
        size_t line_unit;    /* line reply: ack_len + 1 (the LF) */
        size_t line_count;   /* line replies in replies[] */
        char replies[];      /* "ACK!\nACK!\n..." */
} Profile;

Profile *profile_new(const Settings *s, unsigned generation);

/* The same with the reply text, message limit and idle timeout given (those of a profile
 * handed over by the previous ackd), and the rest from s. */
Profile *profile_new_with(const Settings *s, unsigned generation, const char *ack, size_t ack_len,
                          uint64_t max_message, uint64_t idle_timeout_ms);

/* Whether a connection from peer may talk to a +proxy listener (--proxy-from). */
bool profile_proxy_trusted(const Profile *p, const struct sockaddr *peer, socklen_t peer_len);
Profile *profile_ref(Profile *p);

/* The profiles of one worker: the current one, for new connections, and every older
 * one that connections still hold (their idle queues are walked by the timers). */
typedef struct ProfileList {
        Profile *current;
        Profile *all; /* newest first */
} ProfileList;

/* Makes p, with the reference profile_new() gave it, the current profile. */
void profile_list_push(ProfileList *l, Profile *p);

/* Adds p, with the reference profile_new() gave it, as an older profile (not current). */
void profile_list_add(ProfileList *l, Profile *p);

/* Drops a reference to p, and frees it when that was the last. */
void profile_list_release(ProfileList *l, Profile *p);

/* Drops the current profile's list reference (the others go with their connections). */
void profile_list_done(ProfileList *l);
