package shim

import (
	"context"
	"errors"
	"fmt"

	"github.com/isulad-go/isulad/internal/logfile"
)

// LogFormatCRI makes the shim write the container's log in the CRI format (at the path the
// kubelet chose) instead of json-file; the kubelet rotates that log and asks for a reopen.
const LogFormatCRI = "cri"

// opReopenLog makes the shim reopen its log file (after the kubelet renamed it).
const opReopenLog = "reopen-log"

// openLog opens the container's log in the configured format.
func openLog(cfg Config) (*logfile.Writer, error) {
	switch cfg.LogFormat {
	case "", "json-file":
		return logfile.NewWriter(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFile)
	case LogFormatCRI:
		return logfile.NewCRIWriter(cfg.LogPath)
	}
	return nil, fmt.Errorf("--log-format %q: want json-file or %s", cfg.LogFormat, LogFormatCRI)
}

// ReopenLog makes the shim close its log and open the file at the log's path again.
func (c *Client) ReopenLog(ctx context.Context) error {
	r, err := c.call(ctx, request{Op: opReopenLog})
	if err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}
