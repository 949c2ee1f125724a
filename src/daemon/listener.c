/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "config.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "handover.h"
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"

/* Seconds a oneshot listener lets the kernel hold a connection that has sent nothing
 * yet. Accepting only once data is there saves a wakeup per connection; a client that
 * stays silent is still accepted after about this long, and then idle-timeout applies. */
#define DEFER_ACCEPT_SEC 1

static int listener_set_add(ListenerSet *set, Listener l) {
        Listener *items;

        /* The callers check the count first, with a message that says why. */
        if (set->n_items >= LISTENERS_MAX)
                return -E2BIG;
        items = realloc(set->items, (set->n_items + 1) * sizeof *items);
        if (!items)
                return -ENOMEM;
        l.index = (uint8_t)set->n_items;
        set->items = items;
        set->items[set->n_items++] = l;
        return 0;
}

static void listener_describe(Listener *l) {
        struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        char scope[IF_NAMESIZE] = "";
        socklen_t len = sizeof ss;

        if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0) {
                (void)snprintf(l->name, sizeof l->name, "fd %d", l->fd);
                return;
        }
        /* A link-local listener is named by its interface, as the user wrote it. */
        if (ss.ss_family == AF_INET6 && in6->sin6_scope_id != 0 &&
            !if_indextoname(in6->sin6_scope_id, scope))
                scope[0] = '\0';
        (void)sockaddr_format_local((struct sockaddr *)&ss, len, scope, l->name, sizeof l->name);
        l->family = ss.ss_family;
}

/* Options every TCP listener gets, whether we bound it or systemd did. */
static void listener_tune(Listener *l) {
        int v = 0;
        socklen_t len = sizeof v;

        if (l->family != AF_INET && l->family != AF_INET6)
                return;
        if (l->mode == PROTOCOL_ONESHOT && !l->activated) {
                v = DEFER_ACCEPT_SEC;
                if (setsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, sizeof v) < 0)
                        log_debug_errno(errno, "TCP_DEFER_ACCEPT on %s: %s", l->name, STRERROR(errno));
        }
        /* For an inherited socket this reflects DeferAcceptSec= in the socket unit. */
        v = 0;
        if (getsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &len) == 0 && v > 0)
                l->defer_accept = true;
}

static int bind_one(ListenerSet *set, const ListenAddress *a, const struct sockaddr *sa, socklen_t sa_len,
                    bool dual_stack) {
        _cleanup_(closep) int fd = -1;
        const int one = 1;
        Listener l;
        int r;

        fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;

        /* Without SO_REUSEADDR a restart fails while old connections sit in TIME_WAIT. */
        if (sa->sa_family != AF_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        if (sa->sa_family == AF_INET6) {
                int v6only = !dual_stack;

                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
                        return -errno;
        }

        if (bind(fd, sa, sa_len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;

        l = (Listener){ .fd = fd, .mode = a->mode, .proxy = a->proxy };
        listener_describe(&l);
        listener_tune(&l);
        if (a->kind == ADDRESS_UNIX && a->path[0] == '/') {
                struct stat st;

                /* Remembered, so that only this file is ever removed as ours. */
                if (lstat(a->path, &st) < 0)
                        return -errno;
                l.unlink_path = strdup(a->path);
                if (!l.unlink_path)
                        return -ENOMEM;
                l.unlink_dev = st.st_dev;
                l.unlink_ino = st.st_ino;
        }
        r = listener_set_add(set, l);
        if (r < 0) {
                free(l.unlink_path);
                return r;
        }
        fd = -1;
        return 0;
}

static int bind_any(ListenerSet *set, const ListenAddress *a) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6,
                                    .sin6_addr = IN6ADDR_ANY_INIT,
                                    .sin6_port = htons(a->port) };
        struct sockaddr_in in = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_ANY),
                                  .sin_port = htons(a->port) };
        int r;

        r = bind_one(set, a, (struct sockaddr *)&in6, sizeof in6, true);
        if (r >= 0)
                return 0;
        /* No IPv6 on this host (module absent, or disabled by sysctl): IPv4 alone. */
        if (r != -EAFNOSUPPORT && r != -EADDRNOTAVAIL && r != -EPROTONOSUPPORT)
                return log_error_errno(r, "Failed to listen on [::]:%u: %s", a->port, STRERROR(r));
        log_info("IPv6 unavailable, listening on IPv4 only");
        r = bind_one(set, a, (struct sockaddr *)&in, sizeof in, false);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on 0.0.0.0:%u: %s", a->port, STRERROR(r));
        return 0;
}

/* The interface index of a scope: an interface name first (as getaddrinfo() reads one),
 * then a number, which must name an interface too. */
static int scope_index(const char *scope, uint32_t *ret) {
        char name[IF_NAMESIZE];
        unsigned index = if_nametoindex(scope);
        uint64_t v;

        if (index == 0 && parse_uint64(scope, 1, UINT32_MAX, &v) == 0 && if_indextoname((unsigned)v, name))
                index = (unsigned)v;
        if (index == 0)
                return -ENODEV;
        *ret = index;
        return 0;
}

/* [V6]:PORT is a literal: no resolver, and a scope selects the interface. */
static int bind_ipv6_literal(ListenerSet *set, const ListenAddress *a) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(a->port) };
        char name[ADDRESS_STRING_MAX];
        int r;

        (void)snprintf(name, sizeof name, "[%s%s%s]:%u", a->host, *a->scope ? "%" : "", a->scope, a->port);
        if (inet_pton(AF_INET6, a->host, &in6.sin6_addr) != 1)
                return log_error_errno(EINVAL, "Failed to listen on %s: invalid IPv6 address", name);
        if (*a->scope && scope_index(a->scope, &in6.sin6_scope_id) < 0)
                return log_error_errno(ENODEV, "Failed to listen on %s: no network interface '%s'", name,
                                       a->scope);
        /* An IPv4-mapped address can be bound only with IPV6_V6ONLY off. */
        r = bind_one(set, a, (struct sockaddr *)&in6, sizeof in6, IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr));
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %s", name, STRERROR(r));
        return 0;
}

static int bind_inet(ListenerSet *set, const ListenAddress *a) {
        struct addrinfo hints = {
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG,
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
        };
        struct addrinfo *res = NULL;
        size_t count = 0;
        char port[8];
        int r;

        (void)snprintf(port, sizeof port, "%u", a->port);
        r = getaddrinfo(a->host, port, &hints, &res);
        if (r == EAI_BADFLAGS || (r == EAI_NONAME && (hints.ai_flags & AI_ADDRCONFIG))) {
                /* Loopback-only hosts (containers, namespaces) can trip AI_ADDRCONFIG. */
                hints.ai_flags &= ~AI_ADDRCONFIG;
                r = getaddrinfo(a->host, port, &hints, &res);
        }
        if (r != 0)
                return log_error_errno(EADDRNOTAVAIL, "Failed to resolve '%s': %s", a->host,
                                       r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));

        /* A name may resolve to several addresses (localhost: 127.0.0.1 and ::1): listen on each. */
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                if (++count + set->n_items > LISTENERS_MAX) {
                        freeaddrinfo(res);
                        return log_error_errno(E2BIG,
                                               "Failed to listen on '%s': more than %d listening sockets",
                                               a->host, LISTENERS_MAX);
                }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                char name[ADDRESS_STRING_MAX];

                r = bind_one(set, a, ai->ai_addr, ai->ai_addrlen, false);
                if (r < 0) {
                        (void)sockaddr_format(ai->ai_addr, ai->ai_addrlen, name, sizeof name);
                        freeaddrinfo(res);
                        return log_error_errno(r, "Failed to listen on %s: %s", name, STRERROR(r));
                }
        }
        freeaddrinfo(res);
        return 0;
}

/* A socket file left behind by a crashed instance is removed; one that still answers is not. */
static int unix_path_prepare(const char *path) {
        struct sockaddr_un sun;
        _cleanup_(closep) int fd = -1;
        socklen_t len;
        struct stat st;

        if (path[0] != '/' || lstat(path, &st) < 0)
                return 0;
        if (!S_ISSOCK(st.st_mode))
                return log_error_errno(EEXIST, "Failed to listen on unix:%s: exists and is not a socket",
                                       path);
        if (sockaddr_un_set(&sun, path, &len) < 0)
                return -EINVAL;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sun, len) == 0)
                return log_error_errno(EADDRINUSE,
                                       "Failed to listen on unix:%s: another process is serving it", path);
        if (errno != ECONNREFUSED)
                return log_error_errno(errno, "Failed to check unix:%s: %s", path, STRERROR(errno));
        if (unlink(path) < 0 && errno != ENOENT)
                return log_error_errno(errno, "Failed to remove stale socket %s: %s", path, STRERROR(errno));
        log_info("Removed stale socket %s", path);
        return 0;
}

static int bind_unix(ListenerSet *set, const ListenAddress *a) {
        struct sockaddr_un sun;
        socklen_t len;
        int r;

        r = sockaddr_un_set(&sun, a->path, &len);
        if (r < 0)
                return log_error_errno(r, "Invalid unix socket path %s", a->path);
        r = unix_path_prepare(a->path);
        if (r < 0)
                return r;
        r = bind_one(set, a, (struct sockaddr *)&sun, len, false);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on unix:%s: %s", a->path, STRERROR(r));
        return 0;
}

static int listeners_bind(ListenerSet *set, const Settings *s) {
        for (size_t i = 0; i < s->n_listen; i++) {
                const ListenAddress *a = &s->listen[i];
                int r;

                switch (a->kind) {
                case ADDRESS_ANY:
                        r = bind_any(set, a);
                        break;
                case ADDRESS_INET:
                        r = a->ipv6 ? bind_ipv6_literal(set, a) : bind_inet(set, a);
                        break;
                case ADDRESS_UNIX:
                        r = bind_unix(set, a);
                        break;
                default:
                        r = -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

#if HAVE_SYSTEMD
/* A passed fd that the previous ackd stored (handover.h): kept for handover_take(). Returns
 * 1 if fd is one, 0 if it is not, or a negative errno. */
static int listener_take_stored(ListenerSet *set, int fd, const char *name) {
        int *fds;

        if (strcmp(name, HANDOVER_FDNAME_STATE) == 0) {
                /* Never fatal: each record must match its socket by inode, and a socket
                 * without its record is closed gracefully. */
                if (set->handover_state_fd >= 0) {
                        log_warning("systemd passed two handover states (fd %d and %d): using the second",
                                    set->handover_state_fd, fd);
                        safe_close(set->handover_state_fd);
                }
                set->handover_state_fd = fd;
                return 1;
        }
        if (strcmp(name, HANDOVER_FDNAME_CONNECTIONS) == 0) {
                fds = realloc(set->handover_carriers, (set->n_handover_carriers + 1) * sizeof *fds);
                if (!fds)
                        return log_error_errno(ENOMEM, "Out of memory");
                set->handover_carriers = fds;
                set->handover_carriers[set->n_handover_carriers++] = fd;
                return 1;
        }
        if (strcmp(name, HANDOVER_FDNAME_CONNECTION) == 0) {
                fds = realloc(set->handover_sockets, (set->n_handover_sockets + 1) * sizeof *fds);
                if (!fds)
                        return log_error_errno(ENOMEM, "Out of memory");
                set->handover_sockets = fds;
                set->handover_sockets[set->n_handover_sockets++] = fd;
                return 1;
        }
        return 0;
}

/* One passed fd that is not stored state: a listener, or the connection of Accept=yes (n == 1). */
static int listener_inherit(ListenerSet *set, int fd, const char *name, int n) {
        Listener l = { .fd = fd, .activated = true };
        int r, flags;

        if (set->n_items >= LISTENERS_MAX)
                return log_error_errno(E2BIG, "systemd passed more than %d listening sockets",
                                       LISTENERS_MAX);

        r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
        if (r < 0)
                return log_error_errno(r, "Failed to check passed fd %d (%s): %s", fd, name, STRERROR(r));
        if (r == 0) {
                /* Accept=yes: systemd accepted the connection and passes just that. */
                if (n == 1 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 0) > 0)
                        l.connected = true;
                else
                        return log_error_errno(EINVAL,
                                               "Passed fd %d (%s) is not a listening stream socket "
                                               "(nor the one connection of Accept=yes)",
                                               fd, name);
        }

        listener_describe(&l);
        if (l.family != AF_INET && l.family != AF_INET6 && l.family != AF_UNIX)
                return log_error_errno(EAFNOSUPPORT,
                                       "Passed fd %d (%s) is neither a TCP nor an AF_UNIX socket", fd, name);

        /* The name selects the protocol; systemd's default (the unit name) means oneshot. */
        if (listen_mode_parse(name, strlen(name), &l.mode, &l.proxy) < 0) {
                if (strchr(name, '+'))
                        log_warning("Passed fd %d: FileDescriptorName=%s is not a mode "
                                    "(oneshot, line, metrics, oneshot+proxy, line+proxy); serving oneshot",
                                    fd, name);
                l.mode = PROTOCOL_ONESHOT;
                l.proxy = false;
        }
        if (l.connected && l.mode == PROTOCOL_METRICS)
                return log_error_errno(EINVAL,
                                       "Passed fd %d (%s): Accept=yes serves oneshot or line, not metrics",
                                       fd, name);

        /* The listener is polled by several workers: accept() must never block. */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return log_error_errno(errno, "Failed to make fd %d non-blocking: %s", fd, STRERROR(errno));
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);

        if (!l.connected)
                listener_tune(&l);
        r = listener_set_add(set, l);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        return 0;
}

static int listeners_inherit(ListenerSet *set, int n, char **names) {
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "unknown";
                int r = listener_take_stored(set, fd, name);

                if (r == 0)
                        r = listener_inherit(set, fd, name, n);
                if (r < 0)
                        return r;
        }
        set->activated = set->n_items > 0;
        set->inetd = n == 1 && set->n_items == 1 && set->items[0].connected;
        return 0;
}
#endif

int listener_set_open(ListenerSet *set, const Settings *s) {
        char mode[LISTEN_MODE_STRING_MAX];
        int r = 0;

        *set = (ListenerSet){ .handover_state_fd = -1 };

#if HAVE_SYSTEMD
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %s", STRERROR(n));
        if (n > 0) {
                r = listeners_inherit(set, n, names);
                for (int i = 0; names && i < n; i++)
                        free(names[i]);
                free(names);
        }
        /* Nothing passed, or only what a previous ackd stored: bind the settings' addresses. */
        if (r >= 0 && set->n_items == 0)
                r = listeners_bind(set, s);
#else
        if (getenv("LISTEN_FDS"))
                log_warning("LISTEN_FDS is set but ackd was built without systemd support; binding itself");
        r = listeners_bind(set, s);
#endif
        if (r < 0) {
                listener_set_close(set);
                return r;
        }

        if (set->inetd) {
                /* One process per connection: keep the journal to one line per connection at most. */
                log_debug("Serving one connection on %s (%s, Accept=yes)", set->items[0].name,
                          listener_mode(&set->items[0], mode, sizeof mode));
                return 0;
        }
        for (size_t i = 0; i < set->n_items; i++)
                log_notice("Listening on %s (%s%s)", set->items[i].name,
                           listener_mode(&set->items[i], mode, sizeof mode),
                           set->items[i].activated ? ", from systemd" : "");
        return 0;
}

int listener_remove_socket_file(const char *path, dev_t dev, ino_t ino) {
        struct stat st;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_warning_errno(errno, "Failed to remove socket file %s: %s", path,
                                         STRERROR(errno));
        }
        if (st.st_dev != dev || st.st_ino != ino) {
                log_notice("Leaving %s alone: it is no longer the socket file ackd created", path);
                return -ESTALE;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return log_warning_errno(errno, "Failed to remove socket file %s: %s", path,
                                         STRERROR(errno));
        return 0;
}

static void listener_close(Listener *l) {
        l->fd = safe_close(l->fd);
        if (l->unlink_path) {
                (void)listener_remove_socket_file(l->unlink_path, l->unlink_dev, l->unlink_ino);
                l->unlink_path = mfree(l->unlink_path);
        }
}

void listener_set_close_bound(ListenerSet *set) {
        for (size_t i = 0; i < set->n_items; i++)
                if (!set->items[i].activated && set->items[i].mode != PROTOCOL_METRICS)
                        listener_close(&set->items[i]);
}

void listener_set_close(ListenerSet *set) {
        for (size_t i = 0; i < set->n_items; i++)
                listener_close(&set->items[i]);
        free(set->items);
        safe_close(set->handover_state_fd);
        for (size_t i = 0; i < set->n_handover_carriers; i++)
                safe_close(set->handover_carriers[i]);
        free(set->handover_carriers);
        for (size_t i = 0; i < set->n_handover_sockets; i++)
                safe_close(set->handover_sockets[i]);
        free(set->handover_sockets);
        *set = (ListenerSet){ .handover_state_fd = -1 };
}
