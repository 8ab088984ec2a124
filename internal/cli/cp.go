package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/rootfs"
)

func init() { register(newCpCommand) }

// ops returns the client of the Ops service, on the same connection as the containers'.
func (c *CLI) ops() (apiv1.OpsClient, error) {
	if oc, ok := c.Client.(apiv1.OpsClient); ok {
		return oc, nil // a test's fake serving both
	}
	if _, err := c.client(); err != nil {
		return nil, err
	}
	if c.conn == nil {
		return nil, errors.New("the API client has no Ops service")
	}
	return apiv1.NewOpsClient(c.conn), nil
}

// cpArg is one side of a cp: a container's path, or a local one ("-": a tar on stdio).
type cpArg struct{ container, path string }

// parseCpArg splits CONTAINER:PATH as docker does: a path that starts with "/" or "." is
// local whatever colons it holds; otherwise a colon names a container.
func parseCpArg(s string) cpArg {
	if s == "-" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return cpArg{path: s}
	}
	ctr, p, ok := strings.Cut(s, ":")
	if !ok || ctr == "" {
		return cpArg{path: s}
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // relative to the container's root
	}
	return cpArg{container: ctr, path: p}
}

func newCpCommand(c *CLI) *cobra.Command {
	var archive, follow bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  isula cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files and directories between a container and the host. Paths in the container are\n" +
			"resolved inside its root (its live view with its mounts while it runs), never outside it.\n" +
			"'-' reads a tar archive from stdin (into the container) or writes one to stdout.\n" +
			"FIFOs, sockets and devices are not copied: each is named on stderr.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := parseCpArg(args[0]), parseCpArg(args[1])
			switch {
			case src.container != "" && dst.container != "":
				return usagef(cmd, "copying between containers is not supported")
			case src.container == "" && dst.container == "":
				return usagef(cmd, "one of the paths must name a container (CONTAINER:PATH)")
			case src.path == "" || dst.path == "":
				return usagef(cmd, "empty path")
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			if src.container != "" {
				return c.copyFrom(oc, src, dst.path, archive, follow)
			}
			return c.copyTo(oc, src.path, dst, archive, follow)
		},
	}
	cmd.ValidArgsFunction = c.completeCp
	cmd.Flags().BoolVarP(&archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow a symbol link in SRC_PATH")
	return cmd
}

func (c *CLI) warn(msg string) { fmt.Fprintf(c.Err, "Warning: %s\n", oneLine(msg)) }

// copyFrom copies src out of its container to the local dst.
func (c *CLI) copyFrom(oc apiv1.OpsClient, src cpArg, dst string, archive, follow bool) error {
	stream, err := oc.CopyFrom(ctx(), &apiv1.CopyFromRequest{Id: src.container, Path: src.path, FollowLink: follow})
	if err != nil {
		return c.apiErr(err)
	}
	first, err := stream.Recv()
	if err != nil {
		return c.apiErr(err)
	}
	var st types.CopyStat
	if err := json.Unmarshal(first.GetHeaderJson(), &st); err != nil {
		return fmt.Errorf("cp: bad header from the daemon: %v", err)
	}
	pr, pw := io.Pipe()
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				pw.CloseWithError(err)
				recvErr <- err
				return
			}
			if w := m.GetWarning(); w != "" {
				c.warn(w)
				continue
			}
			if _, err := pw.Write(m.GetData()); err != nil {
				recvErr <- nil // the reader gave up: its error is the one to report
				return
			}
		}
	}()
	if dst == "-" {
		_, err = io.Copy(c.Out, pr)
	} else {
		err = extractLocal(dst, st, pr, archive, c.warn)
	}
	pr.CloseWithError(errors.New("cp: extraction ended"))
	if rerr := <-recvErr; rerr != nil {
		return c.apiErr(rerr)
	}
	return err
}

// extractLocal extracts a container's archive at the local dst. The host's own path dst is
// the user's; below it, nothing in the archive can lead a write out of it (see
// rootfs.Extract).
func extractLocal(dst string, st types.CopyStat, r io.Reader, archive bool, warn func(string)) error {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	if strings.HasSuffix(dst, "/") && !strings.HasSuffix(abs, "/") {
		abs += "/" // keep docker's "must be a directory" meaning
	}
	root, err := rootfs.OpenRoot("/")
	if err != nil {
		return err
	}
	defer root.Close()
	return root.Extract(abs, st.Name, fs.FileMode(st.Mode).IsDir(), r,
		rootfs.ExtractOptions{KeepOwner: archive, UID: os.Getuid(), GID: os.Getgid()}, warn)
}

// copyTo copies the local src ("-": a tar on stdin) into dst's container.
func (c *CLI) copyTo(oc apiv1.OpsClient, src string, dst cpArg, archive, follow bool) error {
	hdr := types.CopyToHeader{ID: dst.container, Path: dst.path, CopyUIDGID: archive, SrcIsDir: true}
	var source *rootfs.Source
	if src != "-" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		if strings.HasSuffix(src, "/.") {
			abs += "/."
		}
		root, err := rootfs.OpenRoot("/")
		if err != nil {
			return err
		}
		defer root.Close()
		if source, err = root.OpenSource(abs, follow); err != nil {
			return err
		}
		defer source.Close()
		info := source.Info()
		hdr.SrcName, hdr.SrcIsDir = info.Name, info.Mode.IsDir()
	}
	stream, err := oc.CopyTo(ctx())
	if err != nil {
		return c.apiErr(err)
	}
	hj, _ := json.Marshal(hdr)
	if err := stream.Send(&apiv1.CopyChunk{Msg: &apiv1.CopyChunk_HeaderJson{HeaderJson: hj}}); err != nil {
		_, rerr := stream.CloseAndRecv()
		return c.apiErr(rerr)
	}
	w := &sendWriter{send: stream.Send}
	var werr error
	if source != nil {
		bw := bufio.NewWriterSize(w, 256<<10)
		if werr = source.WriteTar(bw, c.warn); werr == nil {
			werr = bw.Flush()
		}
	} else {
		_, werr = io.Copy(w, c.In)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return c.apiErr(err) // the daemon's error explains a send that failed
	}
	if werr != nil && !w.failed {
		return werr
	}
	for _, msg := range resp.Warnings {
		c.warn(msg)
	}
	return nil
}

// sendWriter sends what is written as data messages of a CopyTo stream, in chunks.
type sendWriter struct {
	send   func(*apiv1.CopyChunk) error
	failed bool
}

func (w *sendWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 256 << 10 {
		end := min(len(p), off+256<<10)
		if err := w.send(&apiv1.CopyChunk{Msg: &apiv1.CopyChunk_Data{Data: append([]byte(nil), p[off:end]...)}}); err != nil {
			w.failed = true
			return off, err
		}
	}
	return len(p), nil
}
