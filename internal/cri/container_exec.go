package cri

import (
	"bytes"
	"context"
	"errors"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// maxExecSyncOutput bounds what ExecSync keeps of each stream, as the kubelet bounds probes.
const maxExecSyncOutput = 16 << 20

// boundedBuffer keeps the first max bytes written and drops the rest.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// ExecSync runs a command in a running container and returns its output and exit code; a
// command still running after the timeout is reported as a deadline error.
func (s *Service) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.runningContainer(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	if len(r.Cmd) == 0 {
		return nil, gerr(invalidf("exec in container %s: no command given", c.ID))
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.Timeout)*time.Second)
		defer cancel()
	}
	stdout := &boundedBuffer{max: maxExecSyncOutput}
	stderr := &boundedBuffer{max: maxExecSyncOutput}
	code, err := s.engine.Exec(ctx, c.ID, ExecProcess{Args: r.Cmd, Streams: Streams{Stdout: stdout, Stderr: stderr}})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, gerr(errdefs.Errorf(errdefs.ErrDeadlineExceeded, "exec in container %s: command %q timed out after %ds", c.ID, r.Cmd, r.Timeout))
		}
		return nil, gerr(err)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}
