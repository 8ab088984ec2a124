package opts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// ParseEnv applies docker's -e semantics to a list: "KEY=VALUE" is kept as given, a bare
// "KEY" takes the value of KEY in the client's environment, or is dropped when KEY is not
// set. An empty name, a name with whitespace or "=" trouble, or a NUL byte is refused.
func ParseEnv(list []string) ([]string, error) {
	return parseEnv(list, os.LookupEnv)
}

// ParseEnvLookup is ParseEnv with lookup as the client's environment: the daemon parses a
// front's command line with the environment the front sent, never its own.
func ParseEnvLookup(list []string, lookup func(string) (string, bool)) ([]string, error) {
	return parseEnv(list, lookup)
}

func parseEnv(list []string, lookup func(string) (string, bool)) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, e := range list {
		k, v, hasValue := strings.Cut(e, "=")
		if err := checkEnvName(k); err != nil {
			return nil, newErr("--env", e, err.Error(), "KEY=VALUE or KEY")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, newErr("--env", e, "the value contains a NUL byte", "KEY=VALUE or KEY")
		}
		if hasValue {
			out = append(out, e)
			continue
		}
		if val, ok := lookup(k); ok {
			out = append(out, k+"="+val)
		}
	}
	return out, nil
}

func checkEnvName(k string) error {
	switch {
	case k == "":
		return errors.New("the variable name is empty")
	case strings.IndexFunc(k, unicode.IsSpace) >= 0:
		return errors.New("the variable name contains whitespace")
	case strings.IndexByte(k, 0) >= 0:
		return errors.New("the variable name contains a NUL byte")
	}
	return nil
}

// ValidateEnv checks a final environment list (as stored): every entry is KEY=VALUE with a
// valid KEY.
func ValidateEnv(list []string) error {
	for _, e := range list {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return newErr("--env", e, "no value", "KEY=VALUE")
		}
		if err := checkEnvName(k); err != nil {
			return newErr("--env", e, err.Error(), "KEY=VALUE")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return newErr("--env", e, "the value contains a NUL byte", "KEY=VALUE")
		}
	}
	return nil
}

// MaxEnvFileLine is the longest line ParseEnvFile reads.
const MaxEnvFileLine = 1 << 20

// ParseEnvFile reads an --env-file with docker's rules: one KEY=VALUE per line, leading
// whitespace ignored, blank lines and lines starting with "#" skipped, the value taken
// verbatim (no quotes processing), a bare KEY taking the client's environment value (dropped
// when unset). Errors name the file and line.
func ParseEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --env-file %q: %v", path, unwrapPathErr(err))
	}
	defer f.Close()
	return parseEnvReader(f, path, os.LookupEnv)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func parseEnvReader(r io.Reader, name string, lookup func(string) (string, bool)) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), MaxEnvFileLine)
	var out []string
	lineNo := 0
	fail := func(format string, args ...any) error {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --env-file %s:%d: %s", name, lineNo, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		lineNo++
		b := sc.Bytes()
		if lineNo == 1 {
			b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF")) // UTF-8 BOM
		}
		if !utf8.Valid(b) {
			return nil, fail("invalid UTF-8")
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			return nil, fail("contains a NUL byte")
		}
		k, v, hasValue := strings.Cut(line, "=")
		if err := checkEnvName(k); err != nil {
			return nil, fail("%v in %q (want KEY=VALUE or KEY)", err, line)
		}
		if hasValue {
			out = append(out, k+"="+v)
		} else if val, ok := lookup(k); ok {
			out = append(out, k+"="+val)
		}
	}
	if err := sc.Err(); err != nil {
		lineNo++
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail("line longer than %d bytes", MaxEnvFileLine)
		}
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --env-file %s: %v", name, err)
	}
	return out, nil
}
