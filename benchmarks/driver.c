/*
 * driver.c: the load generator of the twisted-net benchmarks.
 *
 * One process, a few threads (default one), each an epoll loop over many
 * non-blocking sockets.  Loopback only: it refuses any host that is not
 * 127.0.0.0/8 or ::1.  Every run is bounded by --duration and --count.
 *
 * Scenarios (seed framing unless --framing line):
 *   lockstep  --connections N: each connection reads the greeting, then sends
 *             a name, waits for "Hello, name!", and repeats.  Connections are
 *             all established (and greeted) before the clock starts.
 *   pipeline  --connections N --depth D: D line-terminated messages "name\n"
 *             in flight per connection; replies are counted by '\n'.
 *   churn     --connections N concurrent sessions of: connect, greeting, one
 *             message, reply, "exit", wait for the server to close, close.
 *             One session counts as one message; latency is the session's.
 *   udp       --connections N connected UDP sockets in lockstep; a reply not
 *             seen within --udp-timeout is counted as an error and resent.
 *
 * Output: one JSON object on stdout (cpu_s: the driver's own CPU time while
 * measuring).  With --progress, JSON lines on stderr: {"event": "start"} when
 * the clock starts, {"elapsed": s, "messages": n} every second, and
 * {"event": "stop"} when it stops (before the connections are closed).
 *
 * Build: cc -O2 -pthread -o driver driver.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum scenario { LOCKSTEP, PIPELINE, CHURN, UDP };
enum state { S_IDLE, S_CONNECTING, S_GREETING, S_RUNNING, S_EXITING, S_DEAD };

#define MAX_DEPTH 256
#define LINEAR_US 2048
#define SUB_BITS 6
#define NBUCKETS (LINEAR_US + 40 * (1 << SUB_BITS))

typedef struct {
    uint64_t counts[NBUCKETS];
    uint64_t total;
    uint64_t max_ns;
    double sum_us;
} histogram;

static int bucket_of(uint64_t ns) {
    uint64_t us = ns / 1000;
    if (us < LINEAR_US) return (int)us;
    int e = 63 - __builtin_clzll(us); /* >= 11 */
    int sub = (int)((us >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1));
    int idx = LINEAR_US + (e - 11) * (1 << SUB_BITS) + sub;
    return idx < NBUCKETS ? idx : NBUCKETS - 1;
}

static double bucket_value_us(int idx) {
    if (idx < LINEAR_US) return idx + 0.5;
    int rel = idx - LINEAR_US;
    int e = rel / (1 << SUB_BITS) + 11;
    int sub = rel % (1 << SUB_BITS);
    double low = (double)(1ULL << e) + (double)sub * (double)(1ULL << (e - SUB_BITS));
    return low + (double)(1ULL << (e - SUB_BITS)) / 2.0;
}

static void record(histogram *h, uint64_t ns) {
    h->counts[bucket_of(ns)]++;
    h->total++;
    h->sum_us += ns / 1000.0;
    if (ns > h->max_ns) h->max_ns = ns;
}

static double percentile(const histogram *h, double p) {
    if (h->total == 0) return 0.0;
    uint64_t rank = (uint64_t)(p * (double)h->total);
    if (rank >= h->total) rank = h->total - 1;
    uint64_t seen = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen > rank) return bucket_value_us(i);
    }
    return bucket_value_us(NBUCKETS - 1);
}

typedef struct {
    int fd;
    int state;
    size_t got;              /* bytes of the expected item seen so far */
    uint64_t started;        /* send time (lockstep, udp) or session start (churn) */
    uint64_t sent[MAX_DEPTH];/* pipeline: send times, a ring */
    int head, inflight;
    char *out;               /* unsent bytes */
    size_t out_len, out_cap;
    int want_out;
} conn;

struct errors {
    uint64_t connect, reset, protocol, closed, timeout;
};

typedef struct {
    int id;
    int nconns;
    conn *conns;
    int ep;
    histogram hist;
    struct errors err;
    uint64_t messages;
    int established;
    pthread_t thread;
} worker;

/* Configuration. */
static enum scenario scenario = LOCKSTEP;
static struct sockaddr_storage server;
static socklen_t server_len;
static int connections = 50;
static int nthreads = 1;
static double duration = 3.0;
static uint64_t max_count = 0;
static int depth = 16;
static const char *name = "bench";
static int line_framing = 0;
static int progress = 0;
static double setup_timeout = 60.0;
static double udp_timeout = 0.5;
static int connect_burst = 256;

/* Derived protocol bytes. */
static char greeting[16];
static size_t greeting_len;
static char message[512];
static size_t message_len;
static char expected[600];
static size_t expected_len;
static const char exit_message[] = "exit";

static pthread_barrier_t barrier;
static atomic_uint_fast64_t total_messages;
static atomic_int stopping;
static uint64_t start_ns, end_ns;
static struct rusage usage_start;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "driver: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void usage(void) {
    fprintf(stderr,
            "usage: driver --port PORT [--host 127.0.0.1] [--scenario lockstep|pipeline|churn|udp]\n"
            "              [--connections N] [--duration S] [--count N] [--depth D]\n"
            "              [--message NAME] [--framing seed|line] [--threads T] [--progress]\n"
            "              [--setup-timeout S] [--udp-timeout S] [--connect-burst N]\n");
    exit(2);
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- buffered output ------------------------------------------------- */

static void conn_set_events(worker *w, conn *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Write what is pending plus (data, len); keep the rest.  -1 on error. */
static int conn_send(worker *w, conn *c, const char *data, size_t len) {
    if (scenario == UDP) { /* a lost datagram is caught by the reply timeout */
        if (send(c->fd, data, len, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) return -1;
        return 0;
    }
    if (len) {
        if (c->out_len + len > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 1024;
            while (cap < c->out_len + len) cap *= 2;
            c->out = realloc(c->out, cap);
            if (!c->out) die("realloc");
            c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
    }
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            return -1;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    conn_set_events(w, c, c->out_len > 0);
    return 0;
}

/* ---- connection life cycle ------------------------------------------- */

static void conn_close(worker *w, conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = S_DEAD;
    c->out_len = 0;
    c->got = 0;
    c->inflight = 0;
    c->head = 0;
    c->want_out = 0;
}

static int conn_open(worker *w, conn *c) {
    int type = (scenario == UDP) ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(server.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        w->err.connect++;
        c->state = S_DEAD;
        return -1;
    }
    if (type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->fd = fd;
    c->got = 0;
    c->out_len = 0;
    c->inflight = 0;
    c->head = 0;
    c->want_out = 1;
    c->started = now_ns();
    int rc = connect(fd, (struct sockaddr *)&server, server_len);
    if (rc < 0 && errno != EINPROGRESS) {
        w->err.connect++;
        close(fd);
        c->fd = -1;
        c->state = S_DEAD;
        return -1;
    }
    c->state = (type == SOCK_DGRAM) ? S_RUNNING : S_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | (type == SOCK_STREAM ? EPOLLOUT : 0),
                             .data.ptr = c};
    c->want_out = type == SOCK_STREAM;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    return 0;
}

static int measuring(void) { return !atomic_load(&stopping) && start_ns != 0; }

static void count_message(worker *w, uint64_t latency) {
    record(&w->hist, latency);
    w->messages++;
    uint64_t total = atomic_fetch_add(&total_messages, 1) + 1;
    if (max_count && total >= max_count) atomic_store(&stopping, 1);
}

/* Send the next unit of work on a greeted connection. */
static int conn_start_work(worker *w, conn *c) {
    c->state = S_RUNNING;
    c->got = 0;
    if (scenario == PIPELINE) {
        char burst[MAX_DEPTH * 520];
        size_t len = 0;
        uint64_t t = now_ns();
        for (int i = 0; i < depth; i++) {
            memcpy(burst + len, message, message_len);
            len += message_len;
            c->sent[(c->head + c->inflight) % MAX_DEPTH] = t;
            c->inflight++;
        }
        return conn_send(w, c, burst, len);
    }
    if (scenario != CHURN) c->started = now_ns(); /* churn: the session's start */
    return conn_send(w, c, message, message_len);
}

static void churn_restart(worker *w, conn *c) {
    conn_close(w, c);
    if (!atomic_load(&stopping)) conn_open(w, c);
}

/* Failure on a connection: count it; churn opens a new session. */
static void conn_fail(worker *w, conn *c, uint64_t *counter) {
    if (measuring() || start_ns == 0) (*counter)++;
    if (scenario == CHURN) churn_restart(w, c);
    else conn_close(w, c);
}

/* Bytes arrived on a TCP connection. */
static void on_stream_data(worker *w, conn *c, const char *buf, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (c->state == S_GREETING) {
            size_t take = greeting_len - c->got;
            if (take > n - i) take = n - i;
            if (memcmp(buf + i, greeting + c->got, take) != 0) {
                conn_fail(w, c, &w->err.protocol);
                return;
            }
            c->got += take;
            i += take;
            if (c->got == greeting_len) {
                c->got = 0;
                if (scenario == CHURN) {
                    if (conn_start_work(w, c) < 0) { conn_fail(w, c, &w->err.reset); return; }
                } else {
                    c->state = S_RUNNING; /* wait for the barrier, then start */
                    w->established++;
                    if (start_ns) {
                        if (conn_start_work(w, c) < 0) { conn_fail(w, c, &w->err.reset); return; }
                    }
                }
            }
        } else if (c->state == S_RUNNING && scenario == PIPELINE) {
            const char *end = buf + n;
            const char *p = buf + i;
            int replies = 0;
            uint64_t t = now_ns();
            while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
                p++;
                if (c->inflight == 0) { conn_fail(w, c, &w->err.protocol); return; }
                uint64_t sent = c->sent[c->head];
                c->head = (c->head + 1) % MAX_DEPTH;
                c->inflight--;
                replies++;
                if (measuring()) count_message(w, t - sent);
            }
            if (!atomic_load(&stopping) && replies) {
                char burst[MAX_DEPTH * 520];
                size_t len = 0;
                for (int k = 0; k < replies; k++) {
                    memcpy(burst + len, message, message_len);
                    len += message_len;
                    c->sent[(c->head + c->inflight) % MAX_DEPTH] = t;
                    c->inflight++;
                }
                if (conn_send(w, c, burst, len) < 0) { conn_fail(w, c, &w->err.reset); return; }
            }
            return;
        } else if (c->state == S_RUNNING) {
            size_t take = expected_len - c->got;
            if (take > n - i) take = n - i;
            if (memcmp(buf + i, expected + c->got, take) != 0) {
                conn_fail(w, c, &w->err.protocol);
                return;
            }
            c->got += take;
            i += take;
            if (c->got == expected_len) {
                uint64_t t = now_ns();
                c->got = 0;
                if (scenario == CHURN) {
                    c->state = S_EXITING;
                    if (conn_send(w, c, exit_message, sizeof exit_message - 1) < 0) {
                        conn_fail(w, c, &w->err.reset);
                        return;
                    }
                } else {
                    if (measuring()) count_message(w, t - c->started);
                    if (atomic_load(&stopping)) return;
                    c->started = t;
                    if (conn_send(w, c, message, message_len) < 0) {
                        conn_fail(w, c, &w->err.reset);
                        return;
                    }
                }
            }
        } else if (c->state == S_EXITING) {
            conn_fail(w, c, &w->err.protocol); /* nothing is owed after exit */
            return;
        } else {
            return;
        }
    }
}

static void on_stream_event(worker *w, conn *c, uint32_t events) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) { conn_fail(w, c, &w->err.connect); return; }
        if (!(events & (EPOLLOUT | EPOLLIN))) return;
        c->state = S_GREETING;
        c->got = 0;
        conn_set_events(w, c, 0);
    }
    if (events & EPOLLOUT && c->out_len) {
        if (conn_send(w, c, NULL, 0) < 0) { conn_fail(w, c, &w->err.reset); return; }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        char buf[65536];
        for (;;) {
            ssize_t n = read(c->fd, buf, sizeof buf);
            if (n > 0) {
                int fd = c->fd;
                on_stream_data(w, c, buf, (size_t)n);
                if (c->fd != fd || (size_t)n < sizeof buf) return;
                continue;
            }
            if (n == 0) {
                if (c->state == S_EXITING) {
                    uint64_t t = now_ns();
                    if (measuring()) count_message(w, t - c->started);
                    churn_restart(w, c);
                } else {
                    conn_fail(w, c, &w->err.closed);
                }
                return;
            }
            if (errno == EAGAIN || errno == EINTR) return;
            conn_fail(w, c, &w->err.reset);
            return;
        }
    }
}

static void on_datagram_event(worker *w, conn *c) {
    char buf[2048];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            if (measuring()) w->err.reset++; /* e.g. ECONNREFUSED */
            return;
        }
        uint64_t t = now_ns();
        if ((size_t)n != expected_len || memcmp(buf, expected, expected_len) != 0) {
            if (measuring()) w->err.protocol++;
            continue;
        }
        if (measuring()) count_message(w, t - c->started);
        if (atomic_load(&stopping)) return;
        c->started = t;
        if (conn_send(w, c, message, message_len) < 0 && measuring()) w->err.reset++;
    }
}

static void check_udp_timeouts(worker *w, uint64_t t) {
    uint64_t limit = (uint64_t)(udp_timeout * 1e9);
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->state == S_RUNNING && t - c->started > limit) {
            if (measuring()) w->err.timeout++;
            c->started = t;
            conn_send(w, c, message, message_len);
        }
    }
}

/* ---- the worker thread -------------------------------------------------- */

static void *run_worker(void *arg) {
    worker *w = arg;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) die("epoll_create1");
    struct epoll_event events[1024];

    /* Setup: establish (and greet) every connection before the clock. */
    if (scenario == LOCKSTEP || scenario == PIPELINE) {
        int opened = 0;
        uint64_t deadline = now_ns() + (uint64_t)(setup_timeout * 1e9);
        for (;;) {
            int pending = 0;
            for (int i = 0; i < opened; i++) {
                int s = w->conns[i].state;
                if (s == S_CONNECTING || s == S_GREETING) pending++;
            }
            while (opened < w->nconns && pending < connect_burst) {
                conn_open(w, &w->conns[opened++]);
                pending++;
            }
            if (opened == w->nconns && pending == 0) break;
            if (now_ns() > deadline) break;
            int n = epoll_wait(w->ep, events, 1024, 50);
            for (int k = 0; k < n; k++) on_stream_event(w, events[k].data.ptr, events[k].events);
        }
        /* Whatever is still not greeted does not take part. */
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            if (c->state == S_CONNECTING || c->state == S_GREETING) {
                w->err.connect++;
                conn_close(w, c);
            }
        }
    }
    pthread_barrier_wait(&barrier);
    if (w->id == 0) {
        getrusage(RUSAGE_SELF, &usage_start);
        start_ns = now_ns();
        end_ns = start_ns + (uint64_t)(duration * 1e9);
        if (progress) fprintf(stderr, "{\"event\": \"start\"}\n");
    }
    pthread_barrier_wait(&barrier);

    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (scenario == CHURN) {
            conn_open(w, c);
        } else if (scenario == UDP) {
            if (conn_open(w, c) == 0) {
                w->established++;
                conn_start_work(w, c);
            }
        } else if (c->state == S_RUNNING) {
            if (conn_start_work(w, c) < 0) conn_fail(w, c, &w->err.reset);
        }
    }

    uint64_t next_progress = start_ns + 1000000000ULL;
    uint64_t next_check = start_ns + 10000000ULL;
    while (!atomic_load(&stopping)) {
        int n = epoll_wait(w->ep, events, 1024, 10);
        for (int k = 0; k < n; k++) {
            conn *c = events[k].data.ptr;
            if (scenario == UDP) on_datagram_event(w, c);
            else on_stream_event(w, c, events[k].events);
        }
        uint64_t t = now_ns();
        if (t >= end_ns) atomic_store(&stopping, 1);
        if (t >= next_check) {
            if (scenario == UDP) check_udp_timeouts(w, t);
            if (scenario == CHURN) /* a slot whose connect() failed at once tries again */
                for (int i = 0; i < w->nconns && !atomic_load(&stopping); i++)
                    if (w->conns[i].state == S_DEAD) conn_open(w, &w->conns[i]);
            next_check = t + 10000000ULL;
        }
        if (progress && w->id == 0 && t >= next_progress) {
            fprintf(stderr, "{\"elapsed\": %.3f, \"messages\": %llu}\n",
                    (t - start_ns) / 1e9, (unsigned long long)atomic_load(&total_messages));
            next_progress += 1000000000ULL;
        }
    }
    return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static int is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&server;
        sin->sin_family = AF_INET;
        sin->sin_addr = a4;
        server_len = sizeof *sin;
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&server;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = a6;
        server_len = sizeof *sin6;
        return IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--progress")) { progress = 1; continue; }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--connections")) connections = atoi(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--count")) max_count = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--depth")) depth = atoi(v);
        else if (!strcmp(a, "--message")) name = v;
        else if (!strcmp(a, "--threads")) nthreads = atoi(v);
        else if (!strcmp(a, "--setup-timeout")) setup_timeout = atof(v);
        else if (!strcmp(a, "--udp-timeout")) udp_timeout = atof(v);
        else if (!strcmp(a, "--connect-burst")) connect_burst = atoi(v);
        else if (!strcmp(a, "--framing")) {
            if (!strcmp(v, "seed")) line_framing = 0;
            else if (!strcmp(v, "line")) line_framing = 1;
            else usage();
        } else if (!strcmp(a, "--scenario")) {
            if (!strcmp(v, "lockstep")) scenario = LOCKSTEP;
            else if (!strcmp(v, "pipeline")) scenario = PIPELINE;
            else if (!strcmp(v, "churn")) scenario = CHURN;
            else if (!strcmp(v, "udp")) scenario = UDP;
            else usage();
        } else usage();
    }
    if (port <= 0 || port > 65535 || connections < 1 || nthreads < 1 || depth < 1 ||
        depth > MAX_DEPTH || duration <= 0 || duration > 3600 || strlen(name) > 500 ||
        strlen(name) == 0 || connect_burst < 1)
        usage();
    if (!is_loopback(host)) {
        fprintf(stderr, "driver: %s is not a loopback address; refusing\n", host);
        return 2;
    }
    if (server.ss_family == AF_INET) ((struct sockaddr_in *)&server)->sin_port = htons(port);
    else ((struct sockaddr_in6 *)&server)->sin6_port = htons(port);
    if (nthreads > connections) nthreads = connections;
    raise_nofile();

    /* The bytes of this run. */
    const char *greet = line_framing ? "Welcome!\r\n" : "Welcome!";
    strcpy(greeting, greet);
    greeting_len = strlen(greeting);
    const char *ending = "";
    const char *reply_ending = "";
    if (scenario == PIPELINE || line_framing) {
        ending = "\n";
        reply_ending = line_framing ? "\r\n" : "\n";
    }
    if (scenario == UDP) { ending = ""; reply_ending = ""; }
    message_len = (size_t)snprintf(message, sizeof message, "%s%s", name, ending);
    expected_len = (size_t)snprintf(expected, sizeof expected, "Hello, %s!%s", name, reply_ending);

    worker *workers = calloc((size_t)nthreads, sizeof *workers);
    if (!workers) die("calloc");
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    uint64_t setup_start = now_ns();
    for (int t = 0; t < nthreads; t++) {
        worker *w = &workers[t];
        w->id = t;
        w->nconns = connections / nthreads + (t < connections % nthreads ? 1 : 0);
        w->conns = calloc((size_t)w->nconns, sizeof(conn));
        if (!w->conns) die("calloc");
        for (int i = 0; i < w->nconns; i++) { w->conns[i].fd = -1; w->conns[i].state = S_IDLE; }
        if (pthread_create(&w->thread, NULL, run_worker, w) != 0) die("pthread_create");
    }
    for (int t = 0; t < nthreads; t++) pthread_join(workers[t].thread, NULL);
    uint64_t finish = now_ns();
    if (progress) fprintf(stderr, "{\"event\": \"stop\"}\n");
    struct rusage usage_end;
    getrusage(RUSAGE_SELF, &usage_end);
    double cpu_s = (usage_end.ru_utime.tv_sec - usage_start.ru_utime.tv_sec) +
                   (usage_end.ru_utime.tv_usec - usage_start.ru_utime.tv_usec) / 1e6 +
                   (usage_end.ru_stime.tv_sec - usage_start.ru_stime.tv_sec) +
                   (usage_end.ru_stime.tv_usec - usage_start.ru_stime.tv_usec) / 1e6;

    histogram *h = calloc(1, sizeof *h);
    struct errors err = {0};
    uint64_t messages = 0;
    int established = 0;
    for (int t = 0; t < nthreads; t++) {
        worker *w = &workers[t];
        for (int i = 0; i < NBUCKETS; i++) h->counts[i] += w->hist.counts[i];
        h->total += w->hist.total;
        h->sum_us += w->hist.sum_us;
        if (w->hist.max_ns > h->max_ns) h->max_ns = w->hist.max_ns;
        err.connect += w->err.connect;
        err.reset += w->err.reset;
        err.protocol += w->err.protocol;
        err.closed += w->err.closed;
        err.timeout += w->err.timeout;
        messages += w->messages;
        established += w->established;
        for (int i = 0; i < w->nconns; i++) {
            if (w->conns[i].fd >= 0) close(w->conns[i].fd);
            free(w->conns[i].out);
        }
    }
    double elapsed = (finish - start_ns) / 1e9;
    if (elapsed <= 0) elapsed = 1e-9;
    static const char *names[] = {"lockstep", "pipeline", "churn", "udp"};
    uint64_t errors = err.connect + err.reset + err.protocol + err.closed + err.timeout;
    printf("{\"scenario\": \"%s\", \"framing\": \"%s\", \"connections\": %d, "
           "\"established\": %d, \"depth\": %d, \"threads\": %d, "
           "\"setup_s\": %.3f, \"duration_s\": %.3f, \"messages\": %llu, "
           "\"unit\": \"%s\", \"msgs_per_s\": %.1f, \"cpu_s\": %.3f, "
           "\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, "
           "\"max\": %.1f, \"mean\": %.1f}, \"errors\": %llu, "
           "\"error_detail\": {\"connect\": %llu, \"reset\": %llu, \"protocol\": %llu, "
           "\"closed\": %llu, \"timeout\": %llu}}\n",
           names[scenario], line_framing ? "line" : "seed", connections,
           scenario == CHURN ? connections : established, scenario == PIPELINE ? depth : 1,
           nthreads, (start_ns - setup_start) / 1e9, elapsed, (unsigned long long)messages,
           scenario == CHURN ? "sessions" : "messages", messages / elapsed, cpu_s,
           percentile(h, 0.50), percentile(h, 0.90), percentile(h, 0.99),
           percentile(h, 0.999), h->max_ns / 1000.0, h->total ? h->sum_us / h->total : 0.0,
           (unsigned long long)errors, (unsigned long long)err.connect,
           (unsigned long long)err.reset, (unsigned long long)err.protocol,
           (unsigned long long)err.closed, (unsigned long long)err.timeout);
    return 0;
}
