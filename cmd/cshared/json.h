/*
 * json.h: what the engine's C programs (the isula front, cmd/isula; the light shim,
 * cmd/isulad-shim-lite) share: a growing buffer, a whole write to a descriptor, a JSON string
 * writer, and a small strict JSON reader that never reads past its input (strings with every escape, a lone surrogate as
 * U+FFFD as in Go, nesting at most 64, integers bounded as Go's decoder bounds them).
 * Static functions, included once by each program; CSHARED_OOM_EXIT is the exit status when
 * memory runs out.
 */
#ifndef CSHARED_JSON_H
#define CSHARED_JSON_H

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Not every program uses every function. */
#define CS_STATIC static __attribute__((unused))

#ifndef CSHARED_OOM_EXIT
#define CSHARED_OOM_EXIT 125
#endif

/* ------------------------------------------------------------------ strings */

struct buf {
	char *p;
	size_t n, cap;
};

CS_STATIC void die_oom(void)
{
	static const char m[] = "Error: out of memory\n";
	(void)!write(2, m, sizeof m - 1);
	_exit(CSHARED_OOM_EXIT);
}

CS_STATIC void bput(struct buf *b, const void *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->n + n + 1)
			c *= 2;
		char *p = realloc(b->p, c);
		if (!p)
			die_oom();
		b->p = p;
		b->cap = c;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

/* Writes all of p to fd: EINTR retried, a non-blocking fd waited for (timeout_ms at most each
 * time, -1: for ever). 0, or -1 on another error or the timeout. */
CS_STATIC int write_full(int fd, const char *p, size_t n, int timeout_ms)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {.fd = fd, .events = POLLOUT};
				if (poll(&pf, 1, timeout_ms) == 0)
					return -1;
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

CS_STATIC void bputs(struct buf *b, const char *s) { bput(b, s, strlen(s)); }

CS_STATIC void bputc(struct buf *b, char c) { bput(b, &c, 1); }

/* A JSON string; bytes below 0x20, '"' and '\\' escaped, everything else as is (the daemon's
 * decoder replaces invalid UTF-8 as it would have been replaced by Go's encoder). */
CS_STATIC void bput_json(struct buf *b, const char *s)
{
	bputc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};
			bput(b, e, 2);
		} else if (*p < 0x20) {
			char e[8];
			snprintf(e, sizeof e, "\\u%04x", *p);
			bput(b, e, 6);
		} else {
			bputc(b, (char)*p);
		}
	}
	bputc(b, '"');
}

/* ------------------------------------------------------------------ JSON */

struct jr {
	const char *p, *end;
	int bad;
};

CS_STATIC void jws(struct jr *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

CS_STATIC int jlit(struct jr *r, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(r->end - r->p) >= n && memcmp(r->p, lit, n) == 0) {
		r->p += n;
		return 1;
	}
	return 0;
}

CS_STATIC int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

CS_STATIC int jhex4(struct jr *r, unsigned *u)
{
	if (r->end - r->p < 4)
		return 0;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(r->p[i]);
		if (h < 0)
			return 0;
		v = v << 4 | (unsigned)h;
	}
	r->p += 4;
	*u = v;
	return 1;
}

CS_STATIC void put_utf8(struct buf *b, unsigned c)
{
	char s[4];
	if (c < 0x80) {
		s[0] = (char)c;
		bput(b, s, 1);
	} else if (c < 0x800) {
		s[0] = (char)(0xc0 | c >> 6);
		s[1] = (char)(0x80 | (c & 0x3f));
		bput(b, s, 2);
	} else if (c < 0x10000) {
		s[0] = (char)(0xe0 | c >> 12);
		s[1] = (char)(0x80 | (c >> 6 & 0x3f));
		s[2] = (char)(0x80 | (c & 0x3f));
		bput(b, s, 3);
	} else {
		s[0] = (char)(0xf0 | c >> 18);
		s[1] = (char)(0x80 | (c >> 12 & 0x3f));
		s[2] = (char)(0x80 | (c >> 6 & 0x3f));
		s[3] = (char)(0x80 | (c & 0x3f));
		bput(b, s, 4);
	}
}

/* A string into out (NULL: skipped). A lone surrogate becomes U+FFFD, as in Go. */
CS_STATIC int jstr(struct jr *r, struct buf *out)
{
	struct buf tmp = {0};
	struct buf *b = out ? out : &tmp;
	if (r->p >= r->end || *r->p != '"')
		goto bad;
	r->p++;
	while (r->p < r->end && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p;
		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			bputc(b, (char)c);
			r->p++;
			continue;
		}
		if (++r->p >= r->end)
			goto bad;
		char e = *r->p++;
		switch (e) {
		case '"': bputc(b, '"'); break;
		case '\\': bputc(b, '\\'); break;
		case '/': bputc(b, '/'); break;
		case 'b': bputc(b, '\b'); break;
		case 'f': bputc(b, '\f'); break;
		case 'n': bputc(b, '\n'); break;
		case 'r': bputc(b, '\r'); break;
		case 't': bputc(b, '\t'); break;
		case 'u': {
			unsigned u;
			if (!jhex4(r, &u))
				goto bad;
			if (u >= 0xd800 && u < 0xdc00) {
				unsigned lo;
				const char *save = r->p;
				if (r->end - r->p >= 2 && r->p[0] == '\\' && r->p[1] == 'u') {
					r->p += 2;
					if (jhex4(r, &lo) && lo >= 0xdc00 && lo < 0xe000) {
						put_utf8(b, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
						break;
					}
				}
				r->p = save;
				u = 0xfffd;
			} else if (u >= 0xdc00 && u < 0xe000) {
				u = 0xfffd;
			}
			put_utf8(b, u);
			break;
		}
		default:
			goto bad;
		}
	}
	if (r->p >= r->end)
		goto bad;
	r->p++;
	free(tmp.p);
	if (out && !out->p)
		bput(out, "", 0);
	return 1;
bad:
	free(tmp.p);
	r->bad = 1;
	return 0;
}

CS_STATIC int jskip(struct jr *r, int depth);

/* Calls elem for each element of an array; elem must consume the value. */
CS_STATIC int jarray(struct jr *r, int (*elem)(struct jr *, void *), void *ctx)
{
	if (r->p >= r->end || *r->p != '[')
		return r->bad = 1, 0;
	r->p++;
	jws(r);
	if (r->p < r->end && *r->p == ']')
		return r->p++, 1;
	for (;;) {
		jws(r);
		if (!elem(r, ctx))
			return r->bad = 1, 0;
		jws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']')
			return r->p++, 1;
		return r->bad = 1, 0;
	}
}

CS_STATIC int jskip_elem(struct jr *r, void *depth) { return jskip(r, *(int *)depth); }

/* Calls field for each member of an object; field must consume the value. */
CS_STATIC int jobject(struct jr *r, int (*field)(struct jr *, const char *key, void *), void *ctx, int depth)
{
	if (depth > 64)
		return r->bad = 1, 0;
	jws(r);
	if (r->p >= r->end || *r->p != '{')
		return r->bad = 1, 0;
	r->p++;
	jws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return 1;
	}
	for (;;) {
		struct buf key = {0};
		jws(r);
		if (!jstr(r, &key))
			return free(key.p), 0;
		jws(r);
		if (r->p >= r->end || *r->p != ':')
			return free(key.p), r->bad = 1, 0;
		r->p++;
		jws(r);
		int ok = field ? field(r, key.p, ctx) : jskip(r, depth + 1);
		free(key.p);
		if (!ok || r->bad)
			return r->bad = 1, 0;
		jws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return 1;
		}
		return r->bad = 1, 0;
	}
}

CS_STATIC int jskip(struct jr *r, int depth)
{
	jws(r);
	if (depth > 64 || r->p >= r->end)
		return r->bad = 1, 0;
	switch (*r->p) {
	case '"':
		return jstr(r, NULL);
	case '{':
		return jobject(r, NULL, NULL, depth);
	case '[': {
		int d = depth + 1;
		return jarray(r, jskip_elem, &d);
	}
	case 't':
		if (jlit(r, "true"))
			return 1;
		break;
	case 'f':
		if (jlit(r, "false"))
			return 1;
		break;
	case 'n':
		if (jlit(r, "null"))
			return 1;
		break;
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
			r->p++;
			while (r->p < r->end && strchr("0123456789.eE+-", *r->p))
				r->p++;
			return 1;
		}
	}
	return r->bad = 1, 0;
}

CS_STATIC int jbool(struct jr *r, int *v)
{
	if (jlit(r, "true"))
		return *v = 1, 1;
	if (jlit(r, "false") || jlit(r, "null"))
		return *v = 0, 1;
	return r->bad = 1, 0;
}

/* A string or null into out (replaced). */
CS_STATIC int jstrval(struct jr *r, struct buf *out)
{
	out->n = 0;
	if (out->p)
		out->p[0] = 0;
	if (jlit(r, "null"))
		return 1;
	return jstr(r, out);
}

/* An integer that fits an int64 (Go's json into an int64). */
CS_STATIC int jint64(struct jr *r, long long *v)
{
	if (jlit(r, "null"))
		return 1;
	const char *s = r->p;
	int neg = 0;
	if (s < r->end && *s == '-')
		neg = 1, s++;
	if (s >= r->end || *s < '0' || *s > '9')
		return r->bad = 1, 0;
	unsigned long long x = 0;
	while (s < r->end && *s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s++ - '0');
		if (x > (9223372036854775808ULL - d) / 10)
			return r->bad = 1, 0;
		x = x * 10 + d;
	}
	if (s < r->end && (*s == '.' || *s == 'e' || *s == 'E'))
		return r->bad = 1, 0;
	if (!neg && x > 9223372036854775807ULL)
		return r->bad = 1, 0;
	r->p = s;
	*v = neg ? (long long)(0 - x) : (long long)x;
	return 1;
}

/* An integer that fits an int (Go's json into an int: no fraction, no exponent). */
CS_STATIC int jint(struct jr *r, int *v)
{
	const char *start = r->p;
	long long x = *v;
	if (!jint64(r, &x))
		return 0;
	if (x > INT_MAX || x < INT_MIN) {
		r->p = start;
		return r->bad = 1, 0;
	}
	*v = (int)x;
	return 1;
}

/* Parses a whole payload as one object; 0 when it is not one. */
CS_STATIC int parse(const char *p, size_t n, int (*field)(struct jr *, const char *, void *), void *ctx)
{
	struct jr r = {p, p + n, 0};
	if (!jobject(&r, field, ctx, 0) || r.bad)
		return 0;
	jws(&r);
	return r.p == r.end;
}

#endif
