package daemon

import (
	"path/filepath"

	"github.com/isulad-go/isulad/internal/statedir"
)

// ensureDirs makes or checks every directory the daemon keeps state in: root's and writable
// by no one else, or the daemon refuses to start (one line naming the directory). The daemon
// trusts what it finds there (container and host-channel records, runtime state), so a
// directory another user could write, made by someone else before the daemon first ran, must
// not be used.
func ensureDirs(cfg Config) error {
	for _, dir := range []string{
		cfg.Graph, filepath.Join(cfg.Graph, "containers"), filepath.Join(cfg.Graph, "hostchannels"),
		cfg.State, filepath.Join(cfg.State, "containers"), filepath.Join(cfg.State, "s"),
		filepath.Join(cfg.State, "runtime"), filepath.Join(cfg.State, "hostchannels"),
	} {
		if err := statedir.Ensure(dir); err != nil {
			return err
		}
	}
	return nil
}
