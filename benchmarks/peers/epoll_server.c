/*
 * epoll_server.c: the greeting protocol in plain C, one thread, one epoll
 * loop; the benchmarks' ceiling (what the kernel and loopback allow).
 *
 * TCP (seed framing): sends "Welcome!"; each read is a message answered with
 * "Hello, M!"; a read holding line feeds is one message per line, each reply
 * keeping its line's ending ("M\n" -> "Hello, M!\n"); "exit" closes after
 * every earlier reply is sent.  UDP on the same port: datagram M -> "Hello, M!"
 * (a trailing "\n" or "\r\n" goes after the "!").  No limits or guards: this
 * is a benchmark peer for loopback, not a server to expose.
 *
 * Build: cc -O2 -o epoll_server epoll_server.c
 * Run:   epoll_server --port PORT [--host 127.0.0.1] [--backlog 4096]
 *        (port 0 picks one; "listening PORT" is printed when ready)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int fd;
    int closing;      /* "exit" seen: close once out is empty */
    char *out;
    size_t out_len, out_cap;
    unsigned events;  /* what epoll watches for this fd */
} conn;

static conn **conns;
static size_t nconns_max;
static int ep;

static void die(const char *what) {
    fprintf(stderr, "epoll_server: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void append(conn *c, const char *data, size_t len) {
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 256;
        while (cap < c->out_len + len) cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out) die("realloc");
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void drop(conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->out);
    free(c);
}

/* Send what is owed; close if asked and done.  Returns 0 if c was dropped. */
static int flush(conn *c) {
    size_t sent = 0;
    while (sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + sent, c->out_len - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            drop(c);
            return 0;
        }
        sent += (size_t)n;
    }
    if (sent) {
        memmove(c->out, c->out + sent, c->out_len - sent);
        c->out_len -= sent;
    }
    if (c->out_len == 0 && c->closing) {
        drop(c);
        return 0;
    }
    unsigned want = (c->out_len ? EPOLLOUT : 0) | (c->closing ? 0 : EPOLLIN);
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->events = want;
    }
    return 1;
}

static void answer(conn *c, const char *msg, size_t len, const char *ending, size_t elen) {
    append(c, "Hello, ", 7);
    append(c, msg, len);
    append(c, "!", 1);
    append(c, ending, elen);
}

/* One read: one message, or one message per line (see the header). */
static void on_read(conn *c, const char *data, size_t n) {
    size_t start = 0;
    while (start < n && !c->closing) {
        const char *nl = memchr(data + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - data) : n;
        size_t len = end - start;
        const char *ending = "";
        size_t elen = 0;
        if (nl) {
            if (len && data[end - 1] == '\r') { len--; ending = "\r\n"; elen = 2; }
            else { ending = "\n"; elen = 1; }
        }
        if (len == 4 && memcmp(data + start, "exit", 4) == 0) c->closing = 1;
        else answer(c, data + start, len, ending, elen);
        start = nl ? end + 1 : n;
    }
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return; /* EAGAIN, or EMFILE: try again on the next event */
        }
        if ((size_t)fd >= nconns_max) { close(fd); continue; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        conns[fd] = c;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
        append(c, "Welcome!", 8);
        flush(c);
    }
}

static void serve_datagrams(int udp) {
    char buf[4096 + 16], out[4096 + 32];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(udp, buf, 4096 + 3, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0) return;
        size_t len = (size_t)n, elen = 0;
        const char *ending = "";
        if (len && buf[len - 1] == '\n') {
            if (len > 1 && buf[len - 2] == '\r') { len -= 2; ending = "\r\n"; elen = 2; }
            else { len -= 1; ending = "\n"; elen = 1; }
        }
        if (len > 4096) continue;
        memcpy(out, "Hello, ", 7);
        memcpy(out + 7, buf, len);
        out[7 + len] = '!';
        memcpy(out + 8 + len, ending, elen);
        sendto(udp, out, 8 + len + elen, 0, (struct sockaddr *)&from, fromlen);
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, backlog = 4096;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backlog")) backlog = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: epoll_server --port PORT [--host H] [--backlog N]\n"); return 2; }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: epoll_server --port PORT [--host H] [--backlog N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    nconns_max = rl.rlim_cur > 1048576 ? 1048576 : (size_t)rl.rlim_cur;
    conns = calloc(nconns_max, sizeof *conns);
    if (!conns) die("calloc");

    struct sockaddr_storage addr = {0};
    socklen_t addrlen;
    int family;
    struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        family = AF_INET; sin->sin_family = AF_INET; sin->sin_port = htons(port);
        addrlen = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        family = AF_INET6; sin6->sin6_family = AF_INET6; sin6->sin6_port = htons(port);
        addrlen = sizeof *sin6;
    } else {
        fprintf(stderr, "epoll_server: bad host %s\n", host);
        return 2;
    }
    int one = 1;
    int listener = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0) die("socket");
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&addr, addrlen) < 0) die("bind tcp");
    if (listen(listener, backlog) < 0) die("listen");
    socklen_t boundlen = addrlen;
    if (getsockname(listener, (struct sockaddr *)&addr, &boundlen) < 0) die("getsockname");
    port = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
    int udp = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp < 0) die("socket");
    if (bind(udp, (struct sockaddr *)&addr, addrlen) < 0) die("bind udp");
    printf("listening %d\n", port); /* port 0 picks one, the same for TCP and UDP */
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    ev.data.fd = udp;
    epoll_ctl(ep, EPOLL_CTL_ADD, udp, &ev);

    struct epoll_event events[1024];
    static char buf[65536];
    for (;;) {
        int n = epoll_wait(ep, events, 1024, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            int fd = events[k].data.fd;
            if (fd == listener) { accept_all(listener); continue; }
            if (fd == udp) { serve_datagrams(udp); continue; }
            conn *c = conns[fd];
            if (!c) continue;
            if (events[k].events & EPOLLOUT) {
                if (!flush(c)) continue;
            }
            if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->closing) {
                    if (events[k].events & (EPOLLHUP | EPOLLERR)) drop(c);
                    continue;
                }
                ssize_t r = read(fd, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { drop(c); continue; }
                if (r < 0) continue;
                on_read(c, buf, (size_t)r);
                flush(c);
            }
        }
    }
}
