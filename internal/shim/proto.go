package shim

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Frame types. See the package documentation for the protocol.
const (
	// client -> shim
	frameStdin      = 'i' // bytes for the process's stdin
	frameStdinClose = 'c' // the client's stdin reached EOF
	frameResize     = 'w' // 4 bytes: width, height (big endian uint16)
	frameKill       = 'x' // exec: SIGKILL the process (its result follows once it is reaped)

	// shim -> client
	frameStdout = 'o'
	frameStderr = 'e'
	frameReady  = 'k' // the streams are registered (attach) or the process started (exec)
	// attach with start: the container started, JSON {pid} (a failed start ends the
	// stream with its error result instead)
	frameStarted = 's'
	frameResult  = 'r' // JSON result; the last frame of every request
)

// maxFrame bounds a frame's payload.
const maxFrame = 1 << 20

// maxRequest bounds the request line.
const maxRequest = 1 << 20

// request is the JSON line that opens every connection.
type request struct {
	Op      string          `json:"op"`
	Stdin   bool            `json:"stdin,omitempty"`
	Width   uint16          `json:"width,omitempty"`
	Height  uint16          `json:"height,omitempty"`
	ExecID  string          `json:"exec_id,omitempty"`
	Process json.RawMessage `json:"process,omitempty"`
	Detach  bool            `json:"detach,omitempty"`
	// KillOnClose (exec): SIGKILL the process if the client's connection closes before the
	// process exited.
	KillOnClose bool `json:"kill_on_close,omitempty"`
	Signal      int  `json:"signal,omitempty"`
	All         bool `json:"all,omitempty"`
	// Start (attach): start the container once the streams are registered, and say so
	// in a frameStarted on the stream (one request instead of an attach and a start).
	Start bool `json:"start,omitempty"`
	// Final (wait): the client's last request; once it is answered the shim exits, as
	// after a shutdown, instead of lingering for late waiters.
	Final bool `json:"final,omitempty"`
}

// Operations.
const (
	opStart    = "start"
	opAttach   = "attach"
	opWait     = "wait"
	opState    = "state"
	opResize   = "resize"
	opExec     = "exec"
	opKill     = "kill"
	opShutdown = "shutdown"
)

// result is the payload of the final frame of a request.
type result struct {
	Error  string      `json:"error,omitempty"`
	Pid    int         `json:"pid,omitempty"`
	Code   int         `json:"code,omitempty"`   // exec: the process's exit code
	Status string      `json:"status,omitempty"` // state: created, running, stopped, failed
	Exit   *ExitStatus `json:"exit,omitempty"`   // wait, and state once exited
	// Cleaned (wait): the runtime's state and the container's cgroups were deleted after
	// the exit (the fast delete or the runtime's delete succeeded).
	Cleaned bool   `json:"cleaned,omitempty"`
	Reason  string `json:"reason,omitempty"` // with Error: what the client can act on
}

// Reasons of a failed request.
const (
	reasonStarting = "starting" // shutdown refused: a start is in flight
)

// err is the error of a failed request.
func (r *result) err() error {
	if r.Reason == reasonStarting {
		return ErrStartInProgress
	}
	return errors.New(r.Error)
}

// appendFrame appends the encoding of one frame to b.
func appendFrame(b []byte, typ byte, payload []byte) []byte {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	b = append(b, h[:]...)
	return append(b, payload...)
}

func encodeFrame(typ byte, payload []byte) []byte {
	return appendFrame(make([]byte, 0, 5+len(payload)), typ, payload)
}

func resultFrame(r result) []byte {
	b, _ := json.Marshal(r)
	return encodeFrame(frameResult, b)
}

// readFrame reads one frame; buf is reused for the payload when big enough.
func readFrame(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes too large", n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], buf, nil
}

// readRequest reads the opening JSON line.
func readRequest(r *bufio.Reader) (*request, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(line) > maxRequest {
			return nil, errors.New("request too large")
		}
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, fmt.Errorf("bad request: %w", err)
	}
	return &req, nil
}

func encodeResize(w, h uint16) []byte {
	var p [4]byte
	binary.BigEndian.PutUint16(p[0:], w)
	binary.BigEndian.PutUint16(p[2:], h)
	return encodeFrame(frameResize, p[:])
}

func decodeResize(p []byte) (w, h uint16, ok bool) {
	if len(p) != 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(p[0:]), binary.BigEndian.Uint16(p[2:]), true
}
