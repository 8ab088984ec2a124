/*
 * isulad-shim-lite: the start of a detached container's shim, in C.
 *
 * The daemon keeps one of these as a spare beside its Go spare (internal/shim.Spares) and
 * adopts it for a detached start: `isula run -d`, `isula start`, a CRI container. It takes
 * the container's Config on fd 3 (the socket pair the daemon holds), sets the shim up as the
 * Go shim does (the log file, the stdout and stderr pipes, the socket, shim.pid), runs the
 * runtime's `run --detach`, writes init.pid, takes init's pidfd and answers the start. Then it
 * holds what it made and waits. It serves one request itself, `wait` (the daemon sends one to
 * every container right after its start): it keeps the connection. On anything else (any
 * other request, the container's first output, init's exit) it execs the Go shim,
 * isulad-shim in its own directory, with `--takeover-fd` and a JSON description (in a memfd)
 * of its state and of the file descriptors it passes on (internal/shim/takeover.go): the same process, the
 * same pid, the same children, the connections it held. The Go shim then goes on exactly as
 * if it had made the start itself. A failed start is handed over the same way, with the
 * runtime's log.
 *
 * Why: the shim's Go runtime is ~2 ms of CPU per container on this project's machines (its
 * start, page faults at 3-4.5 us each) and 3.4 MiB of memory, and a burst of detached starts
 * on two CPUs is CPU-bound (docs/PERFORMANCE.md, issue 14's ninth round). A container that
 * runs quietly until it is stopped never needs the Go shim until its exit.
 *
 * What it does not do, it hands over before doing anything: a terminal, stdin, a log format
 * other than json-file and CRI's, a state directory that is not fresh, a socket path over 107
 * bytes, a socket file already there, fault points (ISULAD_FAULTS) all go to the Go shim right
 * after the adoption (`--adopted`), which sets everything up itself.
 *
 * Only the daemon talks to it: fd 3 is the daemon's, connections on its socket from any uid
 * but 0 are closed unread (SO_PEERCRED). Requests are still read with bounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CSHARED_OOM_EXIT 1
#include "../cshared/json.h"

extern char **environ;

#define GO_SHIM "isulad-shim"
#define MAX_LINE (64 << 10) /* a request or config line; a longer one goes to the Go shim */
#define MAX_WAITERS 64
#define MARKED_ENV "ISULAD_SHIM_SET_GOMAXPROCS" /* internal/shim/env.go */

/* ------------------------------------------------------------------ log */

static void logf_(const char *fmt, ...)
{
	char m[1024];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(m, sizeof m, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ isulad-shim-lite[%d]: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec, (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof m)
		n += vsnprintf(m + n, sizeof m - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof m - 1)
		n = sizeof m - 2;
	m[n++] = '\n';
	(void)!write(2, m, (size_t)n);
}

/* A write to the daemon's connections: 5 s at most for room. */
static int write_all(int fd, const char *p, size_t n) { return write_full(fd, p, n, 5000); }

/* ------------------------------------------------------------------ config and requests */

struct config {
	struct buf id, bundle, runtime, runtime_root, state_dir, socket, log_path, log_format;
	long long log_max_size;
	int log_max_file, terminal, stdin_, fresh;
};

static int config_field(struct jr *r, const char *k, void *ctx)
{
	struct config *c = ctx;
	if (!strcmp(k, "ID"))
		return jstrval(r, &c->id);
	if (!strcmp(k, "Bundle"))
		return jstrval(r, &c->bundle);
	if (!strcmp(k, "Runtime"))
		return jstrval(r, &c->runtime);
	if (!strcmp(k, "RuntimeRoot"))
		return jstrval(r, &c->runtime_root);
	if (!strcmp(k, "StateDir"))
		return jstrval(r, &c->state_dir);
	if (!strcmp(k, "Socket"))
		return jstrval(r, &c->socket);
	if (!strcmp(k, "LogPath"))
		return jstrval(r, &c->log_path);
	if (!strcmp(k, "LogFormat"))
		return jstrval(r, &c->log_format);
	if (!strcmp(k, "LogMaxSize"))
		return jint64(r, &c->log_max_size);
	if (!strcmp(k, "LogMaxFile"))
		return jint(r, &c->log_max_file);
	if (!strcmp(k, "Terminal"))
		return jbool(r, &c->terminal);
	if (!strcmp(k, "Stdin"))
		return jbool(r, &c->stdin_);
	if (!strcmp(k, "FreshState"))
		return jbool(r, &c->fresh);
	return jskip(r, 1);
}

static const char *s(const struct buf *b) { return b->p ? b->p : ""; }

struct request {
	struct buf op;
	int final;
};

static int request_field(struct jr *r, const char *k, void *ctx)
{
	struct request *q = ctx;
	if (!strcmp(k, "op"))
		return jstrval(r, &q->op);
	if (!strcmp(k, "final"))
		return jbool(r, &q->final);
	return jskip(r, 1);
}

/*
 * Reads one line (up to and with its '\n') from socket fd into line, consuming nothing after
 * it: the bytes are peeked first, then exactly the line's are read. Between the arrivals of
 * its parts it waits timeout_ms at most (-1: for ever). Returns 1 with a whole line; 0 at EOF
 * before any byte; -1 on an error or an EOF inside the line; -2 when the line is longer than
 * MAX_LINE, -3 when the wait timed out: then line holds what was consumed (for the Go shim to
 * go on from).
 */
static int read_line(int fd, struct buf *line, int timeout_ms)
{
	static char tmp[MAX_LINE];
	line->n = 0;
	for (;;) {
		ssize_t n = recv(fd, tmp, sizeof tmp, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			int r = poll(&pf, 1, timeout_ms);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -1;
			if (r == 0)
				return -3;
			continue;
		}
		if (n < 0)
			return -1;
		if (n == 0)
			return line->n == 0 ? 0 : -1;
		char *nl = memchr(tmp, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - tmp) + 1 : (size_t)n;
		if (line->n + take > MAX_LINE)
			return -2;
		ssize_t got = recv(fd, tmp, take, MSG_DONTWAIT);
		if (got != (ssize_t)take)
			return -1;
		bput(line, tmp, take);
		if (nl)
			return 1;
	}
}

/* base64 (standard, padded) of p, as Go's encoding/json reads a []byte. */
static void bput_base64(struct buf *b, const char *p, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *u = (const unsigned char *)p;
	bputc(b, '"');
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)u[i] << 16 | (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0) | (i + 2 < n ? u[i + 2] : 0);
		char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '='};
		bput(b, q, 4);
	}
	bputc(b, '"');
}

/* ------------------------------------------------------------------ state */

static struct config g_cfg;
static struct buf g_cfg_line; /* the Config as the daemon sent it (JSON, no '\n') */
static int g_adopter = 3;     /* the daemon's socket pair; -1 once answered or closed */
static int g_listener = -1, g_out_r = -1, g_out_w = -1, g_err_r = -1, g_err_w = -1;
static int g_sigfd = -1;
static int g_wrote_pid; /* shim.pid is ours to remove if the setup is undone */
static char g_shim_dir[PATH_MAX];

struct waiter {
	int fd, final;
};
static struct waiter g_waiters[MAX_WAITERS];
static int g_nwaiters;

/* The Go shim's path: isulad-shim beside this binary. */
static int find_go_shim(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -1;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = 0;
	if (snprintf(g_shim_dir, sizeof g_shim_dir, "%s/%s", self, GO_SHIM) >= (int)sizeof g_shim_dir)
		return -1;
	return access(g_shim_dir, X_OK);
}

static void keep_fd(int fd)
{
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
}

/* Execs the Go shim with argv (its flags after the program name). Does not return. */
static void exec_go(char *flag, char *arg)
{
	sigset_t all;
	sigemptyset(&all);
	sigaddset(&all, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	char *argv[] = {GO_SHIM, flag, arg, NULL};
	execve(g_shim_dir, argv, environ);
	logf_("exec %s: %s", g_shim_dir, strerror(errno));
	_exit(1);
}

/* Hands a spare that took its Config, and made nothing yet, to the Go shim, which then sets
 * everything up itself (as `isulad-shim --spare` after awaitAdoption). */
static void handover_adopted(void)
{
	keep_fd(g_adopter);
	exec_go("--adopted", g_cfg_line.p);
}

/* Undoes the setup (socket, pipes, shim.pid) and hands over as adopted. */
static void undo_and_handover(void)
{
	if (g_listener >= 0) {
		close(g_listener);
		unlink(s(&g_cfg.socket));
	}
	int fds[] = {g_out_r, g_out_w, g_err_r, g_err_w};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (g_wrote_pid) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/shim.pid", s(&g_cfg.state_dir));
		unlink(p);
	}
	handover_adopted();
}

struct takeover {
	const char *phase; /* created, running, failed */
	int pid, init_fd;
	int log_fd, rt_status; /* failed: the runtime's log (memfd) and exit status */
	const char *error;     /* failed: the error, when it is not the runtime's */
	int conn;              /* a connection whose request (what was read of it: line) is not served */
	struct buf *line;
	struct buf *adopter_line; /* what was read on the adopter of a request not served */
};

/* Execs the Go shim with the state and every descriptor it takes over. Does not return. */
static void handover(const struct takeover *t)
{
	struct buf j = {0};
	char n[64];
	bputs(&j, "{\"config\":");
	bput(&j, g_cfg_line.p, g_cfg_line.n);
	bputs(&j, ",\"phase\":");
	bput_json(&j, t->phase);
#define FIELD(name, v)                                                                             \
	do {                                                                                       \
		snprintf(n, sizeof n, ",\"%s\":%d", name, (int)(v));                               \
		bputs(&j, n);                                                                      \
		keep_fd(v);                                                                        \
	} while (0)
	FIELD("listener", g_listener);
	FIELD("stdout", g_out_r);
	FIELD("stderr", g_err_r);
	FIELD("stdout_w", g_out_w); /* created: the process's ends, for the Go shim's start */
	FIELD("stderr_w", g_err_w);
	FIELD("adopter", g_adopter);
	FIELD("conn", t->conn);
	FIELD("init_fd", t->init_fd);
	FIELD("log_fd", t->log_fd);
#undef FIELD
	snprintf(n, sizeof n, ",\"pid\":%d,\"rt_status\":%d", t->pid, t->rt_status);
	bputs(&j, n);
	if (t->error) {
		bputs(&j, ",\"error\":");
		bput_json(&j, t->error);
	}
	if (t->line && t->line->n) {
		bputs(&j, ",\"line\":");
		bput_base64(&j, t->line->p, t->line->n);
	}
	if (t->adopter_line && t->adopter_line->n) {
		bputs(&j, ",\"adopter_line\":");
		bput_base64(&j, t->adopter_line->p, t->adopter_line->n);
	}
	bputs(&j, ",\"waiters\":[");
	for (int i = 0; i < g_nwaiters; i++) {
		snprintf(n, sizeof n, "%s{\"fd\":%d,\"final\":%s}", i ? "," : "", g_waiters[i].fd,
			 g_waiters[i].final ? "true" : "false");
		bputs(&j, n);
		keep_fd(g_waiters[i].fd);
	}
	bputs(&j, "]}");
	if (g_sigfd >= 0)
		close(g_sigfd);
	/* The state goes in a memfd, not in argv: a request line in it (an exec's environment)
	 * must not be in /proc/<pid>/cmdline, which every user can read. */
	int sfd = (int)syscall(SYS_memfd_create, "takeover-state", 0);
	if (sfd < 0 || write_all(sfd, j.p, j.n) < 0 || lseek(sfd, 0, SEEK_SET) < 0) {
		logf_("the takeover state: %s", strerror(errno));
		_exit(1);
	}
	char arg[16];
	snprintf(arg, sizeof arg, "%d", sfd);
	exec_go("--takeover-fd", arg);
}

/* ------------------------------------------------------------------ setup */

static int write_new(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t n = strlen(data);
	if (write(fd, data, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return -1;
	}
	return close(fd);
}

/* What newServer does (internal/shim/server.go) for a fresh state directory; 0, or -1 after
 * which the setup is undone and the Go shim does it. */
static int setup(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return logf_("set child subreaper: %s", strerror(errno)), -1;
	/* The log (json-file or CRI), as logfile.NewWriter makes it; the Go shim writes it. */
	int lf = open(s(&g_cfg.log_path), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (lf < 0)
		return logf_("open %s: %s", s(&g_cfg.log_path), strerror(errno)), -1;
	close(lf);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	g_out_r = p[0], g_out_w = p[1];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	g_err_r = p[0], g_err_w = p[1];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t sl = g_cfg.socket.n;
	if (sl >= sizeof a.sun_path)
		return -1;
	memcpy(a.sun_path, s(&g_cfg.socket), sl + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Mode 0600 from the start, as unixsock.Listen makes it. A file there (a live shim's, or
	 * a stale one) is for the Go shim to judge. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sl + 1));
	umask(old);
	if (rc < 0) {
		close(fd);
		return -1;
	}
	g_listener = fd;
	/* Non-blocking: a connection reset between the poll and the accept must not block. */
	if (listen(fd, 128) < 0 || chmod(s(&g_cfg.socket), 0600) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	char path[PATH_MAX], pid[32];
	snprintf(path, sizeof path, "%s/shim.pid", s(&g_cfg.state_dir));
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (write_new(path, pid) < 0)
		return -1;
	g_wrote_pid = 1;
	return 0;
}

/* Whether the Config is one this program serves (else the Go shim sets it up). */
static int supported(void)
{
	const char *faults = getenv("ISULAD_FAULTS");
	const char *lf = s(&g_cfg.log_format);
	return g_cfg.id.n && g_cfg.bundle.n && g_cfg.runtime.n && g_cfg.state_dir.n && g_cfg.socket.n &&
	       g_cfg.log_path.n && !strchr(s(&g_cfg.id), '/') && g_cfg.fresh && !g_cfg.terminal &&
	       !g_cfg.stdin_ && (!*lf || !strcmp(lf, "json-file") || !strcmp(lf, "cri")) && !(faults && *faults) &&
	       g_cfg.socket.n < sizeof(((struct sockaddr_un *)0)->sun_path) &&
	       strlen(s(&g_cfg.state_dir)) < PATH_MAX - 64;
}

/* ------------------------------------------------------------------ the start */

/* The runtime's environment: ours without the GOMAXPROCS the daemon set for the Go shim. */
static char **runtime_env(void)
{
	int marked = getenv(MARKED_ENV) != NULL;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof *env);
	if (!env)
		die_oom();
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (marked && (!strncmp(environ[i], MARKED_ENV "=", sizeof MARKED_ENV) ||
			       !strncmp(environ[i], "GOMAXPROCS=", 11)))
			continue;
		env[k++] = environ[i];
	}
	return env;
}

static void send_result(int fd, const char *json)
{
	size_t n = strlen(json);
	char h[5] = {'r', (char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n};
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (write_all(fd, h, 5) == 0)
		write_all(fd, json, n);
}

/* runtime run --detach; on success init's pid, else a handover of the failure. */
static int start(void)
{
	char pidfile[PATH_MAX];
	snprintf(pidfile, sizeof pidfile, "%s/runtime-init.pid", s(&g_cfg.state_dir));
	int logfd = (int)syscall(SYS_memfd_create, "runtime-run-log", MFD_CLOEXEC);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (logfd < 0 || devnull < 0) {
		struct takeover t = {.phase = "failed", .pid = 0, .init_fd = -1, .log_fd = -1, .conn = -1,
				     .error = "the runtime's log or /dev/null could not be opened"};
		close(g_out_w), close(g_err_w);
		g_out_w = g_err_w = -1;
		handover(&t);
	}
	char *argv[16];
	int a = 0;
	argv[a++] = g_cfg.runtime.p;
	if (g_cfg.runtime_root.n) {
		argv[a++] = "--root";
		argv[a++] = g_cfg.runtime_root.p;
	}
	argv[a++] = "--log";
	argv[a++] = "/proc/self/fd/3";
	argv[a++] = "--log-format";
	argv[a++] = "json";
	argv[a++] = "run";
	argv[a++] = "--detach";
	argv[a++] = "--pid-file";
	argv[a++] = pidfile;
	argv[a++] = "--bundle";
	argv[a++] = g_cfg.bundle.p;
	argv[a++] = g_cfg.id.p;
	argv[a] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, g_out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, g_err_w, 2);
	posix_spawn_file_actions_adddup2(&fa, logfd, 3);
	posix_spawn_file_actions_addchdir_np(&fa, "/");
	posix_spawnattr_setpgroup(&at, 0);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	char **env = runtime_env();
	pid_t rt;
	int err = posix_spawn(&rt, g_cfg.runtime.p, &fa, &at, argv, env);
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(devnull);
	/* The process's ends: the runtime passed them on (or never ran). */
	close(g_out_w), close(g_err_w);
	g_out_w = g_err_w = -1;
	char msg[2 * PATH_MAX + 128];
	if (err) {
		snprintf(msg, sizeof msg, "%s run: fork/exec %s: %s", s(&g_cfg.runtime), s(&g_cfg.runtime), strerror(err));
		struct takeover t = {.phase = "failed", .init_fd = -1, .log_fd = -1, .conn = -1, .error = msg};
		close(logfd);
		handover(&t);
	}
	int st;
	while (waitpid(rt, &st, 0) < 0 && errno == EINTR)
		;
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
	if (status != 0) {
		struct takeover t = {.phase = "failed", .init_fd = -1, .log_fd = logfd, .rt_status = status, .conn = -1};
		handover(&t);
	}
	close(logfd);
	char b[32] = {0};
	int pf = open(pidfile, O_RDONLY | O_CLOEXEC);
	ssize_t n = pf >= 0 ? read(pf, b, sizeof b - 1) : -1;
	if (pf >= 0)
		close(pf);
	unlink(pidfile);
	char *end;
	long pid = n > 0 ? strtol(b, &end, 10) : 0;
	if (pid <= 0 || pid > INT_MAX || (*end && *end != '\n')) {
		snprintf(msg, sizeof msg, "bad pid file %s: \"%.20s\"", pidfile, b);
		struct takeover t = {.phase = "failed", .init_fd = -1, .log_fd = -1, .conn = -1, .error = msg};
		handover(&t);
	}
	return (int)pid;
}

/* ------------------------------------------------------------------ main loop */

/* Accepts a connection and reads its request; a wait is kept, anything else handed over.
 * phase: "created" or "running"; pid and init_fd are init's once running. */
static void accept_one(const char *phase, int pid, int init_fd)
{
	int c = accept4(g_listener, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	struct ucred cr;
	socklen_t cl = sizeof cr;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != 0) {
		close(c);
		return;
	}
	/* The client writes its request at once; one that is slow (100 ms) is the Go shim's,
	 * which gives it 30 s, so that it holds nothing up here. */
	struct buf line = {0};
	int r = read_line(c, &line, 100);
	if (r == 0 || r == -1) {
		free(line.p);
		close(c);
		return;
	}
	struct request q = {0};
	if (r == 1 && parse(line.p, line.n - 1, request_field, &q) && !strcmp(s(&q.op), "wait") &&
	    g_nwaiters < MAX_WAITERS) {
		g_waiters[g_nwaiters++] = (struct waiter){c, q.final};
		free(line.p);
		free(q.op.p);
		return;
	}
	/* Anything else, a request the Go shim rejects included, is the Go shim's, with what was
	 * read of it. */
	struct takeover t = {.phase = phase, .pid = pid, .init_fd = init_fd, .log_fd = -1, .conn = c, .line = &line};
	handover(&t);
}

/* Whether init has exited, with the other children that have reaped (crun's run leaves one
 * behind it that exits later, our child as the subreaper): init stays a zombie for the Go
 * shim's reaper. The signalfd is emptied first: a SIGCHLD of a child reaped here, or one that
 * merged with an earlier one, is not lost. */
static int init_exited(int init)
{
	struct signalfd_siginfo si;
	while (read(g_sigfd, &si, sizeof si) > 0)
		;
	for (;;) {
		siginfo_t wi = {0};
		if (waitid(P_ALL, 0, &wi, WEXITED | WNOHANG | WNOWAIT) < 0 || wi.si_pid == 0)
			return 0;
		if (wi.si_pid == init)
			return 1;
		while (waitpid(wi.si_pid, NULL, WNOHANG) < 0 && errno == EINTR)
			;
	}
}

/* A waiter whose client went away is dropped (its bytes before that are read and ignored,
 * as the Go shim's handleWait does). */
static void poll_waiter(int i)
{
	char b[512];
	ssize_t n = recv(g_waiters[i].fd, b, sizeof b, MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	close(g_waiters[i].fd);
	g_waiters[i] = g_waiters[--g_nwaiters];
}

static void serve(void)
{
	const char *phase = "created";
	int pid = 0, init_fd = -1;
	for (;;) {
		struct pollfd pf[6 + MAX_WAITERS];
		int n = 0;
		pf[n++] = (struct pollfd){.fd = g_listener, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = g_adopter, .events = POLLIN};          /* -1: ignored */
		pf[n++] = (struct pollfd){.fd = pid ? g_out_r : -1, .events = POLLIN}; /* output: running */
		pf[n++] = (struct pollfd){.fd = pid ? g_err_r : -1, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = g_sigfd, .events = POLLIN};
		int w0 = n;
		for (int i = 0; i < g_nwaiters; i++)
			pf[n++] = (struct pollfd){.fd = g_waiters[i].fd, .events = POLLIN};
		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			logf_("poll: %s", strerror(errno));
			struct takeover t = {.phase = phase, .pid = pid, .init_fd = init_fd, .log_fd = -1, .conn = -1};
			handover(&t);
		}
		if ((pf[4].revents && init_exited(pid)) || pf[2].revents || pf[3].revents) {
			/* Init's exit, or the container's output: the Go shim's from here on. */
			struct takeover t = {.phase = phase, .pid = pid, .init_fd = init_fd, .log_fd = -1, .conn = -1};
			handover(&t);
		}
		for (int i = n - 1; i >= w0; i--)
			if (pf[i].revents)
				poll_waiter(i - w0);
		if (pf[1].revents) {
			struct buf line = {0};
			int r = read_line(g_adopter, &line, 1000);
			struct request q = {0};
			if (r == 1 && !pid && parse(line.p, line.n - 1, request_field, &q) && !strcmp(s(&q.op), "start")) {
				pid = start();
				init_fd = (int)syscall(SYS_pidfd_open, pid, 0);
				if (init_fd >= 0)
					fcntl(init_fd, F_SETFD, FD_CLOEXEC);
				char p[PATH_MAX], v[32];
				snprintf(p, sizeof p, "%s/init.pid", s(&g_cfg.state_dir));
				snprintf(v, sizeof v, "%d", pid);
				if (write_new(p, v) < 0)
					logf_("write init.pid: %s", strerror(errno));
				snprintf(v, sizeof v, "{\"pid\":%d}", pid);
				send_result(g_adopter, v);
				close(g_adopter);
				g_adopter = -1;
				phase = "running";
				/* The runtime's exit raised SIGCHLD, with which init's may have merged
				 * if it exited at once. */
				if (init_exited(pid)) {
					struct takeover t = {.phase = phase, .pid = pid, .init_fd = init_fd, .log_fd = -1, .conn = -1};
					handover(&t);
				}
			} else if (r == 0 || r == -1) {
				/* The daemon let the socket pair go unused: serve on the socket. */
				close(g_adopter);
				g_adopter = -1;
			} else {
				struct takeover t = {.phase = phase, .pid = pid, .init_fd = init_fd, .log_fd = -1,
						     .conn = -1, .adopter_line = &line};
				handover(&t);
			}
			free(line.p);
			free(q.op.p);
		}
		if (pf[0].revents)
			accept_one(phase, pid, init_fd);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[1], "--spare")) {
		fprintf(stderr, "usage: isulad-shim-lite --spare (the daemon starts it)\n");
		return 2;
	}
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	if (find_go_shim() < 0) {
		dprintf(3, "isulad-shim-lite: no %s beside it\n", GO_SHIM);
		return 2;
	}
	/* The Config, or EOF: the daemon let the spare go before any container. */
	int r = read_line(3, &g_cfg_line, -1);
	if (r == 0)
		return 0;
	if (r < 0) {
		dprintf(3, "spare: bad config: %s\n", r == -2 ? "too long" : "cut");
		return 2;
	}
	g_cfg_line.p[--g_cfg_line.n] = 0; /* the '\n' */
	if (!parse(g_cfg_line.p, g_cfg_line.n, config_field, &g_cfg)) {
		dprintf(3, "spare: bad config\n");
		return 2;
	}
	/* stderr to the container's shim.log, as awaitAdoption sets it. */
	if (g_cfg.state_dir.n) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/shim.log", s(&g_cfg.state_dir));
		int lf = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (lf >= 0) {
			dup3(lf, 2, 0);
			close(lf);
		}
	}
	if (!supported())
		handover_adopted();
	/* SIGCHLD through a signalfd: the first child exit after the start is init's. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	g_sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (g_sigfd < 0 || setup() < 0)
		undo_and_handover();
	if (write_all(3, "ok\n", 3) < 0)
		logf_("ready: %s", strerror(errno));
	serve();
	return 0;
}
