package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() {
	register(newLoadCommand)
	register(newSaveCommand)
	register(newImportCommand)
	register(newExportCommand)
}

// sendArchive streams the request, then the file's bytes ("-": stdin).
func (c *CLI) sendArchive(send func(*apiv1.ImageChunk) error, req any, input string) error {
	in := c.In
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return invalid("cannot read %s: %v", input, err)
		}
		defer f.Close()
		in = f
	}
	data, _ := json.Marshal(req)
	if err := send(&apiv1.ImageChunk{Json: data}); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if err := send(&apiv1.ImageChunk{Data: buf[:n]}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", input, err)
		}
	}
}

// receiveFile writes a stream of chunks to output ("" or "-": stdout). A file is written
// beside its final name and renamed once complete: a failure leaves nothing half-written.
func (c *CLI) receiveFile(recv func() (*apiv1.ImageChunk, error), output string) error {
	var w io.Writer = c.Out
	var tmp *os.File
	if output != "" && output != "-" {
		var err error
		tmp, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".part-")
		if err != nil {
			return invalid("cannot write %s: %v", output, err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	} else if isTerminal(c.Out) {
		return invalid("refusing to write an archive to a terminal (want -o FILE or a redirection)")
	}
	for {
		ch, err := recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c.apiErr(err)
		}
		if _, err := w.Write(ch.Data); err != nil {
			return fmt.Errorf("writing %s: %w", output, err)
		}
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), output); err != nil {
			return err
		}
	}
	return nil
}

func newLoadCommand(c *CLI) *cobra.Command {
	var input, tag string
	var quiet bool
	cmd := &cobra.Command{
		Use:         "load [OPTIONS]",
		Short:       "Load images from a docker-archive or an OCI archive (-i FILE, or - for stdin)",
		Args:        noArgs,
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if input == "" {
				return usagef(cmd, "want -i FILE (or -i - for stdin)")
			}
			cl, err := c.images()
			if err != nil {
				return err
			}
			stream, err := cl.Load(ctx())
			if err != nil {
				return c.apiErr(err)
			}
			if err := c.sendArchive(stream.Send, types.ImageLoadRequest{Tag: tag}, input); err != nil {
				stream.CloseSend()
				if _, rerr := stream.Recv(); rerr != nil && rerr != io.EOF {
					return c.apiErr(rerr)
				}
				return err
			}
			stream.CloseSend()
			view := newProgressView(c.Err, quiet)
			defer view.done()
			for {
				ev, err := stream.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return c.apiErr(err)
				}
				if len(ev.ProgressJson) > 0 {
					var p types.ImageProgress
					if json.Unmarshal(ev.ProgressJson, &p) == nil {
						view.event(p)
					}
				}
				if len(ev.ResultJson) > 0 {
					var res types.ImagePullResult
					json.Unmarshal(ev.ResultJson, &res)
					if len(res.Names) == 0 {
						fmt.Fprintf(c.Out, "Loaded image ID: %s\n", res.ID)
					}
					for _, n := range res.Names {
						fmt.Fprintf(c.Out, "Loaded image: %s\n", n)
					}
				}
			}
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "the archive (- for stdin)")
	cmd.Flags().StringVarP(&tag, "tag", "t", "", "name the archive's (only) image")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

func newSaveCommand(c *CLI) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:         "save [OPTIONS] IMAGE [IMAGE...]",
		Short:       "Save images to a docker-archive (default) or an OCI archive (--format oci)",
		Args:        minArgs(1),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.streamDown(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (grpc.ServerStreamingClient[apiv1.ImageChunk], error) {
				return cl.Save(ctx(), r)
			}, types.ImageSaveRequest{Names: args, Format: format}, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().StringVar(&format, "format", "docker-archive", "docker-archive or oci")
	return cmd
}

func (c *CLI) streamDown(call func(apiv1.ImagesClient, *apiv1.ImageRequest) (grpc.ServerStreamingClient[apiv1.ImageChunk], error), req any, output string) error {
	cl, err := c.images()
	if err != nil {
		return err
	}
	data, _ := json.Marshal(req)
	stream, err := call(cl, &apiv1.ImageRequest{Json: data})
	if err != nil {
		return c.apiErr(err)
	}
	return c.receiveFile(stream.Recv, output)
}

func newImportCommand(c *CLI) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:         "import [OPTIONS] FILE|- [REPOSITORY[:TAG]]",
		Short:       "Make a one-layer image of a rootfs tarball",
		Args:        cobra.RangeArgs(1, 2),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			cl, err := c.images()
			if err != nil {
				return err
			}
			stream, err := cl.Import(ctx())
			if err != nil {
				return c.apiErr(err)
			}
			if err := c.sendArchive(stream.Send, types.ImageImportRequest{Ref: ref, Message: message}, args[0]); err != nil {
				if _, rerr := stream.CloseAndRecv(); rerr != nil {
					return c.apiErr(rerr)
				}
				return err
			}
			r, err := stream.CloseAndRecv()
			if err != nil {
				return c.apiErr(err)
			}
			var res types.ImagePullResult
			json.Unmarshal(r.Json, &res)
			fmt.Fprintln(c.Out, res.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "a comment for the image's history")
	return cmd
}

func newExportCommand(c *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Write a (stopped) container's root filesystem as a tarball",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.streamDown(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (grpc.ServerStreamingClient[apiv1.ImageChunk], error) {
				return cl.Export(ctx(), r)
			}, types.ImageRefRequest{Name: args[0]}, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	return cmd
}
