// Package container holds the container record, its state machine and the on-disk store.
package container

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/isulad-go/isulad/api/types"
)

// Status is one state of the container state machine.
type Status string

const (
	Created    Status = "created"
	Running    Status = "running"
	Paused     Status = "paused"
	Restarting Status = "restarting"
	Removing   Status = "removing"
	Exited     Status = "exited"
	Dead       Status = "dead"
)

// Container is one container's record. Fields below mu are protected by it; Op serialises
// lifecycle operations (start, stop, remove...) on this container.
type Container struct {
	Op sync.Mutex `json:"-"`
	mu sync.Mutex
	// saveMu orders record writes against the removal of the directory; deleted is set
	// once it is gone, so a late save cannot bring a removed container back.
	saveMu  sync.Mutex
	deleted bool

	ID          string           `json:"ID"`
	Name        string           `json:"Name"`
	Created     time.Time        `json:"Created"`
	Config      types.Config     `json:"Config"`
	HostConfig  types.HostConfig `json:"HostConfig"`
	Rootfs      string           `json:"Rootfs"`
	Runtime     string           `json:"Runtime"`
	CgroupsPath string           `json:"CgroupsPath"`
	SystemdInit bool             `json:"SystemdInit"`
	StopSignal  string           `json:"StopSignal"`
	// Image is the image ID a container runs from (empty with --external-rootfs DIR none);
	// Layers are its layers' diff IDs, base first, which the image store keeps while the
	// container exists.
	Image  string   `json:"Image,omitempty"`
	Layers []string `json:"Layers,omitempty"`
	// ImageMounts are images mounted read-only into the container (the CRI's image
	// volumes); like Layers, their layers are kept while the container exists.
	ImageMounts []ImageMount `json:"ImageMounts,omitempty"`
	// CRILog is set for a container made through the CRI: the shim writes its log there, in
	// the CRI format, instead of the json-file log.
	CRILog string `json:"CRILog,omitempty"`

	State        types.State `json:"State"`
	RestartCount int         `json:"RestartCount"`
	// ManualStop is set when the user stopped or killed the container: no restart policy
	// applies to the exit that follows. Cleared by a user start.
	ManualStop bool `json:"ManualStop"`
	// StartedOnce tells unless-stopped/always after a daemon restart whether to start.
	StartedOnce bool `json:"StartedOnce"`

	// NoShimYet is set for a container this daemon created and has not launched a shim
	// for (not stored): no shim or runtime state of an earlier run can be left to wait for.
	NoShimYet bool `json:"-"`

	// run is the current run's bookkeeping (not stored).
	run *Run
}

// Run tracks one start of a container: Exited is closed when the exit has been recorded,
// Done when what follows it (auto-remove, restart decision) has finished.
type Run struct {
	Exited chan struct{}
	Done   chan struct{}

	// Holds by the clients an exit of this run is sent to (Hold), and what waits for the
	// last of them to let go (AfterHolds).
	holdMu    sync.Mutex
	holds     int
	afterHold []func()
}

// Hold registers a client the exit of this run goes to; the returned func lets go of it
// (once; later calls do nothing). Work that must not compete with the client's last
// moments (daemon: the spare shim of a --rm container) waits for every hold (AfterHolds).
func (r *Run) Hold() (release func()) {
	r.holdMu.Lock()
	r.holds++
	r.holdMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.holdMu.Lock()
			r.holds--
			var fs []func()
			if r.holds == 0 {
				fs, r.afterHold = r.afterHold, nil
			}
			r.holdMu.Unlock()
			for _, f := range fs {
				f()
			}
		})
	}
}

// AfterHolds calls f once no hold is left: at once when there is none, otherwise when the
// last one is let go (in that caller's goroutine).
func (r *Run) AfterHolds(f func()) {
	r.holdMu.Lock()
	if r.holds > 0 {
		r.afterHold = append(r.afterHold, f)
		r.holdMu.Unlock()
		return
	}
	r.holdMu.Unlock()
	f()
}

// NewRun prepares the bookkeeping for a new start and returns it.
func (c *Container) NewRun() *Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.run = &Run{Exited: make(chan struct{}), Done: make(chan struct{})}
	return c.run
}

// CurrentRun returns the bookkeeping of the latest start, or nil.
func (c *Container) CurrentRun() *Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run
}

// Lock and Unlock guard the record's fields.
func (c *Container) Lock()   { c.mu.Lock() }
func (c *Container) Unlock() { c.mu.Unlock() }

// Snapshot returns a copy of the state under the lock.
func (c *Container) Snapshot() types.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.State
}

// Status returns the current status.
func (c *Container) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status(c.State.Status)
}

// transitions lists which status may follow which; anything else is a bug or a race that
// the caller must report, not paper over. No status follows itself: a second report of one
// event (an exit handled twice) is an error the caller sees (ErrTransition.NoChange).
//
//	created    -> running (start), exited (its start failed after it ran), removing
//	running    -> paused, exited, removing (a kill that was seen but not yet recorded)
//	paused     -> running (unpause), exited, removing
//	restarting -> running (the policy's start), exited (stopped, or the start failed), removing
//	exited     -> running (start), restarting (the policy's back-off), removing
//	removing   -> dead (the removal failed)
//	dead       -> removing (rm -f again)
var transitions = map[Status][]Status{
	Created:    {Running, Exited, Removing},
	Running:    {Paused, Exited, Removing},
	Paused:     {Running, Exited, Removing},
	Restarting: {Running, Exited, Removing},
	Exited:     {Running, Restarting, Removing},
	Removing:   {Dead},
	Dead:       {Removing},
}

// CanTransition reports whether the state machine allows from -> to.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ErrTransition is returned for an illegal state change.
type ErrTransition struct {
	ID       string
	From, To Status
}

func (e *ErrTransition) Error() string {
	if e.NoChange() {
		return fmt.Sprintf("container %s is already %s", ShortID(e.ID), e.To)
	}
	return fmt.Sprintf("container %s: cannot go from %s to %s", ShortID(e.ID), e.From, e.To)
}

// NoChange tells a repeated event (the status asked for is the current one) from a real
// conflict.
func (e *ErrTransition) NoChange() bool { return e.From == e.To }

// SetStatusLocked changes the status, checking the transition. Callers hold the lock.
func (c *Container) SetStatusLocked(to Status) error {
	from := Status(c.State.Status)
	if !CanTransition(from, to) {
		return &ErrTransition{ID: c.ID, From: from, To: to}
	}
	c.State.Status = string(to)
	c.State.Running = to == Running || to == Paused
	c.State.Paused = to == Paused
	c.State.Restarting = to == Restarting
	c.State.Dead = to == Dead
	return nil
}

// SetRunningLocked records a successful start.
func (c *Container) SetRunningLocked(pid int, at time.Time) error {
	if err := c.SetStatusLocked(Running); err != nil {
		return err
	}
	c.State.Pid = pid
	c.State.StartedAt = at
	c.State.ExitCode = 0
	c.State.Error = ""
	c.State.OOMKilled = false
	c.StartedOnce = true
	return nil
}

// SetExitedLocked records an exit.
func (c *Container) SetExitedLocked(code int, at time.Time, oom bool) error {
	if err := c.SetStatusLocked(Exited); err != nil {
		return err
	}
	c.State.Pid = 0
	c.State.ExitCode = code
	c.State.FinishedAt = at
	c.State.OOMKilled = oom
	return nil
}

// ShortID is the 12-character form of an ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// CommandLine is the container's command as ps shows it.
func (c *Container) CommandLine() string {
	return strings.Join(c.Config.Cmd, " ")
}

// ImageMount is an image mounted read-only at Target in a container: the whole image, or its
// directory SubPath.
type ImageMount struct {
	Image   string   `json:"Image"`  // image ID
	Layers  []string `json:"Layers"` // diff IDs, base first
	Target  string   `json:"Target"`
	SubPath string   `json:"SubPath,omitempty"`
}
