package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/errdefs/grpcerr"
	"github.com/isulad-go/isulad/internal/logfile"
)

// service is the gRPC edge: it decodes requests, calls the daemon, and turns errors into
// status codes. No lifecycle logic lives here.
type service struct {
	apiv1.UnimplementedContainersServer
	d *Daemon
}

func gerr(err error) error {
	if err == nil {
		return nil
	}
	return grpcerr.ToGRPC(err)
}

func (s *service) get(ref string) (*container.Container, error) {
	return s.d.store.Get(ref)
}

// onContainer runs op on the container ref names: the calls that answer Empty.
func (s *service) onContainer(ref string, op func(*container.Container) error) (*apiv1.Empty, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, gerr(err)
	}
	return &apiv1.Empty{}, gerr(op(c))
}

func (s *service) Create(ctx context.Context, r *apiv1.CreateRequest) (*apiv1.CreateResponse, error) {
	var req types.CreateRequest
	if err := decodeStrict(r.ConfigJson, &req); err != nil {
		return nil, gerr(fmt.Errorf("create request: %v: %w", err, errInvalid))
	}
	c, warnings, err := s.d.Create(ctx, &req)
	if err != nil {
		return nil, gerr(err)
	}
	if r.Start {
		// run -d in one call. A failed start leaves the container created, as a Start
		// call after the Create would.
		if err := s.d.Start(ctx, c, nil); err != nil {
			return nil, gerr(err)
		}
	}
	return &apiv1.CreateResponse{Id: c.ID, Warnings: warnings}, nil
}

// decodeStrict decodes JSON, refusing unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

func (s *service) Start(ctx context.Context, r *apiv1.IDRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Start(ctx, c, nil)
	})
}

func (s *service) Stop(ctx context.Context, r *apiv1.StopRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		t := int(r.Timeout)
		if r.Force {
			t = 0
		}
		return s.d.Stop(ctx, c, t)
	})
}

func (s *service) Restart(ctx context.Context, r *apiv1.StopRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Restart(ctx, c, int(r.Timeout))
	})
}

func (s *service) Kill(ctx context.Context, r *apiv1.KillRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Kill(ctx, c, r.Signal)
	})
}

func (s *service) Remove(ctx context.Context, r *apiv1.RemoveRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Remove(ctx, c, r.Force)
	})
}

func (s *service) List(ctx context.Context, r *apiv1.ListRequest) (*apiv1.ListResponse, error) {
	f := map[string][]string{}
	for _, x := range r.Filters {
		f[x.Key] = append(f[x.Key], x.Value)
	}
	rows, err := s.d.List(r.All, f)
	if err != nil {
		return nil, gerr(err)
	}
	data, _ := json.Marshal(rows)
	return &apiv1.ListResponse{ContainersJson: data}, nil
}

func (s *service) Inspect(ctx context.Context, r *apiv1.IDRequest) (*apiv1.JSONResponse, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, gerr(err)
	}
	data, _ := json.Marshal(s.d.Inspect(c))
	return &apiv1.JSONResponse{Json: data}, nil
}

func (s *service) Wait(ctx context.Context, r *apiv1.IDRequest) (*apiv1.WaitResponse, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, gerr(err)
	}
	run := c.CurrentRun()
	if st := c.Status(); run != nil && (st == container.Running || st == container.Paused) {
		select {
		case <-run.Exited:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &apiv1.WaitResponse{ExitCode: int32(c.Snapshot().ExitCode)}, nil
}

func (s *service) Pause(ctx context.Context, r *apiv1.IDRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Pause(ctx, c)
	})
}

func (s *service) Unpause(ctx context.Context, r *apiv1.IDRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Unpause(ctx, c)
	})
}

func (s *service) Rename(ctx context.Context, r *apiv1.RenameRequest) (*apiv1.Empty, error) {
	return s.onContainer(r.Id, func(c *container.Container) error {
		return s.d.Rename(c, r.NewName)
	})
}

func (s *service) Top(ctx context.Context, r *apiv1.TopRequest) (*apiv1.TopResponse, error) {
	c, err := s.get(r.Id)
	if err != nil {
		return nil, gerr(err)
	}
	titles, rows, err := s.d.Top(ctx, c, r.PsArgs)
	if err != nil {
		return nil, gerr(err)
	}
	resp := &apiv1.TopResponse{Titles: titles}
	for _, row := range rows {
		resp.Processes = append(resp.Processes, &apiv1.TopRow{Fields: row})
	}
	return resp, nil
}

func (s *service) Version(ctx context.Context, _ *apiv1.Empty) (*apiv1.VersionResponse, error) {
	return &apiv1.VersionResponse{Version: Version, GitCommit: GitCommit, GoVersion: runtime.Version(),
		ApiVersion: "1.0", OsArch: runtime.GOOS + "/" + runtime.GOARCH}, nil
}

func (s *service) Info(ctx context.Context, _ *apiv1.Empty) (*apiv1.JSONResponse, error) {
	data, _ := json.Marshal(s.d.Info())
	return &apiv1.JSONResponse{Json: data}, nil
}

func (s *service) Logs(r *apiv1.LogsRequest, srv apiv1.Containers_LogsServer) error {
	c, err := s.get(r.Id)
	if err != nil {
		return gerr(err)
	}
	tail := int(r.Tail)
	if r.Tail < 0 {
		tail = -1
	}
	ctx := srv.Context()
	if r.Follow {
		// Stop following once the container has stopped and its log is drained.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() { // a daemon stop ends the following too (EndStreams)
			select {
			case <-s.d.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		go func() {
			for {
				st := c.Status()
				if st != container.Running && st != container.Paused && st != container.Restarting {
					time.Sleep(300 * time.Millisecond)
					cancel()
					return
				}
				if run := c.CurrentRun(); run != nil {
					select {
					case <-run.Exited:
					case <-ctx.Done():
						return
					}
				} else {
					select {
					case <-time.After(500 * time.Millisecond):
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	err = logfile.Read(ctx, s.d.logPath(c), tail, r.Follow, func(e logfile.Entry) error {
		return srv.Send(&apiv1.LogEntry{Stream: e.Stream, Data: []byte(e.Log), TimeUnixNano: e.Time.UnixNano()})
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return gerr(err)
	}
	return nil
}

// streamWriter sends one kind of output over a gRPC stream; sends are serialised.
type streamWriter struct {
	mu     *sync.Mutex
	send   func(*apiv1.StreamOut) error
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	m := &apiv1.StreamOut{Msg: &apiv1.StreamOut_Stdout{Stdout: b}}
	if w.stderr {
		m = &apiv1.StreamOut{Msg: &apiv1.StreamOut_Stderr{Stderr: b}}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(m); err != nil {
		return 0, err
	}
	return len(p), nil
}

// relayInput forwards a stream's client messages after the first: stdin bytes (with stdin)
// to the returned reader, resizes to resize, close_stdin as the reader's EOF. Call stop once
// the call is over: input that came when nobody reads any more (the process exited) then
// fails instead of blocking the relay for ever, and a reader still waiting gets an error.
func relayInput(recv func() (*apiv1.StreamIn, error), withStdin bool, resize func(w, h uint16)) (stdin io.Reader, stop func()) {
	var pr *io.PipeReader
	var pw *io.PipeWriter
	if withStdin {
		pr, pw = io.Pipe()
		stdin = pr
	}
	go pumpInput(recv, pw, resize)
	return stdin, func() {
		if pr != nil {
			pr.CloseWithError(errStreamOver)
		}
	}
}

var errStreamOver = errors.New("the stream is over")

// pumpInput reads client messages after the first: stdin bytes go to the pipe, resizes to
// fn, close_stdin closes the pipe.
func pumpInput(recv func() (*apiv1.StreamIn, error), stdin *io.PipeWriter, resize func(w, h uint16)) {
	defer func() {
		if stdin != nil {
			stdin.Close()
		}
	}()
	for {
		m, err := recv()
		if err != nil {
			return
		}
		switch x := m.Msg.(type) {
		case *apiv1.StreamIn_Stdin:
			if stdin != nil {
				if _, err := stdin.Write(x.Stdin); err != nil {
					return
				}
			}
		case *apiv1.StreamIn_CloseStdin:
			if stdin != nil {
				stdin.Close()
				stdin = nil
			}
		case *apiv1.StreamIn_Resize:
			if resize != nil {
				resize(uint16(x.Resize.Width), uint16(x.Resize.Height))
			}
		}
	}
}

func (s *service) Attach(srv apiv1.Containers_AttachServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	ar := first.GetAttach()
	if ar == nil {
		return gerr(fmt.Errorf("attach: the first message must be an attach request: %w", errInvalid))
	}
	var c *container.Container
	var mu sync.Mutex
	if ar.CreateJson != nil {
		// run in one call: create, then attach and start as below.
		if !ar.Start || ar.Id != "" {
			return gerr(fmt.Errorf("attach: a create needs start and no id: %w", errInvalid))
		}
		var req types.CreateRequest
		if err := decodeStrict(ar.CreateJson, &req); err != nil {
			return gerr(fmt.Errorf("create request: %v: %w", err, errInvalid))
		}
		var warnings []string
		if c, warnings, err = s.d.Create(srv.Context(), &req); err != nil {
			return gerr(err)
		}
		mu.Lock()
		err = srv.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Created{Created: &apiv1.CreateResponse{Id: c.ID, Warnings: warnings}}})
		mu.Unlock()
		if err != nil {
			// The client went away before it learnt the id: a --rm container goes,
			// another stays created (as when a client dies between create and start).
			s.autoRemove(c)
			return err
		}
	} else if c, err = s.get(ar.Id); err != nil {
		return gerr(err)
	}
	stdout := streamWriter{mu: &mu, send: srv.Send}
	stderr := streamWriter{mu: &mu, send: srv.Send, stderr: true}
	ctx := srv.Context()
	resize := func(w, h uint16) {
		if cl := s.d.getShim(c.ID); cl != nil {
			cl.Resize(ctx, w, h)
		}
	}
	stdinR, stopInput := relayInput(srv.Recv, ar.Stdin, resize)
	defer stopInput()
	sendExit := func(code int, msg string) error {
		mu.Lock()
		defer mu.Unlock()
		return srv.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Exit{Exit: &apiv1.Exit{Code: int32(code), Error: msg}}})
	}
	done := make(chan error, 1)
	var run *container.Run
	if ar.Start {
		st := &Streams{Stdin: stdinR, Stdout: stdout, Stderr: stderr, Width: uint16(ar.Width), Height: uint16(ar.Height), Done: done}
		defer releaseAfterClient(srv, st.Release)
		if err := s.d.Start(ctx, c, st); err != nil {
			// Like docker: a container that could not start is still there; with --rm
			// it goes.
			rmErr := s.autoRemove(c)
			var se *StartError
			if errors.As(err, &se) {
				msg := se.Error()
				if rmErr != nil {
					msg += "; " + rmErr.Error()
				}
				return sendExit(se.Code, msg)
			}
			if rmErr != nil {
				err = fmt.Errorf("%w; %v", err, rmErr)
			}
			return gerr(err)
		}
		run = c.CurrentRun()
	} else {
		if st := c.Status(); st != container.Running && st != container.Paused {
			return gerr(fmt.Errorf("you cannot attach to a stopped container %s, start it first: %w", c.Name, errConflict))
		}
		run = c.CurrentRun()
		cl := s.d.getShim(c.ID)
		if cl == nil {
			return gerr(fmt.Errorf("container %s has no shim connection: %w", c.Name, errConflict))
		}
		go func() { done <- cl.Attach(ctx, stdinR, stdout, stderr) }()
		if ar.Width > 0 && ar.Height > 0 {
			cl.Resize(ctx, uint16(ar.Width), uint16(ar.Height))
		}
	}
	mu.Lock()
	srv.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Ready{Ready: true}})
	mu.Unlock()
	var streamErr error
	select {
	case streamErr = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if run != nil {
		select {
		case <-run.Done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	msg := ""
	if streamErr != nil {
		// The output did not reach its end (the shim went away): say so rather than exit
		// as if it were complete.
		s.d.log.Warn("attach: output stream ended early", "id", c.ID, "err", streamErr)
		msg = "the container's output may be incomplete: " + streamErr.Error()
	}
	return sendExit(c.Snapshot().ExitCode, msg)
}

// hangupWaiter is a stream that knows when its client has gone (the light protocol's
// connection, lightAttach): it calls f then, or a little after the stream ended.
type hangupWaiter interface{ afterHangup(f func()) }

// releaseAfterClient calls release once srv's client has gone if srv can tell (the light
// front exits as soon as it read the exit), otherwise now, as the stream ends.
func releaseAfterClient(srv any, release func()) {
	if h, ok := srv.(hangupWaiter); ok {
		h.afterHangup(release)
		return
	}
	release()
}

// autoRemove removes a container with --rm whose attached start failed; the error, if
// any, is logged and returned for the client's message.
func (s *service) autoRemove(c *container.Container) error {
	if !c.HostConfig.AutoRemove {
		return nil
	}
	if err := s.d.Remove(context.Background(), c, true); err != nil {
		s.d.log.Error("removing a container with --rm whose start failed", "id", c.ID, "err", err)
		return fmt.Errorf("removing the container (--rm): %w", err)
	}
	return nil
}

func (s *service) Exec(srv apiv1.Containers_ExecServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	er := first.GetExec()
	if er == nil {
		return gerr(fmt.Errorf("exec: the first message must be an exec request: %w", errInvalid))
	}
	c, err := s.get(er.Id)
	if err != nil {
		return gerr(err)
	}
	var ec types.ExecConfig
	if err := decodeStrict(er.ConfigJson, &ec); err != nil {
		return gerr(fmt.Errorf("exec request: %v: %w", err, errInvalid))
	}
	var mu sync.Mutex
	resizeCh := make(chan [2]uint16, 4)
	if er.Width > 0 && er.Height > 0 {
		resizeCh <- [2]uint16{uint16(er.Width), uint16(er.Height)}
	}
	stdinR, stopInput := relayInput(srv.Recv, ec.AttachStdin, func(w, h uint16) {
		select {
		case resizeCh <- [2]uint16{w, h}:
		default:
		}
	})
	defer stopInput()
	mu.Lock()
	srv.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Ready{Ready: true}})
	mu.Unlock()
	code, err := s.d.Exec(srv.Context(), c, ec, ExecStreams{
		Stdin: stdinR, Stdout: streamWriter{mu: &mu, send: srv.Send}, Stderr: streamWriter{mu: &mu, send: srv.Send, stderr: true},
		Resize: resizeCh, Width: uint16(er.Width), Height: uint16(er.Height),
	})
	msg := ""
	if err != nil {
		if errdefs.Kind(err) != nil {
			return gerr(err)
		}
		code, msg = startCode(err.Error()), err.Error()
		if code == 125 {
			code = 126
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return srv.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Exit{Exit: &apiv1.Exit{Code: int32(code), Error: msg}}})
}
