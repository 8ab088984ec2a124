/*
 * isula: the isulad container engine's client front.
 *
 * It serves `isula run` (attached and non-interactive, or -d) over the daemon's light
 * protocol (internal/lightproto) and execs the full client, isula-full in its own directory,
 * with the same argv and environment for every other command line, for what the daemon hands
 * back, and when the daemon cannot be reached. It does not parse run's flags: the hello
 * carries the arguments after the word run and the environment, and the daemon parses them
 * with the full client's definitions (internal/cli/runopts.PlanRun) and answers a plan frame,
 * or a handover frame.
 *
 * Why C: a client's start is paid by every `isula run`. A Go program's start on this project's
 * machines is 1.3-1.7 ms of CPU and ~210 page faults at 3-4.5 us each before main, and its
 * exit needs every runtime thread gone; this program starts with ~25 page faults and one
 * thread (docs/PERFORMANCE.md, issue 14's eighth round; docs/ARCHITECTURE.md, "Front and
 * full client"). What it prints must be what the full client prints for the same answers:
 * internal/front's tests run this binary against a fake daemon and the real one.
 *
 * Only the daemon (root's socket, SO_PEERCRED-checked by the daemon) talks to it, but its
 * frames are still read with bounds: a payload is at most 16 MiB, JSON is parsed by a small
 * strict reader that never reads past the payload.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_HOST "unix:///var/run/isulad.sock"
#define HOST_ENV "ISULAD_HOST"
#define FULL_NAME "isula-full"
#define EXIT_ENGINE 125
#define MAGIC "ISULA-LIGHT/1\n"
#define MAX_PAYLOAD (16u << 20)

#define CSHARED_OOM_EXIT EXIT_ENGINE
#include "../cshared/json.h"

/* strerror as Go's syscall.Errno prints it: the libc text, first letter lower case. */
static const char *errtext(int e)
{
	static char t[256];
	snprintf(t, sizeof t, "%s", strerror(e));
	t[0] = (char)tolower((unsigned char)t[0]);
	return t;
}

/* Writes all of p to fd (stdout, stderr), waiting for a non-blocking fd as long as it takes.
 * Other errors end the write, as the Go clients ignore theirs (a closed pipe raises SIGPIPE). */
static void write_all(int fd, const char *p, size_t n) { (void)write_full(fd, p, n, -1); }

static void eprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char *s = malloc((size_t)n + 1);
	if (!s)
		die_oom();
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	write_all(2, s, (size_t)n);
	free(s);
}

/* ------------------------------------------------------------------ the full client */

static char **g_argv;

/* Replaces the process with isula-full beside this binary, same argv (argv[0] too) and
 * environment; returns 125 with one line on stderr only when that cannot be done. */
static int exec_full(void)
{
	static char exe[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", exe, PATH_MAX);
	if (n < 0) {
		eprintf("Error: cannot find the isula binary's directory to run " FULL_NAME ": readlink /proc/self/exe: %s\n", errtext(errno));
		return EXIT_ENGINE;
	}
	exe[n] = 0;
	static const char deleted[] = " (deleted)";
	size_t dl = sizeof deleted - 1;
	if ((size_t)n > dl && strcmp(exe + n - dl, deleted) == 0)
		exe[n - dl] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		slash[1] = 0;
	else
		exe[0] = 0;
	strcat(exe, FULL_NAME);
	execve(exe, g_argv, environ);
	eprintf("Error: cannot run the full client %s: %s\n", exe, errtext(errno));
	return EXIT_ENGINE;
}

/* ------------------------------------------------------------------ frames */

struct plan {
	int sig_proxy, detach, fallback;
};

static int plan_field(struct jr *r, const char *k, void *ctx)
{
	struct plan *p = ctx;
	if (!strcmp(k, "sig_proxy"))
		return jbool(r, &p->sig_proxy);
	if (!strcmp(k, "detach"))
		return jbool(r, &p->detach);
	if (!strcmp(k, "fallback"))
		return jbool(r, &p->fallback);
	return jskip(r, 1);
}

struct created {
	struct buf id;
	struct buf warnings; /* each "WARNING: w\n" */
};

/* One warning: "WARNING: w\n" appended to the buf at ctx. */
static int warning_elem(struct jr *r, void *ctx)
{
	struct buf w = {0};
	int ok = jstrval(r, &w);
	if (ok) {
		bputs(ctx, "WARNING: ");
		bput(ctx, w.p ? w.p : "", w.n);
		bputc(ctx, '\n');
	}
	free(w.p);
	return ok;
}

static int created_field(struct jr *r, const char *k, void *ctx)
{
	struct created *c = ctx;
	if (!strcmp(k, "id"))
		return jstrval(r, &c->id);
	if (!strcmp(k, "warnings")) {
		c->warnings.n = 0;
		if (jlit(r, "null"))
			return 1;
		return jarray(r, warning_elem, &c->warnings);
	}
	return jskip(r, 1);
}

struct exitmsg {
	int code;
	struct buf error;
};

static int exit_field(struct jr *r, const char *k, void *ctx)
{
	struct exitmsg *x = ctx;
	if (!strcmp(k, "code"))
		return jint(r, &x->code);
	if (!strcmp(k, "error"))
		return jstrval(r, &x->error);
	return jskip(r, 1);
}

struct errmsg {
	struct buf message, kind;
};

static int error_field(struct jr *r, const char *k, void *ctx)
{
	struct errmsg *e = ctx;
	if (!strcmp(k, "message"))
		return jstrval(r, &e->message);
	if (!strcmp(k, "kind"))
		return jstrval(r, &e->kind);
	return jskip(r, 1);
}

/* ------------------------------------------------------------------ messages */

/* Go's unicode.IsSpace for the rune at s (len n); its length in *l. */
static int is_space(const unsigned char *s, size_t n, size_t *l)
{
	*l = 1;
	if (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
		return 1;
	if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
		return *l = 2, 1;
	if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) /* U+1680 */
		return *l = 3, 1;
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
	    ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf)) /* U+2000-200A, 2028, 2029, 202F */
		return *l = 3, 1;
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
		return *l = 3, 1;
	if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
		return *l = 3, 1;
	return 0;
}

/* The full client's oneLine: the words of s (split at Unicode white space) joined by one
 * space. Newlines are white space, so this also covers errdefs.OneLine's "; " join once the
 * lines are trimmed: that join is applied first. */
static void one_line(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + n;
	int word = 0;
	out->n = 0;
	bput(out, "", 0);
	while (p < e) {
		size_t l;
		if (is_space(p, (size_t)(e - p), &l)) {
			p += l;
			if (word)
				word = 2; /* a space before the next word */
			continue;
		}
		if (word == 2)
			bputc(out, ' ');
		word = 1;
		bputc(out, (char)*p++);
	}
}

/* errdefs.OneLine: trimmed, and if it holds CR or LF, its non-empty trimmed lines joined
 * with "; ". Go's TrimSpace trims Unicode white space. */
static void trim(const char **s, size_t *n)
{
	const unsigned char *p = (const unsigned char *)*s, *e = p + *n;
	size_t l;
	while (p < e && is_space(p, (size_t)(e - p), &l))
		p += l;
	/* from the end: find the last non-space rune by scanning forward */
	const unsigned char *last = p, *q = p;
	while (q < e) {
		if (is_space(q, (size_t)(e - q), &l)) {
			q += l;
		} else {
			q++;
			while (q < e && (*q & 0xc0) == 0x80)
				q++;
			last = q;
		}
	}
	*s = (const char *)p;
	*n = (size_t)(last - p);
}

static void errdefs_one_line(struct buf *out, const char *s, size_t n)
{
	trim(&s, &n);
	out->n = 0;
	bput(out, "", 0);
	if (!memchr(s, '\n', n) && !memchr(s, '\r', n)) {
		bput(out, s, n);
		return;
	}
	const char *p = s, *e = s + n;
	int first = 1;
	while (p < e) {
		const char *q = p;
		while (q < e && *q != '\n' && *q != '\r')
			q++;
		const char *ls = p;
		size_t ln = (size_t)(q - p);
		trim(&ls, &ln);
		if (ln > 0) {
			if (!first)
				bputs(out, "; ");
			bput(out, ls, ln);
			first = 0;
		}
		p = q < e ? q + 1 : q;
	}
}

static int is_conn_msg(const char *m)
{
	return strstr(m, "connection error") || strstr(m, "transport") || strstr(m, "dial unix") || strstr(m, "connect:");
}

/* The full client's apiErr and report for an error of the daemon's Attach. */
static void print_daemon_error(const char *host, const char *kind, const char *msg, size_t mlen)
{
	static const char *kinds[] = {"invalid argument", "not found", "already exists", "conflict", "unavailable",
				      "permission denied", "not implemented", "deadline exceeded", "canceled",
				      "resource exhausted", "internal error", "unknown error"};
	const char *k = "unknown error";
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (!strcmp(kind, kinds[i]))
			k = kinds[i];
	if (mlen == 0) {
		msg = k;
		mlen = strlen(k);
	}
	struct buf a = {0}, b = {0};
	errdefs_one_line(&a, msg, mlen);
	if (!strcmp(k, "unavailable") && is_conn_msg(a.p)) {
		if (strstr(a.p, "permission denied"))
			eprintf("Cannot connect to the isulad daemon at %s: permission denied (the socket is for root only).\n", host);
		else
			eprintf("Cannot connect to the isulad daemon at %s. Is the daemon running?\n", host);
	} else if (!strcmp(k, "canceled")) {
		eprintf("Error: canceled\n");
	} else {
		one_line(&b, a.p, a.n);
		eprintf("Error response from daemon: %s\n", b.p);
	}
	free(a.p);
	free(b.p);
}

/* ------------------------------------------------------------------ the connection */

struct conn {
	int fd;
	char rb[64 << 10];
	size_t r, w;
};

/* Reads exactly n bytes: 1, or 0 at a clean end before any byte, or -1 (errno set; 0 for
 * an end inside). */
static int conn_read(struct conn *c, char *p, size_t n, int start)
{
	size_t got = 0;
	while (got < n) {
		if (c->r < c->w) {
			size_t k = c->w - c->r;
			if (k > n - got)
				k = n - got;
			memcpy(p + got, c->rb + c->r, k);
			c->r += k;
			got += k;
			continue;
		}
		ssize_t m = read(c->fd, c->rb, sizeof c->rb);
		if (m < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (m == 0) {
			if (got == 0 && start)
				return 0;
			errno = 0;
			return -1;
		}
		c->r = 0;
		c->w = (size_t)m;
	}
	return 1;
}

enum { RF_OK = 1, RF_EOF = 0, RF_ERR = -1 };

/* One frame; on RF_ERR, why in err. */
static int read_frame(struct conn *c, char *typ, char **payload, size_t *len, struct buf *err)
{
	unsigned char h[5];
	int r = conn_read(c, (char *)h, 5, 1);
	if (r == 0)
		return RF_EOF;
	if (r < 0)
		goto fail;
	uint32_t n = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
	if (n > MAX_PAYLOAD) {
		char m[96];
		snprintf(m, sizeof m, "light protocol: a frame of %u bytes is over %u", n, MAX_PAYLOAD);
		err->n = 0;
		bputs(err, m);
		return RF_ERR;
	}
	char *p = malloc((size_t)n + 1);
	if (!p)
		die_oom();
	if (conn_read(c, p, n, 0) < 0) {
		free(p);
		goto fail;
	}
	p[n] = 0;
	*typ = (char)h[0];
	*payload = p;
	*len = n;
	return RF_OK;
fail:
	err->n = 0;
	if (errno == 0)
		bputs(err, "connection closed");
	else {
		bputs(err, "read: ");
		bputs(err, errtext(errno));
	}
	return RF_ERR;
}

/* ------------------------------------------------------------------ the signal proxy */

static volatile sig_atomic_t g_ready;
static int g_sock = -1;

/* internal/sigproxy's list, each with its signal frame's payload. */
static const struct {
	int sig;
	const char *frame; /* {"name": ...} */
} proxied[] = {
	{SIGINT, "{\"name\":\"SIGINT\"}"},	{SIGTERM, "{\"name\":\"SIGTERM\"}"},
	{SIGHUP, "{\"name\":\"SIGHUP\"}"},	{SIGQUIT, "{\"name\":\"SIGQUIT\"}"},
	{SIGUSR1, "{\"name\":\"SIGUSR1\"}"}, {SIGUSR2, "{\"name\":\"SIGUSR2\"}"},
};
#define NPROXIED (sizeof proxied / sizeof proxied[0])

/* Writes all of p to the socket fd, without SIGPIPE; async-signal-safe. */
static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Before the container's start (FrameReady) a signal ends the front by that signal, as with
 * no handler (the daemon sees the connection end); after it, it goes to the daemon as a
 * signal frame. Only this handler writes to the socket once the hello is out, and it runs
 * with the other proxied signals blocked, so frames never interleave. */
static void on_signal(int sig)
{
	int saved = errno;
	for (size_t i = 0; i < NPROXIED; i++) {
		if (proxied[i].sig != sig)
			continue;
		if (!g_ready) {
			signal(sig, SIG_DFL);
			sigset_t s;
			sigemptyset(&s);
			sigaddset(&s, sig);
			sigprocmask(SIG_UNBLOCK, &s, NULL);
			raise(sig);
			_exit(128 + sig);
		}
		char f[40] = {'S', 0, 0, 0};
		size_t n = strlen(proxied[i].frame);
		f[4] = (char)n;
		memcpy(f + 5, proxied[i].frame, n);
		send_all(g_sock, f, 5 + n);
	}
	errno = saved;
}

static void start_proxy(int fd)
{
	g_sock = fd;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NPROXIED; i++)
		sigaddset(&sa.sa_mask, proxied[i].sig);
	for (size_t i = 0; i < NPROXIED; i++)
		sigaction(proxied[i].sig, &sa, NULL);
}

/* ------------------------------------------------------------------ run */

/* The daemon's socket for -H value h: unix:///path, unix:/path or /path, at most 107 bytes
 * (sun_path); NULL for anything else (the full client serves it). */
static const char *socket_path(const char *h)
{
	const char *p = h;
	if (!strncmp(h, "unix://", 7))
		p = h + 7;
	else if (!strncmp(h, "unix:/", 6))
		p = h + 5;
	if (p[0] != '/' || strlen(p) > 107)
		return NULL;
	return p;
}

/* FULL: serve's answer when the full client must run the command line instead (nothing was
 * made); any other value is the exit code. Outside int's range of exit codes the daemon can
 * send (jint). */
#define FULL ((long long)INT_MAX + 1)

/* Serves the run whose arguments follow argv[run]: the exit code, or FULL. */
static long long serve(const char *host, const char *path, int argc, char **argv, int run)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return FULL;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return close(fd), FULL;

	struct buf h = {0};
	bputs(&h, MAGIC "{\"sig_proxy\":false,\"argv\":[");
	for (int i = run + 1; i < argc; i++) {
		if (i > run + 1)
			bputc(&h, ',');
		bput_json(&h, argv[i]);
	}
	bputs(&h, "],\"env\":[");
	for (char **e = environ; *e; e++) {
		if (e != environ)
			bputc(&h, ',');
		bput_json(&h, *e);
	}
	bputs(&h, "]}\n");
	if (send_all(fd, h.p, h.n) < 0)
		return close(fd), FULL;
	free(h.p);

	static struct conn c;
	c.fd = fd;
	struct plan plan = {0};
	int planned = 0, created = 0, first = 1;
	struct created cr = {0};
	struct buf err = {0};
	for (;;) {
		char typ = 0, *p = NULL;
		size_t n = 0;
		int rf = read_frame(&c, &typ, &p, &n, &err);
		if (!planned) {
			/* The daemon's answer to the command line. Anything but its plan (its
			 * handover, an error, the end: a daemon that does not parse command lines)
			 * comes before anything was made: the full client runs it. */
			memset(&plan, 0, sizeof plan);
			if (rf != RF_OK || typ != 'P' || !parse(p, n, plan_field, &plan))
				return close(fd), FULL;
			planned = 1;
			free(p);
			if (plan.sig_proxy && !plan.detach) /* the daemon proxies nothing for -d */
				start_proxy(fd);
			continue;
		}
		if (rf != RF_OK) {
			if (first)
				return close(fd), FULL; /* closed without a word: nothing was made */
			if (rf == RF_EOF) {
				err.n = 0;
				bputs(&err, "connection closed");
			}
			eprintf("Error: the daemon at %s ended the stream before the container's exit: %s\n", host, err.p);
			return EXIT_ENGINE;
		}
		first = 0;
		switch (typ) {
		case 'O':
			write_all(1, p, n);
			break;
		case 'E':
			write_all(2, p, n);
			break;
		case 'C': {
			struct created x = {0};
			if (parse(p, n, created_field, &x)) {
				created = 1;
				free(cr.id.p);
				cr.id = x.id;
				if (x.warnings.n)
					write_all(2, x.warnings.p, x.warnings.n);
				free(x.warnings.p);
			} else {
				free(x.id.p);
				free(x.warnings.p);
			}
			break;
		}
		case 'R':
			g_ready = 1;
			break;
		case 'X': {
			/* The connection is left to the process's exit to close: the daemon starts
			 * the next spare shim at that end. */
			struct exitmsg x = {0};
			if (!parse(p, n, exit_field, &x)) {
				eprintf("Error: bad exit message from the daemon: %.*s\n", (int)(n > 200 ? 200 : n), p);
				return EXIT_ENGINE;
			}
			if (plan.detach && x.code == 0 && x.error.n == 0) {
				/* run -d: the id, after the warnings (the full client's createStart) */
				struct buf o = {0};
				bput(&o, cr.id.p ? cr.id.p : "", cr.id.n);
				bputc(&o, '\n');
				write_all(1, o.p, o.n);
				return 0;
			}
			int code = x.code;
			if (x.error.n) {
				if (code == 0)
					code = EXIT_ENGINE;
				struct buf a = {0};
				one_line(&a, x.error.p, x.error.n);
				eprintf("Error response from daemon: %s\n", a.p);
			}
			return code;
		}
		case '!': {
			struct errmsg e = {0};
			if (!parse(p, n, error_field, &e)) {
				eprintf("Error: bad error message from the daemon: %.*s\n", (int)(n > 200 ? 200 : n), p);
				return EXIT_ENGINE;
			}
			const char *kind = e.kind.p ? e.kind.p : "";
			if (!strcmp(kind, "not found") && !created && plan.fallback)
				return close(fd), FULL;
			print_daemon_error(host, kind, e.message.p ? e.message.p : "", e.message.n);
			return EXIT_ENGINE;
		}
		}
		free(p);
	}
}

int main(int argc, char **argv)
{
	g_argv = argv;
	const char *host = DEFAULT_HOST;
	const char *env = getenv(HOST_ENV);
	if (env && *env)
		host = env;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "run"); i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-H") || !strcmp(a, "--host")) && i + 1 < argc)
			host = argv[++i];
		else if (!strncmp(a, "-H=", 3))
			host = a + 3;
		else if (!strncmp(a, "--host=", 7))
			host = a + 7;
		else
			return exec_full();
	}
	if (i + 1 >= argc) /* no run, or nothing after it */
		return exec_full();
	const char *path = socket_path(host);
	if (!path)
		return exec_full();
	long long code = serve(host, path, argc, argv, i);
	if (code == FULL)
		return exec_full();
	return (int)code;
}
