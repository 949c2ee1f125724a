/* SPDX-License-Identifier: MIT */
/*
 * Listen addresses as users write them, their canonical form, and how socket
 * addresses are shown in logs.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "macro.h"

typedef struct GoodAddress {
        const char *text;
        AddressKind kind;
        bool ipv6;
        uint16_t port;
        const char *host;  /* ADDRESS_INET */
        const char *path;  /* ADDRESS_UNIX */
        const char *scope; /* IPv6 link-local; NULL: none */
} GoodAddress;

static const GoodAddress good[] = {
        { "127.0.0.1:9999", ADDRESS_INET, false, 9999, "127.0.0.1", NULL },
        { "localhost:80", ADDRESS_INET, false, 80, "localhost", NULL },
        { "my-host.example_1.org:443", ADDRESS_INET, false, 443, "my-host.example_1.org", NULL },
        { "[::1]:9998", ADDRESS_INET, true, 9998, "::1", NULL },
        { "[::]:1", ADDRESS_INET, true, 1, "::", NULL },
        { "[2001:db8::1]:65535", ADDRESS_INET, true, 65535, "2001:db8::1", NULL },
        { "[::ffff:1.2.3.4]:7", ADDRESS_INET, true, 7, "::ffff:1.2.3.4", NULL },
        { "[fe80::1%eth0]:9999", ADDRESS_INET, true, 9999, "fe80::1", NULL, "eth0" },
        { "[fe80::1%2]:1", ADDRESS_INET, true, 1, "fe80::1", NULL, "2" },
        { "[FE80::abcd:1%lo]:0", ADDRESS_INET, true, 0, "FE80::abcd:1", NULL, "lo" },
        { "[febf:ffff::1%br-0.v_15chars]:80", ADDRESS_INET, true, 80, "febf:ffff::1", NULL,
          "br-0.v_15chars" },
        { "[fe80::1%2147483647]:1", ADDRESS_INET, true, 1, "fe80::1", NULL, "2147483647" },
        { ":9999", ADDRESS_ANY, false, 9999, NULL, NULL },
        { "9999", ADDRESS_ANY, false, 9999, NULL, NULL },
        { ":0", ADDRESS_ANY, false, 0, NULL, NULL },
        { "0", ADDRESS_ANY, false, 0, NULL, NULL },
        { ":65535", ADDRESS_ANY, false, 65535, NULL, NULL },
        { "65535", ADDRESS_ANY, false, 65535, NULL, NULL },
        { "1.2.3.4:0", ADDRESS_INET, false, 0, "1.2.3.4", NULL },
        { "0.0.0.0:65535", ADDRESS_INET, false, 65535, "0.0.0.0", NULL },
        { "unix:/run/x.sock", ADDRESS_UNIX, false, 0, NULL, "/run/x.sock" },
        { "unix:@abstract", ADDRESS_UNIX, false, 0, NULL, "@abstract" },
        { "unix:/a@b", ADDRESS_UNIX, false, 0, NULL, "/a@b" },
};

static void assert_good_mode(const char *text, const GoodAddress *g, ProtocolMode mode, bool proxy) {
        ListenAddress a;
        const char *reason = NULL;
        int r;

        memset(&a, 0xaa, sizeof a);
        r = listen_address_parse(text, &a, &reason);
        ck_assert_msg(r == 0, "'%s' rejected: %s", text, reason ? reason : "(no reason)");
        ck_assert_msg(a.mode == mode, "'%s': mode %d", text, (int)a.mode);
        ck_assert_msg(a.proxy == proxy, "'%s': proxy %d", text, (int)a.proxy);
        ck_assert_msg(a.kind == g->kind, "'%s': kind %d", text, (int)a.kind);
        ck_assert_msg(a.ipv6 == g->ipv6, "'%s': ipv6 %d", text, a.ipv6);
        if (g->kind != ADDRESS_UNIX)
                ck_assert_msg(a.port == g->port, "'%s': port %u", text, a.port);
        if (g->host)
                ck_assert_str_eq(a.host, g->host);
        if (g->path)
                ck_assert_str_eq(a.path, g->path);
        if (g->kind == ADDRESS_INET)
                ck_assert_str_eq(a.scope, g->scope ? g->scope : "");
}

static void assert_good(const char *text, const GoodAddress *g, ProtocolMode mode) {
        assert_good_mode(text, g, mode, false);
}

START_TEST(test_parse_accepts_every_address_form) {
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_good(good[i].text, &good[i], PROTOCOL_ONESHOT);
}
END_TEST

START_TEST(test_parse_accepts_mode_prefix_on_every_form) {
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char buf[256];

                (void)snprintf(buf, sizeof buf, "line@%s", good[i].text);
                assert_good(buf, &good[i], PROTOCOL_LINE);
                (void)snprintf(buf, sizeof buf, "oneshot@%s", good[i].text);
                assert_good(buf, &good[i], PROTOCOL_ONESHOT);
                (void)snprintf(buf, sizeof buf, "metrics@%s", good[i].text);
                assert_good(buf, &good[i], PROTOCOL_METRICS);
                (void)snprintf(buf, sizeof buf, "line+proxy@%s", good[i].text);
                assert_good_mode(buf, &good[i], PROTOCOL_LINE, true);
                (void)snprintf(buf, sizeof buf, "oneshot+proxy@%s", good[i].text);
                assert_good_mode(buf, &good[i], PROTOCOL_ONESHOT, true);
                /* "+proxy" alone means oneshot. */
                (void)snprintf(buf, sizeof buf, "+proxy@%s", good[i].text);
                assert_good_mode(buf, &good[i], PROTOCOL_ONESHOT, true);
        }
}
END_TEST

START_TEST(test_listen_mode_parse_and_format) {
        static const struct {
                const char *text;
                ProtocolMode mode;
                bool proxy;
                const char *canonical;
        } modes[] = {
                { "oneshot", PROTOCOL_ONESHOT, false, "oneshot" },
                { "line", PROTOCOL_LINE, false, "line" },
                { "metrics", PROTOCOL_METRICS, false, "metrics" },
                { "oneshot+proxy", PROTOCOL_ONESHOT, true, "oneshot+proxy" },
                { "line+proxy", PROTOCOL_LINE, true, "line+proxy" },
                { "+proxy", PROTOCOL_ONESHOT, true, "oneshot+proxy" },
        };
        static const char *const bad[] = {
                "",     "proxy", "metrics+proxy", "line+proxy+proxy", "line+",          "+", "oneshot+PROXY",
                "Line", "line ", " line",         "ackd.socket",      "oneshot+proxyx",
        };
        char buf[LISTEN_MODE_STRING_MAX];

        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                ProtocolMode mode;
                bool proxy;

                ck_assert_int_eq(listen_mode_parse(modes[i].text, strlen(modes[i].text), &mode, &proxy), 0);
                ck_assert_int_eq(mode, modes[i].mode);
                ck_assert_int_eq(proxy, modes[i].proxy);
                ck_assert_str_eq(listen_mode_format(mode, proxy, buf, sizeof buf), modes[i].canonical);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ProtocolMode mode = PROTOCOL_LINE;
                bool proxy = true;

                ck_assert_msg(listen_mode_parse(bad[i], strlen(bad[i]), &mode, &proxy) == -EINVAL,
                              "'%s' accepted", bad[i]);
        }
        /* Only the n bytes given count. */
        {
                ProtocolMode mode;
                bool proxy;

                ck_assert_int_eq(listen_mode_parse("line+proxy@x", 4, &mode, &proxy), 0);
                ck_assert_int_eq(mode, PROTOCOL_LINE);
                ck_assert(!proxy);
        }
}
END_TEST

START_TEST(test_parse_accepts_unix_path_of_107_bytes_not_108) {
        char text[128] = "unix:/";
        ListenAddress a;
        const char *reason = NULL;

        /* "/" plus 106 bytes: the longest path sun_path can hold with its NUL. */
        memset(text + 6, 'p', 106);
        text[6 + 106] = '\0';
        ck_assert_uint_eq(strlen(text + 5), 107);
        ck_assert_int_eq(listen_address_parse(text, &a, &reason), 0);
        ck_assert_uint_eq(strlen(a.path), 107);

        text[6 + 106] = 'p';
        text[6 + 107] = '\0';
        ck_assert_int_eq(listen_address_parse(text, &a, &reason), -EINVAL);
        ck_assert_ptr_nonnull(strstr(reason, "too long"));

        /* The same bounds for abstract names, '@' included. */
        text[5] = '@';
        ck_assert_int_eq(listen_address_parse(text, &a, &reason), -EINVAL);
        text[6 + 106] = '\0';
        ck_assert_int_eq(listen_address_parse(text, &a, &reason), 0);
}
END_TEST

START_TEST(test_parse_accepts_host_of_255_bytes_not_256) {
        char text[300];
        ListenAddress a;
        const char *reason = NULL;

        memset(text, 'h', 255);
        memcpy(text + 255, ":1", 3);
        ck_assert_int_eq(listen_address_parse(text, &a, &reason), 0);
        ck_assert_uint_eq(strlen(a.host), 255);

        memset(text, 'h', 256);
        memcpy(text + 256, ":1", 3);
        ck_assert_int_eq(listen_address_parse(text, &a, &reason), -EINVAL);
        ck_assert_ptr_nonnull(reason);
}
END_TEST

typedef struct BadAddress {
        const char *text;
        const char *reason; /* a word the explanation must contain */
} BadAddress;

static void assert_bad(const BadAddress *bad, size_t n) {
        for (size_t i = 0; i < n; i++) {
                ListenAddress a;
                const char *reason = NULL;
                int r;

                r = listen_address_parse(bad[i].text, &a, &reason);
                ck_assert_msg(r == -EINVAL, "'%s' accepted (r=%d)", bad[i].text, r);
                ck_assert_msg(reason && *reason, "'%s' rejected without a reason", bad[i].text);
                ck_assert_msg(strstr(reason, bad[i].reason), "'%s': reason '%s' does not mention '%s'",
                              bad[i].text, reason, bad[i].reason);
        }
}

START_TEST(test_parse_rejects_empty_address) {
        static const BadAddress bad[] = {
                { "", "empty" },
                { NULL, "empty" },
                { "line@", "expected" },
        };
        ListenAddress a;

        assert_bad(bad, ELEMENTSOF(bad));
        /* The reason is optional. */
        ck_assert_int_eq(listen_address_parse("", &a, NULL), -EINVAL);
}
END_TEST

START_TEST(test_parse_rejects_unknown_mode) {
        static const BadAddress bad[] = {
                { "foo@1.2.3.4:1", "mode" }, { "@1.2.3.4:1", "mode" },
                { "LINE@:1", "mode" },       { "oneshotoneshotoneshot@:1", "mode" },
                { "foo@unix:/x", "mode" },   { "metrics+proxy@:1", "mode" },
                { "proxy@:1", "mode" },      { "line+proxy+proxy@:1", "mode" },
                { "line+@:1", "mode" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

START_TEST(test_parse_rejects_missing_or_bad_port) {
        static const BadAddress bad[] = {
                { "1.2.3.4", "expected" },
                { "localhost", "expected" },
                { "1.2.3.4:65536", "port" },
                { "1.2.3.4:-1", "port" },
                { "1.2.3.4:+1", "port" },
                { "1.2.3.4: 1", "port" },
                { "1.2.3.4:1 ", "port" },
                { "1.2.3.4:", "port" },
                { "1.2.3.4:http", "port" },
                { ":", "port" },
                { ":99999999999999999999999", "port" },
                { "65536", "expected" },
                { "-1", "expected" },
                { "[::1]:", "port" },
                { "[::1]:65536", "port" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

START_TEST(test_parse_rejects_bad_ipv6_forms) {
        static const BadAddress bad[] = {
                { "::1:9999", "brackets" },
                { "::1", "brackets" },
                { "fe80::1:80", "brackets" },
                { "[::1]9999", "[IPV6]:PORT" },
                { "[::1]", "[IPV6]:PORT" },
                { "[::1:80", "[IPV6]:PORT" },
                { "[zz::1]:1", "IPv6" },
                { "[]:1", "IPv6" },
                { "[1.2.3.4]:1", "IPv6" },
                { "[localhost]:1", "IPv6" },
                { "[0000:0000:0000:0000:0000:0000:0000:0000:0]:1", "IPv6" },
                { "[%eth0]:1", "IPv6" },
                { "[zz::1%eth0]:1", "IPv6" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

START_TEST(test_parse_rejects_link_local_without_scope) {
        static const BadAddress bad[] = {
                /* Which interface? bind() would only say EINVAL. */
                { "[fe80::1]:9999", "link-local address needs a scope, e.g. [fe80::1%eth0]:9999" },
                { "line@[fe80::abcd]:1", "needs a scope" },
                { "[febf::1]:1", "needs a scope" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

START_TEST(test_parse_rejects_bad_scopes) {
        static const BadAddress bad[] = {
                { "[fe80::1%]:1", "scope" },
                { "[fe80::1%0]:1", "scope" },
                { "[fe80::1%2147483648]:1", "scope" },
                { "[fe80::1%99999999999999999999]:1", "scope" },
                { "[fe80::1%sixteen-chars-xx]:1", "scope" },
                { "[fe80::1%a/b]:1", "scope" },
                { "[fe80::1%a:b]:1", "scope" },
                { "[fe80::1%a%b]:1", "scope" },
                { "[fe80::1%e th]:1", "scope" },
                { "[fe80::1%e\tth]:1", "scope" },
                { "[fe80::1%e\x7fth]:1", "scope" },
                { "[fe80::1%\xc3\xa9]:1", "scope" },
                { "[fe80::1%.]:1", "scope" },
                { "[fe80::1%..]:1", "scope" },
                { "[fe80::1%eth0]", "[IPV6]:PORT" },
                { "[fe80::1%eth0]:", "port" },
                /* Only a link-local address means different things on different interfaces. */
                { "[::1%lo]:1", "link-local" },
                { "[2001:db8::1%eth0]:1", "link-local" },
                { "[::ffff:1.2.3.4%eth0]:1", "link-local" },
                { "[fec0::1%eth0]:1", "link-local" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

START_TEST(test_parse_rejects_bad_ipv4_and_host_names) {
        static const BadAddress bad[] = {
                { "999.1.1.1:1", "IPv4" }, { "1.2.3:1", "IPv4" }, { "1.2.3.4.5:1", "IPv4" },
                { "256.0.0.0:1", "IPv4" }, { "ho st:1", "host" }, { "a/b:1", "host" },
                { "-foo:1", "host" },      { ".foo:1", "host" },  { "foo!:1", "host" },
                { "h\xc3\xa9:1", "host" }, { "a\tb:1", "host" },  { "line@line@:1", "host" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

START_TEST(test_parse_rejects_bad_unix_paths) {
        static const BadAddress bad[] = {
                { "unix:", "empty" },
                { "unix:@", "empty" },
                { "line@unix:", "empty" },
                { "unix:relative", "absolute" },
                { "unix:./x.sock", "absolute" },
        };
        assert_bad(bad, ELEMENTSOF(bad));
}
END_TEST

static void assert_same(const ListenAddress *a, const ListenAddress *b, const char *text) {
        ck_assert_msg(a->mode == b->mode && a->proxy == b->proxy && a->kind == b->kind && a->port == b->port,
                      "'%s' changed", text);
        if (a->kind == ADDRESS_INET) {
                ck_assert_msg(a->ipv6 == b->ipv6, "'%s' changed family", text);
                ck_assert_str_eq(a->host, b->host);
                ck_assert_str_eq(a->scope, b->scope);
        }
        if (a->kind == ADDRESS_UNIX)
                ck_assert_str_eq(a->path, b->path);
        ck_assert(listen_address_equal(a, b));
}

START_TEST(test_format_round_trips_every_form) {
        static const char *const prefixes[] = {
                "", "line@", "oneshot@", "metrics@", "line+proxy@", "+proxy@"
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                for (size_t j = 0; j < ELEMENTSOF(prefixes); j++) {
                        char text[256], buf[ADDRESS_STRING_MAX], again[ADDRESS_STRING_MAX];
                        ListenAddress a, b;

                        (void)snprintf(text, sizeof text, "%s%s", prefixes[j], good[i].text);
                        ck_assert_int_eq(listen_address_parse(text, &a, NULL), 0);
                        listen_address_format(&a, buf, sizeof buf);
                        ck_assert_msg(listen_address_parse(buf, &b, NULL) == 0, "'%s' formatted as '%s'",
                                      text, buf);
                        assert_same(&a, &b, text);
                        /* Canonical: formatting is idempotent. */
                        ck_assert_str_eq(listen_address_format(&b, again, sizeof again), buf);
                }
}
END_TEST

START_TEST(test_format_of_longest_forms_is_not_truncated) {
        char text[300], buf[ADDRESS_STRING_MAX];
        ListenAddress a, b;

        memset(text, 'h', 255);
        memcpy(text + 255, ":65535", 7);
        ck_assert_int_eq(listen_address_parse(text, &a, NULL), 0);
        ck_assert_int_eq(listen_address_parse(listen_address_format(&a, buf, sizeof buf), &b, NULL), 0);
        assert_same(&a, &b, text);

        memcpy(text, "line@unix:/", 11);
        memset(text + 11, 'p', 106);
        text[11 + 106] = '\0';
        ck_assert_int_eq(listen_address_parse(text, &a, NULL), 0);
        ck_assert_int_eq(listen_address_parse(listen_address_format(&a, buf, sizeof buf), &b, NULL), 0);
        assert_same(&a, &b, text);
}
END_TEST

START_TEST(test_format_is_canonical) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "[::1]:9998", "oneshot@[::1]:9998" },
                { "line@[::1]:9998", "line@[::1]:9998" },
                { "9999", "oneshot@:9999" },
                { ":9999", "oneshot@:9999" },
                { "line@127.0.0.1:80", "line@127.0.0.1:80" },
                { "unix:/run/x", "oneshot@unix:/run/x" },
                { "line@unix:@name", "line@unix:@name" },
                { "[fe80::1%eth0]:9999", "oneshot@[fe80::1%eth0]:9999" },
                { "line@[fe80::1%3]:1", "line@[fe80::1%3]:1" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[ADDRESS_STRING_MAX];
                ListenAddress a;

                ck_assert_int_eq(listen_address_parse(cases[i].in, &a, NULL), 0);
                ck_assert_str_eq(listen_address_format(&a, buf, sizeof buf), cases[i].out);
        }
}
END_TEST

START_TEST(test_equal_tells_different_addresses_apart) {
        static const char *const texts[] = {
                ":1",      ":2",      "line@:1",      "1.2.3.4:1",      "[::1]:1",       "localhost:1",
                "unix:/x", "unix:@x", "line@unix:/x", "[fe80::1%lo]:1", "[fe80::1%1]:1", "[fe80::1%eth0]:1",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                for (size_t j = 0; j < ELEMENTSOF(texts); j++) {
                        ListenAddress a, b;

                        ck_assert_int_eq(listen_address_parse(texts[i], &a, NULL), 0);
                        ck_assert_int_eq(listen_address_parse(texts[j], &b, NULL), 0);
                        ck_assert_msg(listen_address_equal(&a, &b) == (i == j), "'%s' vs '%s'", texts[i],
                                      texts[j]);
                }
}
END_TEST

START_TEST(test_sockaddr_format_ipv4) {
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(40522) };
        char buf[ADDRESS_STRING_MAX];

        ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &in.sin_addr), 1);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in, sizeof in, buf, sizeof buf),
                         "127.0.0.1:40522");
}
END_TEST

START_TEST(test_sockaddr_format_ipv6_in_brackets) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(9999) };
        char buf[ADDRESS_STRING_MAX];

        ck_assert_int_eq(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf),
                         "[::1]:9999");

        ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::42", &in6.sin6_addr), 1);
        in6.sin6_port = htons(1);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf),
                         "[2001:db8::42]:1");
}
END_TEST

START_TEST(test_sockaddr_format_shows_ipv4_mapped_ipv6_as_ipv4) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
        char buf[ADDRESS_STRING_MAX];

        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr), 1);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf),
                         "10.1.2.3:80");
}
END_TEST

START_TEST(test_sockaddr_format_local_keeps_ipv4_mapped_ipv6) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
        char buf[ADDRESS_STRING_MAX];

        /* A listener the user bound to [::ffff:127.0.0.1] is not an IPv4 socket. */
        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr), 1);
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, NULL, buf, sizeof buf),
                         "[::ffff:127.0.0.1]:80");
        ck_assert_int_eq(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, NULL, buf, sizeof buf),
                         "[::1]:80");
}
END_TEST

START_TEST(test_sockaddr_format_local_shows_scope) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(9999), .sin6_scope_id = 7 };
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(1) };
        char buf[ADDRESS_STRING_MAX];

        ck_assert_int_eq(inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, "eth0", buf, sizeof buf),
                         "[fe80::1%eth0]:9999");
        /* No name for the index: the number. */
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, NULL, buf, sizeof buf),
                         "[fe80::1%7]:9999");
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, "", buf, sizeof buf),
                         "[fe80::1%7]:9999");
        /* No scope, no name, whatever the caller has. */
        in6.sin6_scope_id = 0;
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, "eth0", buf, sizeof buf),
                         "[fe80::1]:9999");
        /* Too short, or another family: as sockaddr_format(). */
        ck_assert_str_eq(
                sockaddr_format_local((struct sockaddr *)&in6, sizeof in6 - 1, "eth0", buf, sizeof buf),
                "unknown");
        ck_assert_int_eq(inet_pton(AF_INET, "10.0.0.1", &in.sin_addr), 1);
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in, sizeof in, "eth0", buf, sizeof buf),
                         "10.0.0.1:1");
}
END_TEST

START_TEST(test_sockaddr_format_local_longest_fits) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(65535) };
        char buf[ADDRESS_STRING_MAX];

        memset(&in6.sin6_addr, 0xfe, sizeof in6.sin6_addr);
        in6.sin6_scope_id = UINT32_MAX;
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, NULL, buf, sizeof buf),
                         "[fefe:fefe:fefe:fefe:fefe:fefe:fefe:fefe%4294967295]:65535");
        ck_assert_str_eq(sockaddr_format_local((struct sockaddr *)&in6, sizeof in6, "fifteen-chars-x", buf,
                                               sizeof buf),
                         "[fefe:fefe:fefe:fefe:fefe:fefe:fefe:fefe%fifteen-chars-x]:65535");
}
END_TEST

START_TEST(test_sockaddr_format_unix_path) {
        struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/run/x.sock" };
        size_t base = offsetof(struct sockaddr_un, sun_path);
        char buf[ADDRESS_STRING_MAX];

        /* The kernel reports the length with or without the NUL, or the whole struct. */
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 12), buf, sizeof buf),
                         "unix:/run/x.sock");
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 11), buf, sizeof buf),
                         "unix:/run/x.sock");
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, sizeof un, buf, sizeof buf),
                         "unix:/run/x.sock");
}
END_TEST

START_TEST(test_sockaddr_format_unix_path_filling_sun_path) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        char buf[ADDRESS_STRING_MAX], expected[ADDRESS_STRING_MAX];

        /* No NUL inside sun_path at all: never read past it. */
        memset(un.sun_path, 'p', sizeof un.sun_path);
        un.sun_path[0] = '/';
        (void)snprintf(expected, sizeof expected, "unix:%.*s", (int)sizeof un.sun_path, un.sun_path);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, sizeof un, buf, sizeof buf), expected);
}
END_TEST

START_TEST(test_sockaddr_format_abstract_unix) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        size_t base = offsetof(struct sockaddr_un, sun_path);
        char buf[ADDRESS_STRING_MAX];

        memcpy(un.sun_path, "\0name", 5);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 5), buf, sizeof buf),
                         "unix:@name");
}
END_TEST

START_TEST(test_sockaddr_format_abstract_unix_shows_printable_prefix_only) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        size_t base = offsetof(struct sockaddr_un, sun_path);
        char buf[ADDRESS_STRING_MAX];

        /* A client picks its own abstract name: it must not be able to put control bytes in a log line. */
        memcpy(un.sun_path, "\0ab\ncd", 6);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 6), buf, sizeof buf),
                         "unix:@ab");
        memcpy(un.sun_path, "\0ab\x1b[2Jcd", 9);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 9), buf, sizeof buf),
                         "unix:@ab");
        memcpy(un.sun_path, "\0ab\0cd", 6);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 6), buf, sizeof buf),
                         "unix:@ab");
}
END_TEST

START_TEST(test_sockaddr_format_unnamed_unix) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        size_t base = offsetof(struct sockaddr_un, sun_path);
        char buf[ADDRESS_STRING_MAX];

        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, (socklen_t)base, buf, sizeof buf), "unix");
}
END_TEST

START_TEST(test_sockaddr_format_short_length_and_small_buffer) {
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(40522) };
        char buf[8];

        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in, 1, buf, sizeof buf), "unknown");
        /* The family fits, the address does not (found by fuzz/fuzz-address.c). */
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in, sizeof in - 1, buf, sizeof buf), "unknown");

        ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &in.sin_addr), 1);
        memset(buf, 'X', sizeof buf);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&in, sizeof in, buf, 6), "127.0");
        ck_assert_int_eq(buf[6], 'X');
}
END_TEST

START_TEST(test_sockaddr_un_set_path) {
        struct sockaddr_un un;
        socklen_t len = 0;

        memset(&un, 0xaa, sizeof un);
        ck_assert_int_eq(sockaddr_un_set(&un, "/run/x.sock", &len), 0);
        ck_assert_int_eq(un.sun_family, AF_UNIX);
        ck_assert_str_eq(un.sun_path, "/run/x.sock");
        /* bind() gets the path with its NUL. */
        ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock") + 1);
}
END_TEST

START_TEST(test_sockaddr_un_set_abstract) {
        struct sockaddr_un un;
        socklen_t len = 0;
        char buf[ADDRESS_STRING_MAX];

        memset(&un, 0xaa, sizeof un);
        ck_assert_int_eq(sockaddr_un_set(&un, "@name", &len), 0);
        ck_assert_int_eq(un.sun_family, AF_UNIX);
        ck_assert_mem_eq(un.sun_path, "\0name", 5);
        /* The abstract name is exactly the bytes after the leading NUL: no trailing NUL counted. */
        ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 5);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&un, len, buf, sizeof buf), "unix:@name");
}
END_TEST

START_TEST(test_sockaddr_un_set_rejects_empty_and_too_long) {
        struct sockaddr_un un;
        socklen_t len;
        char path[128];

        ck_assert_int_eq(sockaddr_un_set(&un, "", &len), -EINVAL);

        memset(path, 'p', sizeof path);
        path[0] = '/';
        path[107] = '\0';
        ck_assert_int_eq(sockaddr_un_set(&un, path, &len), 0);
        ck_assert_uint_eq(len, sizeof un);
        ck_assert_int_eq(un.sun_path[107], '\0');

        path[107] = 'p';
        path[108] = '\0';
        ck_assert_int_eq(sockaddr_un_set(&un, path, &len), -EINVAL);
}
END_TEST

/* What sockaddr_parse() makes of a printed form must print as the same string. */
static void assert_sockaddr_round_trip(const char *text, int family, socklen_t len) {
        struct sockaddr_storage ss;
        char buf[ADDRESS_STRING_MAX];
        socklen_t n = 0;

        memset(&ss, 0xaa, sizeof ss);
        ck_assert_msg(sockaddr_parse(text, &ss, &n) == 0, "'%s' refused", text);
        ck_assert_int_eq(ss.ss_family, family);
        ck_assert_uint_eq(n, len);
        ck_assert_str_eq(sockaddr_format((struct sockaddr *)&ss, n, buf, sizeof buf), text);
        /* Zero beyond the length, so two equal addresses compare equal byte by byte. */
        for (size_t i = n; i < sizeof ss; i++)
                ck_assert_int_eq(((const uint8_t *)&ss)[i], 0);
}

START_TEST(test_sockaddr_parse_takes_every_printed_form) {
        size_t base = offsetof(struct sockaddr_un, sun_path);

        assert_sockaddr_round_trip("127.0.0.1:40522", AF_INET, sizeof(struct sockaddr_in));
        assert_sockaddr_round_trip("0.0.0.0:0", AF_INET, sizeof(struct sockaddr_in));
        assert_sockaddr_round_trip("255.255.255.255:65535", AF_INET, sizeof(struct sockaddr_in));
        assert_sockaddr_round_trip("[::1]:9999", AF_INET6, sizeof(struct sockaddr_in6));
        assert_sockaddr_round_trip("[::]:0", AF_INET6, sizeof(struct sockaddr_in6));
        assert_sockaddr_round_trip("[2001:db8::1:0:0:1]:65535", AF_INET6, sizeof(struct sockaddr_in6));
        assert_sockaddr_round_trip("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", AF_INET6,
                                   sizeof(struct sockaddr_in6));
        assert_sockaddr_round_trip("unix", AF_UNIX, (socklen_t)base);
        assert_sockaddr_round_trip("unix:/run/x.sock", AF_UNIX, (socklen_t)(base + 12));
        assert_sockaddr_round_trip("unix:relative path", AF_UNIX, (socklen_t)(base + 14));
        assert_sockaddr_round_trip("unix:@name", AF_UNIX, (socklen_t)(base + 5));
        /* An abstract name of no printable byte is shown (and kept) as an empty one. */
        assert_sockaddr_round_trip("unix:@", AF_UNIX, (socklen_t)(base + 1));
}
END_TEST

START_TEST(test_sockaddr_parse_takes_longest_unix_names) {
        char text[ADDRESS_STRING_MAX];
        size_t base = offsetof(struct sockaddr_un, sun_path);
        size_t size = sizeof(((struct sockaddr_un *)0)->sun_path);
        struct sockaddr_storage ss;
        socklen_t n;

        /* A path filling sun_path has no NUL; an abstract name fills it after its NUL. */
        (void)snprintf(text, sizeof text, "unix:/%0*d", (int)size - 1, 0);
        assert_sockaddr_round_trip(text, AF_UNIX, (socklen_t)(base + size));
        (void)snprintf(text, sizeof text, "unix:@%0*d", (int)size - 1, 0);
        assert_sockaddr_round_trip(text, AF_UNIX, (socklen_t)(base + size));

        (void)snprintf(text, sizeof text, "unix:/%0*d", (int)size, 0);
        ck_assert_int_eq(sockaddr_parse(text, &ss, &n), -EINVAL);
        (void)snprintf(text, sizeof text, "unix:@%0*d", (int)size, 0);
        ck_assert_int_eq(sockaddr_parse(text, &ss, &n), -EINVAL);
}
END_TEST

START_TEST(test_sockaddr_parse_takes_what_sockaddr_format_prints) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(7) };
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        size_t base = offsetof(struct sockaddr_un, sun_path);
        char buf[ADDRESS_STRING_MAX];

        /* An IPv4-mapped peer is shown, and so kept, as IPv4. */
        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.1", &in6.sin6_addr), 1);
        sockaddr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf);
        assert_sockaddr_round_trip(buf, AF_INET, sizeof(struct sockaddr_in));

        /* Names with unprintable bytes are shown, and so kept, up to the first of them. */
        memcpy(un.sun_path, "/ab\ncd", 6);
        sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 6), buf, sizeof buf);
        assert_sockaddr_round_trip(buf, AF_UNIX, (socklen_t)(base + 4));
        memcpy(un.sun_path, "\0\x01x", 3);
        sockaddr_format((struct sockaddr *)&un, (socklen_t)(base + 3), buf, sizeof buf);
        assert_sockaddr_round_trip(buf, AF_UNIX, (socklen_t)(base + 1));
}
END_TEST

START_TEST(test_sockaddr_parse_refuses_other_spellings) {
        static const char *const bad[] = {
                "",
                "unknown",
                "family-10",
                "unix:",
                "unix:@x\x01",
                "unix:/a\n",
                "unixx",
                "unix/x",
                "127.0.0.1",
                "127.0.0.1:",
                "127.0.0.1:01",
                "127.0.0.1:+1",
                "127.0.0.1:65536",
                "127.0.0.1: 1",
                " 127.0.0.1:1",
                "127.0.0.1:1 ",
                "127.1:1",
                "01.2.3.4:1",
                "1.2.3.4.5:1",
                ":1",
                "localhost:1",
                "[::1]",
                "[::1]:",
                "[::1]:01",
                "::1:9999",
                "[]:1",
                "[::1:1",
                "[::0]:1",
                "[0::1]:1",
                "[::FFFF]:1",
                "[::ffff:1.2.3.4]:1",
                "[fe80::1%lo]:1",
                "[::1]x:1",
                "[1.2.3.4]:1",
        };
        struct sockaddr_storage ss;
        socklen_t n;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(sockaddr_parse(bad[i], &ss, &n) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_int_eq(sockaddr_parse(NULL, &ss, &n), -EINVAL);
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("address");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_accepts_every_address_form);
        tcase_add_test(tc, test_parse_accepts_mode_prefix_on_every_form);
        tcase_add_test(tc, test_listen_mode_parse_and_format);
        tcase_add_test(tc, test_parse_accepts_unix_path_of_107_bytes_not_108);
        tcase_add_test(tc, test_parse_accepts_host_of_255_bytes_not_256);
        tcase_add_test(tc, test_parse_rejects_empty_address);
        tcase_add_test(tc, test_parse_rejects_unknown_mode);
        tcase_add_test(tc, test_parse_rejects_missing_or_bad_port);
        tcase_add_test(tc, test_parse_rejects_bad_ipv6_forms);
        tcase_add_test(tc, test_parse_rejects_link_local_without_scope);
        tcase_add_test(tc, test_parse_rejects_bad_scopes);
        tcase_add_test(tc, test_parse_rejects_bad_ipv4_and_host_names);
        tcase_add_test(tc, test_parse_rejects_bad_unix_paths);
        suite_add_tcase(s, tc);

        tc = tcase_create("format");
        tcase_add_test(tc, test_format_round_trips_every_form);
        tcase_add_test(tc, test_format_of_longest_forms_is_not_truncated);
        tcase_add_test(tc, test_format_is_canonical);
        tcase_add_test(tc, test_equal_tells_different_addresses_apart);
        suite_add_tcase(s, tc);

        tc = tcase_create("sockaddr");
        tcase_add_test(tc, test_sockaddr_format_ipv4);
        tcase_add_test(tc, test_sockaddr_format_ipv6_in_brackets);
        tcase_add_test(tc, test_sockaddr_format_shows_ipv4_mapped_ipv6_as_ipv4);
        tcase_add_test(tc, test_sockaddr_format_local_keeps_ipv4_mapped_ipv6);
        tcase_add_test(tc, test_sockaddr_format_local_shows_scope);
        tcase_add_test(tc, test_sockaddr_format_local_longest_fits);
        tcase_add_test(tc, test_sockaddr_format_unix_path);
        tcase_add_test(tc, test_sockaddr_format_unix_path_filling_sun_path);
        tcase_add_test(tc, test_sockaddr_format_abstract_unix);
        tcase_add_test(tc, test_sockaddr_format_abstract_unix_shows_printable_prefix_only);
        tcase_add_test(tc, test_sockaddr_format_unnamed_unix);
        tcase_add_test(tc, test_sockaddr_format_short_length_and_small_buffer);
        tcase_add_test(tc, test_sockaddr_un_set_path);
        tcase_add_test(tc, test_sockaddr_un_set_abstract);
        tcase_add_test(tc, test_sockaddr_un_set_rejects_empty_and_too_long);
        tcase_add_test(tc, test_sockaddr_parse_takes_every_printed_form);
        tcase_add_test(tc, test_sockaddr_parse_takes_longest_unix_names);
        tcase_add_test(tc, test_sockaddr_parse_takes_what_sockaddr_format_prints);
        tcase_add_test(tc, test_sockaddr_parse_refuses_other_spellings);
        suite_add_tcase(s, tc);

        return s;
}
