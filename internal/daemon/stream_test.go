package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/container"
)

// fakeStream is the server side of an Attach or Exec stream: Recv hands out msgs, then
// waits for the end of the call (as gRPC's does once the handler returned).
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs chan *apiv1.StreamIn
	sent chan *apiv1.StreamOut
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*apiv1.StreamIn, error) {
	select { // what the client sent comes first, even after the call's end
	case m := <-f.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-f.msgs:
		return m, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

func (f *fakeStream) Send(m *apiv1.StreamOut) error {
	select {
	case f.sent <- m:
	default:
	}
	return nil
}

// After attach and exec sessions whose input came when nobody would read it any more, no
// goroutine is left (issue 10, defect 13: the stdin pump stayed blocked writing into the
// never-closed pipe, one goroutine per session).
func TestStreamInputDoesNotLeak(t *testing.T) {
	store, err := container.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &container.Container{ID: strings.Repeat("ab", 32), Name: "stopped"}
	c.State.Status = string(container.Exited)
	store.Add(c)
	s := &service{d: &Daemon{store: store, shims: nil}}
	execConfig, _ := json.Marshal(types.ExecConfig{Cmd: []string{"cat"}, AttachStdin: true})
	session := func(first *apiv1.StreamIn, call func(*fakeStream) error) {
		ctx, cancel := context.WithCancel(context.Background())
		f := &fakeStream{ctx: ctx, msgs: make(chan *apiv1.StreamIn, 3), sent: make(chan *apiv1.StreamOut, 8)}
		f.msgs <- first
		f.msgs <- &apiv1.StreamIn{Msg: &apiv1.StreamIn_Stdin{Stdin: []byte("too late\n")}}
		if err := call(f); err == nil {
			t.Error("attach or exec to a stopped container accepted")
		}
		cancel() // the call is over
	}
	base := runtime.NumGoroutine()
	const n = 20
	for range n {
		session(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Exec{Exec: &apiv1.ExecRequest{Id: c.ID, ConfigJson: execConfig}}},
			func(f *fakeStream) error { return s.Exec(f) })
		session(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Attach{Attach: &apiv1.AttachRequest{Id: c.ID, Stdin: true}}},
			func(f *fakeStream) error { return s.Attach(f) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := runtime.NumGoroutine() - base; left > 0 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left after %d sessions:\n%s", left, 2*n, buf[:runtime.Stack(buf, true)])
	}
}

// An attached start that fails with --rm reports (and logs) a removal that failed too,
// instead of dropping its error (issue 10, defect 14, attach path).
func TestAttachReportsFailedAutoRemove(t *testing.T) {
	store, err := container.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A removal already in progress: the start fails, and so does the --rm removal.
	c := &container.Container{ID: strings.Repeat("cd", 32), Name: "going"}
	c.State.Status = string(container.Removing)
	c.HostConfig.AutoRemove = true
	store.Add(c)
	var logBuf strings.Builder
	var logMu sync.Mutex
	s := &service{d: &Daemon{store: store, log: slog.New(slog.NewTextHandler(&lockedWriter{mu: &logMu, w: &logBuf}, nil))}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeStream{ctx: ctx, msgs: make(chan *apiv1.StreamIn, 1), sent: make(chan *apiv1.StreamOut, 8)}
	f.msgs <- &apiv1.StreamIn{Msg: &apiv1.StreamIn_Attach{Attach: &apiv1.AttachRequest{Id: c.ID, Start: true}}}
	err = s.Attach(f)
	if err == nil || !strings.Contains(err.Error(), "being removed") || !strings.Contains(err.Error(), "removing the container (--rm)") {
		t.Errorf("attach: %v, want the start's and the removal's errors", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logBuf.String(), "already in progress") {
		t.Errorf("the failed removal is not logged: %q", logBuf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run in one call: an attach with a create request creates the container, says which it
// is before ready, starts it, and with --rm sends the exit once the container is removed.
// run -d in one call: Create with start.
func TestRunInOneCall(t *testing.T) {
	f := newFakeDaemon(t)
	s := &service{d: f.Daemon}
	req := types.CreateRequest{Name: "once"}
	req.Config.Image = "none"
	req.Config.Cmd = []string{"/bin/sh"}
	req.HostConfig.ExternalRootfs = f.rootfs
	req.HostConfig.AutoRemove = true
	b, _ := json.Marshal(req)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &fakeStream{ctx: ctx, msgs: make(chan *apiv1.StreamIn, 1), sent: make(chan *apiv1.StreamOut, 8)}
	st.msgs <- &apiv1.StreamIn{Msg: &apiv1.StreamIn_Attach{Attach: &apiv1.AttachRequest{Start: true, CreateJson: b}}}
	done := make(chan error, 1)
	go func() { done <- s.Attach(st) }()
	m := <-st.sent
	if m.GetCreated() == nil || len(m.GetCreated().Id) != 64 {
		t.Fatalf("first message %v, want created", m)
	}
	id := m.GetCreated().Id
	if m := <-st.sent; !m.GetReady() {
		t.Fatalf("second message %v, want ready", m)
	}
	if c, err := f.store.Get(id); err != nil || c.Status() != container.Running {
		t.Fatalf("after ready: %v %v", c, err)
	}
	f.w.Exit(id, 3)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := <-st.sent; m.GetExit() == nil || m.GetExit().Code != 3 {
		t.Fatalf("last message %v, want exit 3", m)
	}
	if f.store.Known(id) {
		t.Fatal("the --rm container is still there when its exit is sent")
	}

	// A create needs start and no id.
	st = &fakeStream{ctx: ctx, msgs: make(chan *apiv1.StreamIn, 1), sent: make(chan *apiv1.StreamOut, 8)}
	st.msgs <- &apiv1.StreamIn{Msg: &apiv1.StreamIn_Attach{Attach: &apiv1.AttachRequest{CreateJson: b}}}
	if err := s.Attach(st); err == nil || len(f.store.List()) != 0 {
		t.Fatalf("attach with a create and no start: %v, %d containers", err, len(f.store.List()))
	}

	req.HostConfig.AutoRemove = false
	b, _ = json.Marshal(req)
	resp, err := s.Create(ctx, &apiv1.CreateRequest{ConfigJson: b, Start: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.store.Get(resp.Id); err != nil || c.Status() != container.Running {
		t.Fatalf("create with start: %v %v", c, err)
	}
}
