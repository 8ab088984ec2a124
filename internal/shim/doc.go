// Package shim is isulad-shim, the small per-container process that runs a
// container through an OCI runtime binary (runc, crun) and supervises it
// while the daemon comes and goes, and the daemon's client of it.
//
// # The shim
//
// The daemon starts one shim per container (Launch) before the container
// exists. The shim is a child subreaper; one reaper loop collects every child
// (runtime invocations, the container's init once the runtime has exited,
// exec'd processes). It holds the container's stdio (pipes, or the pty master
// received on a --console-socket), always drains the output into the
// json-file log (internal/logfile) and copies it to attached clients. A
// client more than maxQueued (1 MiB) behind makes the output wait for room:
// a slow reader paces the container (its writes block, as with docker's
// attach) and it and the log get every byte; a client that goes away (its
// connection closes) is dropped at once and the output goes on. After the
// exit the remaining output is flushed to a client as long as it keeps
// reading; one that takes nothing for flushTimeout (5s) is dropped. At
// startup the shim removes exit.json and init.pid
// left by a previous run, and refuses to start if another shim answers on its
// socket. When init exits the shim writes exit.json in its
// state directory (atomically), deletes the runtime's state, drains the
// remaining output, ends the attached streams, answers the waiters and exits,
// whether or not a daemon is connected.
//
// # The light shim
//
// For a detached start the daemon adopts isulad-shim-lite (cmd/isulad-shim-lite, C) instead:
// it sets up and starts the container as this package's shim does, holds the daemon's wait
// requests, and at anything else execs this program with --takeover-fd and a description of
// its state (takeover.go), in the same process. A config it does not serve it hands over
// at once with --adopted. Spares keeps a spare of each.
//
// # Protocol
//
// The shim listens on a unix socket (mode 0600; peers other than uid 0 are
// refused, SO_PEERCRED). Every request is its own connection. The client
// writes one JSON line (request) naming the operation; after it both sides
// exchange frames:
//
//	[type: 1 byte][length: uint32 big endian][payload: length bytes]
//
// Client to shim: 'i' stdin bytes, 'c' stdin EOF, 'w' resize (width,
// height as big-endian uint16). Shim to client: 'o' stdout bytes, 'e' stderr
// bytes, 'k' ready, 's' started (attach with start), 'r' result (JSON, always
// the last frame; "error" set on failure). Operations:
//
//	start     runtime run --detach; result {pid} or {error}
//	attach    'k' once registered, then 'o'/'e' frames of all output produced
//	          from then on; the client may send 'i'/'c'/'w'; 'r' after the
//	          container exited and its output ended. With {start: true} the
//	          shim then starts the container as start does and sends 's' {pid}
//	          on the stream (output may come before it); a failed start ends
//	          the stream with 'r' {error}
//	wait      'r' {exit, cleaned} once init exited (cleaned: the runtime's
//	          state and the cgroups were deleted); with {final: true} the
//	          shim exits once it answered, as after a shutdown
//	state     'r' {status, pid, exit}
//	resize    {width, height} of the container's pty; 'r'
//	exec      {exec_id (used in file names: no "/"), process (OCI process
//	          JSON), stdin, detach}: 'k' {pid}
//	          once started, then 'o'/'e' (client sends 'i'/'c'/'w'), 'r' {code}
//	kill      {signal, all}: to init through its pidfd (all: only SIGKILL with
//	          the container's own pid namespace), else runtime kill; 'r'
//	shutdown  an idle shim (never started, failed, exited) exits; 'r'; while
//	          a start is in flight 'r' {error, reason: "starting"}
//
// A connection that closes before its 'r' frame means the shim is gone
// (ErrShimGone).
package shim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Config is what a shim needs to know about its container.
type Config struct {
	ID          string // container id (64 hex)
	Bundle      string // OCI bundle dir (holds config.json)
	Runtime     string // runtime binary path (runc or crun)
	RuntimeRoot string // --root for the runtime
	StateDir    string // per-container state dir: shim.pid, init.pid, exit.json, shim.log
	Socket      string // unix socket the shim listens on (any length)
	LogPath     string // json-file log of the container's output
	LogMaxSize  int64  // rotate when bigger (0 = never)
	LogMaxFile  int    // files kept, the current one included (docker's max-file)
	LogFormat   string // "" (json-file) or LogFormatCRI (crilog.go)
	Terminal    bool   // allocate a pty (runtime --console-socket)
	Stdin       bool   // keep the container's stdin open (docker OpenStdin)
	// FreshState: StateDir was made for this shim, so nothing of an earlier run of the
	// container (exit.json, init.pid, a deleted runtime state) is in it to remove.
	FreshState bool
	// Detached: the start will be a start request, not an attach with start (Spares then
	// adopts the light shim's spare). The shim itself does not use it.
	Detached bool
}

// ExitStatus is how a container's init ended.
type ExitStatus struct {
	Code      int       `json:"code"` // exit status, 128+signal when killed
	ExitedAt  time.Time `json:"exited_at"`
	Signal    int       `json:"signal,omitempty"` // 0 if it exited normally
	OOMKilled bool      `json:"oom_killed,omitempty"`
}

// ErrStartInProgress is Shutdown's error while a Start is in flight: the
// runtime may be about to start the container, which must not be left
// without its shim. (Not an errdefs category: the shim binary stays free of
// gRPC; the daemon registers it as a conflict.)
var ErrStartInProgress = errors.New("shim: container start in progress")

// ErrShimGone is returned (wrapped) when the shim went away without
// answering: it was killed, or it exited before the request was served.
var ErrShimGone = errors.New("shim is gone")

// Files in the state directory.
const (
	ShimPidFile = "shim.pid"
	InitPidFile = "init.pid"
	ExitFile    = "exit.json"
	ShimLogFile = "shim.log"
)

// SocketPath is the socket of container id's shim under the daemon's state
// root: short whatever id's length, <stateRoot>/s/<12 hex>.sock.
func SocketPath(stateRoot, id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(stateRoot, "s", hex.EncodeToString(sum[:])[:12]+".sock")
}

// ReadExitFile reads the exit status the shim recorded in stateDir;
// (nil, nil) when there is none.
func ReadExitFile(stateDir string) (*ExitStatus, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st ExitStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
