// Package lightproto is the light protocol between the front client (cmd/isula/isula.c, C) and the
// daemon, spoken on the daemon's API socket beside gRPC. It serves one case: an attached,
// non-interactive `isula run`, without the cost of linking gRPC and protobuf into every
// client start (docs/ARCHITECTURE.md, "Front and full client").
//
// A connection starts with Magic (gRPC's starts with "PRI * HTTP/2.0"), then one JSON line,
// the Hello. Then both sides send frames: a type byte, a big-endian uint32 payload length,
// the payload.
//
//	daemon -> client: Created {id, warnings}, Ready, Stdout bytes, Stderr bytes,
//	                  Exit {code, error}, Error {message, kind}
//	client -> daemon: Signal {name}
//
// Exit or Error is the daemon's last frame; it closes the connection after it. The client
// closing the connection means it is gone, as a gRPC stream's cancel.
//
// The front is C and speaks it on its own; internal/front's tests run it against this
// package's frames.
package lightproto

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Magic opens a light connection.
const Magic = "ISULA-LIGHT/1\n"

// Frame types.
const (
	FrameCreated byte = 'C' // JSON Created
	FrameReady   byte = 'R' // empty
	FrameStdout  byte = 'O' // output bytes
	FrameStderr  byte = 'E' // output bytes
	FrameExit    byte = 'X' // JSON Exit
	FrameError   byte = '!' // JSON Error
	FrameSignal  byte = 'S' // JSON Signal
	// The answers to a hello with a command line (Argv), before anything else.
	FramePlan     byte = 'P' // JSON Plan: the daemon serves it
	FrameHandover byte = 'H' // empty: it does not; the front execs the full client
)

// MaxPayload bounds a frame's payload; MaxHello the hello line.
const (
	MaxPayload = 16 << 20
	MaxHello   = 16 << 20
)

// Hello is the client's first message, after Magic: the container to create (the JSON of a
// types.CreateRequest, the bytes the full client puts in AttachRequest.create_json), attached
// to and started.
//
// Or, from the front, the command line itself: Argv (the arguments of `isula run`, after the
// word run) and the client's environment (Env, for a bare -e KEY). The daemon parses them as
// the full client would (runopts.PlanRun) and answers Plan, then as for a Create; or
// Handover, and closes.
type Hello struct {
	Create   json.RawMessage `json:"create,omitempty"`
	SigProxy bool            `json:"sig_proxy"`
	// Detach (run -d): the container is created and started, not attached to; the daemon
	// answers Created, then Exit with code 0 (or Error), as the Create call with start.
	Detach bool     `json:"detach,omitempty"`
	Argv   []string `json:"argv,omitempty"`
	Env    []string `json:"env,omitempty"`
}

// Plan is the daemon's answer to a hello with Argv that it serves: what the command line
// asked for, which the front needs (runopts.Plan).
type Plan struct {
	SigProxy bool `json:"sig_proxy"`
	Detach   bool `json:"detach,omitempty"`
	// Fallback: a not-found error before the container is made hands over to the full
	// client, which pulls the image (--pull=missing).
	Fallback bool `json:"fallback,omitempty"`
}

// Created says which container the daemon made, with its warnings.
type Created struct {
	ID       string   `json:"id"`
	Warnings []string `json:"warnings,omitempty"`
}

// Exit is the container's exit; Error is the daemon's message when the engine failed (the
// gRPC Exit message's error).
type Exit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// Error is an error the daemon's Attach returned: its message (the gRPC status message)
// and its errdefs category (KindName).
type Error struct {
	Message string `json:"message"`
	Kind    string `json:"kind"`
}

// Signal asks the daemon to send the named signal to the container (--sig-proxy).
type Signal struct {
	Name string `json:"name"`
}

// KindName names err's category: the text of its errdefs sentinel ("not found"), or
// "unknown error" for none.
func KindName(err error) string {
	if k := errdefs.Kind(err); k != nil {
		return k.Error()
	}
	return errdefs.ErrUnknown.Error()
}

// KindOf returns the errdefs sentinel that name names (ErrUnknown for a name it does not
// know).
func KindOf(name string) error {
	for _, k := range errdefs.Kinds {
		if k.Error() == name {
			return k
		}
	}
	return errdefs.ErrUnknown
}

// WriteHello writes Magic and the hello line.
func WriteHello(w io.Writer, h Hello) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(Magic)+len(b)+1)
	buf = append(append(append(buf, Magic...), b...), '\n')
	_, err = w.Write(buf)
	return err
}

// ReadHello reads the hello line (Magic already read).
func ReadHello(r *bufio.Reader) (Hello, error) {
	var h Hello
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > MaxHello {
			return h, fmt.Errorf("light protocol: the hello is over %d bytes", MaxHello)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return h, fmt.Errorf("light protocol: reading the hello: %w", err)
		}
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return h, fmt.Errorf("light protocol: bad hello: %v", err)
	}
	hasCreate := len(h.Create) > 0 && string(h.Create) != "null"
	if hasCreate == (len(h.Argv) > 0) {
		if hasCreate {
			return h, errors.New("light protocol: the hello has both a create request and a command line")
		}
		return h, errors.New("light protocol: the hello has neither a create request nor a command line")
	}
	return h, nil
}

// AppendFrame appends one frame to buf.
func AppendFrame(buf []byte, typ byte, payload []byte) []byte {
	buf = append(buf, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(buf[len(buf)-4:], uint32(len(payload)))
	return append(buf, payload...)
}

// WriteFrame writes one frame in one Write.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("light protocol: a frame of %d bytes is over %d", len(payload), MaxPayload)
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, 5+len(payload)), typ, payload))
	return err
}

// WriteJSON writes a frame whose payload is v's JSON.
func WriteJSON(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, typ, b)
}

// ReadFrame reads one frame. A clean end before a frame is io.EOF; an end inside one is
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader) (typ byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("light protocol: a frame of %d bytes is over %d", n, MaxPayload)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], payload, nil
}
