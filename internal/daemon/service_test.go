package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// The gRPC edge over the fake world: requests decode, errors carry their codes.
func TestServiceCalls(t *testing.T) {
	f := newFakeDaemon(t)
	s := &service{d: f.Daemon}
	ctx := context.Background()
	req := types.CreateRequest{Name: "svc"}
	req.Config.Image, req.Config.Cmd, req.HostConfig.ExternalRootfs = "none", []string{"sleep", "9"}, f.rootfs
	body, _ := json.Marshal(req)
	cr, err := s.Create(ctx, &apiv1.CreateRequest{ConfigJson: body})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, &apiv1.CreateRequest{ConfigJson: []byte(`{"Nmae":"x"}`)}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := s.Start(ctx, &apiv1.IDRequest{Id: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Fatalf("start of a missing container: %v", err)
	}
	if _, err := s.Start(ctx, &apiv1.IDRequest{Id: "svc"}); err != nil {
		t.Fatal(err)
	}
	lr, err := s.List(ctx, &apiv1.ListRequest{Filters: []*apiv1.Filter{{Key: "status", Value: "running"}}})
	var rows []types.Container
	if err != nil || json.Unmarshal(lr.ContainersJson, &rows) != nil || len(rows) != 1 || rows[0].ID != cr.Id {
		t.Fatalf("list: %v %s", err, lr.GetContainersJson())
	}
	if _, err := s.List(ctx, &apiv1.ListRequest{Filters: []*apiv1.Filter{{Key: "color", Value: "red"}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown filter: %v", err)
	}
	if _, err := s.Remove(ctx, &apiv1.RemoveRequest{Id: "svc"}); status.Code(err) != status.Code(gerr(errConflict)) {
		t.Fatalf("rm of a running container: %v", err)
	}
	for _, call := range []func() error{
		func() error { _, err := s.Pause(ctx, &apiv1.IDRequest{Id: "svc"}); return err },
		func() error { _, err := s.Unpause(ctx, &apiv1.IDRequest{Id: "svc"}); return err },
		func() error { _, err := s.Rename(ctx, &apiv1.RenameRequest{Id: "svc", NewName: "svc2"}); return err },
		func() error { _, err := s.Top(ctx, &apiv1.TopRequest{Id: "svc2", PsArgs: []string{"-o", "pid"}}); return err },
		func() error { _, err := s.Restart(ctx, &apiv1.StopRequest{Id: "svc2", Timeout: 1}); return err },
		func() error { _, err := s.Version(ctx, &apiv1.Empty{}); return err },
		func() error { _, err := s.Info(ctx, &apiv1.Empty{}); return err },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	waited := make(chan *apiv1.WaitResponse, 1)
	go func() {
		w, _ := s.Wait(ctx, &apiv1.IDRequest{Id: "svc2"})
		waited <- w
	}()
	if _, err := s.Kill(ctx, &apiv1.KillRequest{Id: "svc2", Signal: "SIGTERM"}); err != nil {
		t.Fatal(err)
	}
	if w := <-waited; w.GetExitCode() != 143 {
		t.Fatalf("wait: %v", w)
	}
	ir, err := s.Inspect(ctx, &apiv1.IDRequest{Id: cr.Id})
	var j types.ContainerJSON
	if err != nil || json.Unmarshal(ir.Json, &j) != nil || j.Name != "/svc2" || j.State.Status != "exited" {
		t.Fatalf("inspect: %v %s", err, ir.GetJson())
	}
	if _, err := s.Stop(ctx, &apiv1.StopRequest{Id: "svc2", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, &apiv1.RemoveRequest{Id: "svc2", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect(ctx, &apiv1.IDRequest{Id: cr.Id}); status.Code(err) != codes.NotFound {
		t.Fatalf("inspect after rm: %v", err)
	}
}

// removeCgroupTree removes a tree of empty directories deepest first, and reports one it
// cannot remove instead of pretending.
func TestRemoveCgroupTree(t *testing.T) {
	top := filepath.Join(t.TempDir(), "ctr")
	os.MkdirAll(filepath.Join(top, "init.scope", "deeper"), 0o755)
	os.MkdirAll(filepath.Join(top, "system.slice"), 0o755)
	if err := removeCgroupTree(top); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(top); !os.IsNotExist(err) {
		t.Fatalf("left: %v", err)
	}
	if err := removeCgroupTree(top); err != nil {
		t.Fatalf("a missing tree: %v", err)
	}
	os.MkdirAll(top, 0o755)
	os.WriteFile(filepath.Join(top, "busy"), nil, 0o600) // rmdir fails as on a cgroup with a process
	if err := removeCgroupTree(top); err == nil {
		t.Fatalf("a directory that cannot be removed was reported removed")
	}
}
