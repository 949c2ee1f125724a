/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "listener-seal.h"
#include "macro.h"

/* The filter sees a segment from its TCP header on: byte 13 holds the flags. */
#define TCP_FLAGS_OFFSET 13
#define TCP_FLAG_SYN     0x02
#define TCP_FLAG_ACK     0x10

static int seal_tcp(int fd) {
        static const struct sock_filter drop_syn[] = {
                BPF_STMT(BPF_LD | BPF_B | BPF_ABS, TCP_FLAGS_OFFSET),
                BPF_STMT(BPF_ALU | BPF_AND | BPF_K, TCP_FLAG_SYN | TCP_FLAG_ACK),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TCP_FLAG_SYN, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* keep all of it */
                BPF_STMT(BPF_RET | BPF_K, 0),           /* drop */
        };
        /* Static: no uninitialised padding goes to the kernel. */
        static const struct sock_fprog prog = {
                .len = ELEMENTSOF(drop_syn),
                .filter = (struct sock_filter *)drop_syn,
        };

        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
                return -errno;
        return 0;
}

int listener_seal(const Listener *l) {
        if (l->fd < 0 || l->activated || l->connected)
                return -EBADF;
        switch (l->family) {
        case AF_INET:
        case AF_INET6:
                return seal_tcp(l->fd);
        case AF_UNIX:
                if (shutdown(l->fd, SHUT_RD) < 0)
                        return -errno;
                return 0;
        default:
                return -EAFNOSUPPORT;
        }
}
