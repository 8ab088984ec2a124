// Package refcheck checks image references without a regular expression and without
// distribution/reference, whose package initialisation (its grammar's regexps, and
// go-digest's) is ~1.5 ms of every process that links it: internal/opts links this instead
// (it was for the Go front; the front is C now, cmd/isula/isula.c). Full decides: internal/image/reference sets it to its parser (distribution's
// grammar) in the daemon and the full client. Without it only the references Plain accepts
// pass, and the others are undecided (ErrUndecided).
package refcheck

import (
	"errors"
	"strings"
)

// Full checks a reference with the whole grammar; nil in a process that does not link
// internal/image/reference.
var Full func(string) error

// ErrUndecided: the reference is not one Plain accepts, and Full is not there to decide.
var ErrUndecided = errors.New("image reference needs the full grammar to be checked")

// Check checks s with Full, or else with Plain.
func Check(s string) error {
	if Full != nil {
		return Full(s)
	}
	if Plain(s) {
		return nil
	}
	return ErrUndecided
}

// IsID tells whether s looks like an image ID or a prefix of one (hex, optionally
// "sha256:"), as rmi and inspect accept them.
func IsID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	return isHex(s)
}

// Plain accepts a subset of the references the OCI distribution grammar accepts: what it
// accepts the full grammar accepts too (it is stricter: a lower-case domain, no IPv6
// address), so it never lets a bad reference through, and what it refuses is left to Full.
//
//	[DOMAIN/]COMPONENT[/COMPONENT...][:TAG][@sha256:HEX64]
//	DOMAIN     lower-case labels of [a-z0-9-] joined by dots, optionally :PORT (digits);
//	           the first part is a domain only when it has a dot or a port, or is localhost
//	COMPONENT  [a-z0-9]+ joined by one of . _ __ or a run of -
//	TAG        [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
func Plain(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		d := s[i+1:]
		if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 || !isHex(d[len("sha256:"):]) {
			return false
		}
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i:], "/") {
		if !tag(s[i+1:]) {
			return false
		}
		s = s[:i]
	}
	if s == "" || (len(s) == 64 && isHex(s)) {
		return false // distribution refuses a 64-hex repository name
	}
	parts := strings.Split(s, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if !domain(parts[0]) {
			return false
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if !component(p) {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

// component: alnum runs joined by ".", "_", "__" or a run of "-".
func component(p string) bool {
	if p == "" || !alnum(p[0]) || !alnum(p[len(p)-1]) {
		return false
	}
	for i := 0; i < len(p); {
		if alnum(p[i]) {
			i++
			continue
		}
		j := i
		for j < len(p) && !alnum(p[j]) {
			j++
		}
		sep := p[i:j]
		if sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
			return false
		}
		i = j
	}
	return true
}

func tag(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
		if i > 0 {
			ok = ok || c == '.' || c == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}

// domain: lower-case host labels joined by dots, optionally :PORT.
func domain(d string) bool {
	host, port, hasPort := strings.Cut(d, ":")
	if hasPort {
		if port == "" || len(port) > 5 {
			return false
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	}
	if host == "" {
		return false
	}
	for _, l := range strings.Split(host, ".") {
		if l == "" || !alnum(l[0]) || !alnum(l[len(l)-1]) {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !alnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	return true
}
