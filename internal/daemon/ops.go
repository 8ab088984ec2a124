package daemon

import (
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// opsService is the gRPC edge of the Ops service (api/v1/ops.proto): cp, stats, events and
// update. Each call's edge lives beside its daemon logic (cp.go, stats.go, events.go,
// update.go).
type opsService struct {
	apiv1.UnimplementedOpsServer
	d *Daemon
}
