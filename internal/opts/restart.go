package opts

import (
	"strconv"
	"strings"

	"github.com/isulad-go/isulad/api/types"
)

const restartWant = "no, always, on-failure[:max-retries], unless-stopped or on-reboot"

// Restart policy names.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
	RestartOnReboot      = "on-reboot"
)

// ParseRestartPolicy parses --restart: no, always, on-failure[:N], unless-stopped,
// on-reboot (case-sensitive, as docker). The empty string is "no". A maximum retry count is
// allowed with on-failure only, as a decimal number from 0 to 2147483647.
func ParseRestartPolicy(s string) (types.RestartPolicy, error) {
	if s == "" {
		return types.RestartPolicy{Name: RestartNo}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	switch name {
	case RestartNo, RestartAlways, RestartUnlessStopped, RestartOnReboot:
		if hasCount {
			return types.RestartPolicy{}, newErr("--restart", s, "a maximum retry count is only allowed with on-failure", restartWant)
		}
		return types.RestartPolicy{Name: name}, nil
	case RestartOnFailure:
		p := types.RestartPolicy{Name: name}
		if hasCount {
			if !isDigits(count) || len(count) > 10 {
				return types.RestartPolicy{}, newErr("--restart", s, "bad maximum retry count "+quote(count), restartWant)
			}
			n, err := strconv.ParseInt(count, 10, 32)
			if err != nil {
				return types.RestartPolicy{}, newErr("--restart", s, "maximum retry count too large", restartWant)
			}
			p.MaximumRetryCount = int(n)
		}
		return p, nil
	}
	return types.RestartPolicy{}, newErr("--restart", s, "unknown policy", restartWant)
}

// ValidateRestartPolicy checks a policy as it comes from the API.
func ValidateRestartPolicy(p types.RestartPolicy) error {
	switch p.Name {
	case "", RestartNo, RestartAlways, RestartUnlessStopped, RestartOnReboot:
		if p.MaximumRetryCount != 0 {
			return invalidf("invalid --restart %q: a maximum retry count is only allowed with on-failure", p.Name)
		}
	case RestartOnFailure:
		if p.MaximumRetryCount < 0 {
			return invalidf("invalid --restart on-failure:%d: the maximum retry count must not be negative", p.MaximumRetryCount)
		}
	default:
		return newErr("--restart", p.Name, "unknown policy", restartWant)
	}
	return nil
}
