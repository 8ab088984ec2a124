package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// hostileOps is a daemon (or a container behind it) that answers cp with an archive of its
// choosing.
type hostileOps struct {
	fakeClient
	apiv1.OpsClient
	chunks []*apiv1.CopyChunk
}

type chunkStream struct {
	grpc.ClientStream
	chunks []*apiv1.CopyChunk
}

func (s *chunkStream) Recv() (*apiv1.CopyChunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	m := s.chunks[0]
	s.chunks = s.chunks[1:]
	return m, nil
}

func (h *hostileOps) CopyFrom(context.Context, *apiv1.CopyFromRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[apiv1.CopyChunk], error) {
	return &chunkStream{chunks: h.chunks}, nil
}

func TestCpToHostNeverWritesThroughArchiveSymlinks(t *testing.T) {
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	os.Mkdir(victim, 0o755)
	for _, c := range []struct {
		name    string
		entries func(*tar.Writer)
	}{
		{"absolute symlink, then through it", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755})
			tw.WriteHeader(&tar.Header{Name: "d/evil", Typeflag: tar.TypeSymlink, Linkname: victim})
			tw.WriteHeader(&tar.Header{Name: "d/evil/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
		}},
		{"relative symlink climbing out, then through it", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755})
			tw.WriteHeader(&tar.Header{Name: "d/evil", Typeflag: tar.TypeSymlink, Linkname: "../../victim"})
			tw.WriteHeader(&tar.Header{Name: "d/evil/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
		}},
		{"dotdot entry", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755})
			tw.WriteHeader(&tar.Header{Name: "d/../../victim/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
		}},
		{"hard link to a host file", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755})
			tw.WriteHeader(&tar.Header{Name: "d/l", Typeflag: tar.TypeLink, Linkname: "../victim/x"})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			c.entries(tw)
			tw.Close()
			hdr, _ := json.Marshal(types.CopyStat{Name: "d", Mode: uint32(os.ModeDir | 0o755)})
			ops := &hostileOps{chunks: []*apiv1.CopyChunk{
				{Msg: &apiv1.CopyChunk_HeaderJson{HeaderJson: hdr}},
				{Msg: &apiv1.CopyChunk_Data{Data: buf.Bytes()}},
			}}
			dst := filepath.Join(t.TempDir(), "out")
			var errb bytes.Buffer
			cl := &CLI{Out: io.Discard, Err: &errb, Client: ops}
			code := cl.Run([]string{"cp", "web:/d", dst})
			if code == 0 {
				t.Fatalf("a hostile archive was extracted: %s", errb.String())
			}
			if ents, _ := os.ReadDir(victim); len(ents) != 0 {
				t.Fatalf("written outside the destination: %v", ents)
			}
			if strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
				t.Fatalf("more than one line: %q", errb.String())
			}
		})
	}
}
