package opts

import (
	"regexp"
	"strings"
	"sync"
)

var nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// MaxNameLen bounds container names (far above any real use; keeps records sane).
const MaxNameLen = 255

// NormalizeName strips one optional leading "/" and checks the name:
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most MaxNameLen bytes.
func NormalizeName(s string) (string, error) {
	n := strings.TrimPrefix(s, "/")
	if !nameRe().MatchString(n) {
		return "", newErr("--name", s, "", "[a-zA-Z0-9][a-zA-Z0-9_.-]*")
	}
	if len(n) > MaxNameLen {
		return "", newErr("--name", s, "too long", "at most 255 characters")
	}
	return n, nil
}

// ValidateName checks a container name (see NormalizeName).
func ValidateName(s string) error {
	_, err := NormalizeName(s)
	return err
}
