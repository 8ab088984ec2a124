package daemon

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"sort"
	"time"
)

// recursiveReadOnlyRuntimes are the configured runtimes whose `features` (runc 1.1+, the OCI
// runtime features document) list the "rro" mount option: they make a read-only bind mount
// read-only below it too (mount_setattr). A runtime without the command, or that fails, has
// not got it.
func (d *Daemon) recursiveReadOnlyRuntimes() []string {
	var out []string
	for name, rc := range d.cfg.Runtimes {
		opts, err := runtimeMountOptions(rc.Path)
		if err != nil {
			d.log.Debug("runtime features", "runtime", name, "err", err)
			continue
		}
		if slices.Contains(opts, "rro") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func runtimeMountOptions(path string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "features").Output()
	if err != nil {
		return nil, err
	}
	var f struct {
		MountOptions []string `json:"mountOptions"`
	}
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, err
	}
	return f.MountOptions, nil
}
