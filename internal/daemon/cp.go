package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/rootfs"
	"github.com/isulad-go/isulad/internal/spec"
)

// copyChunk is the size of the data messages of a copy: large files stream through in
// pieces of this size, never whole in memory.
const copyChunk = 256 << 10

// copyRoot opens the root a `cp` works in. For a running (or paused) container it is the
// container's live view, /proc/<init pid>/root: its rootfs with every mount the container
// has on it (volumes, --tmpfs, host channels), as `exec cat` would see them. The pid is
// pinned with a pidfd and checked alive after the open, so a pid reused by another process
// cannot hand us someone else's root. A stopped container has no mounts: its rootfs
// directory is the view.
func (d *Daemon) copyRoot(c *container.Container) (*rootfs.Root, error) {
	st := c.Snapshot()
	if (st.Status == string(container.Running) || st.Status == string(container.Paused)) && st.Pid > 0 {
		if pidfd, err := unix.PidfdOpen(st.Pid, 0); err == nil {
			defer unix.Close(pidfd)
			r, err := rootfs.OpenRootAs("/proc/"+strconv.Itoa(st.Pid)+"/root", c.Rootfs)
			if err == nil && unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil {
				return r, nil
			}
			if err == nil {
				r.Close()
			}
		}
		// The container stopped meanwhile: its rootfs is what is left.
	}
	return rootfs.OpenRoot(c.Rootfs)
}

// copyOwner is whose the files copied into c are: the container's root, shifted by its
// --user-remap.
func copyOwner(c *container.Container, keep bool) (rootfs.ExtractOptions, error) {
	opt := rootfs.ExtractOptions{KeepOwner: keep}
	if c.HostConfig.UserRemap != "" {
		m, err := spec.ParseUserRemap(c.HostConfig.UserRemap)
		if err != nil {
			return opt, err
		}
		opt.UID, opt.GID, opt.UIDOffset, opt.GIDOffset = int(m.UID), int(m.GID), int(m.UID), int(m.GID)
	}
	return opt, nil
}

// chunkWriter sends what is written as data messages.
type chunkWriter struct{ send func(*apiv1.CopyChunk) error }

func (w chunkWriter) Write(p []byte) (int, error) {
	if err := w.send(&apiv1.CopyChunk{Msg: &apiv1.CopyChunk_Data{Data: append([]byte(nil), p...)}}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// chunkReader reads the data messages of a stream as one byte stream.
type chunkReader struct {
	recv func() (*apiv1.CopyChunk, error)
	buf  []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		m, err := r.recv()
		if err != nil {
			return 0, err // io.EOF at the end of the stream
		}
		r.buf = m.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (s *opsService) CopyFrom(r *apiv1.CopyFromRequest, srv apiv1.Ops_CopyFromServer) error {
	c, err := s.d.store.Get(r.Id)
	if err != nil {
		return gerr(err)
	}
	root, err := s.d.copyRoot(c)
	if err != nil {
		return gerr(err)
	}
	defer root.Close()
	src, err := root.OpenSource(r.Path, r.FollowLink)
	if err != nil {
		return gerr(err)
	}
	defer src.Close()
	info := src.Info()
	hdr, _ := json.Marshal(types.CopyStat{Name: info.Name, Size: info.Size, Mode: uint32(info.Mode), LinkTarget: info.LinkTarget})
	if err := srv.Send(&apiv1.CopyChunk{Msg: &apiv1.CopyChunk_HeaderJson{HeaderJson: hdr}}); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(chunkWriter{send: srv.Send}, copyChunk)
	warn := func(msg string) {
		if bw.Flush() == nil {
			srv.Send(&apiv1.CopyChunk{Msg: &apiv1.CopyChunk_Warning{Warning: msg}})
		}
	}
	if err := src.WriteTar(bw, warn); err != nil {
		return gerr(err)
	}
	return bw.Flush()
}

func (s *opsService) CopyTo(srv apiv1.Ops_CopyToServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	var h types.CopyToHeader
	if err := decodeStrict(first.GetHeaderJson(), &h); err != nil {
		return gerr(fmt.Errorf("cp: the first message must be a header: %v: %w", err, errInvalid))
	}
	c, err := s.d.store.Get(h.ID)
	if err != nil {
		return gerr(err)
	}
	opt, err := copyOwner(c, h.CopyUIDGID)
	if err != nil {
		return gerr(err)
	}
	root, err := s.d.copyRoot(c)
	if err != nil {
		return gerr(err)
	}
	defer root.Close()
	var warnings []string
	err = root.Extract(h.Path, h.SrcName, h.SrcIsDir, &chunkReader{recv: srv.Recv}, opt, func(w string) { warnings = append(warnings, w) })
	if err != nil && !errors.Is(err, io.EOF) {
		return gerr(err)
	}
	s.d.log.Info("copied into container", "id", c.ID, "path", h.Path)
	return srv.SendAndClose(&apiv1.CopyToResponse{Warnings: warnings})
}
