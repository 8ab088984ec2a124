package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newInfoCommand) }

func newInfoCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			r, err := cl.Info(ctx(), &apiv1.Empty{})
			if err != nil {
				return c.apiErr(err)
			}
			if format != "" {
				t, err := parseTemplate("--format", format)
				if err != nil {
					return withCode(ExitEngine, err)
				}
				return execInspectTemplate(c.Out, t, r.Json)
			}
			var info types.Info
			if err := json.Unmarshal(r.Json, &info); err != nil {
				return fmt.Errorf("bad info document from the daemon: %w", err)
			}
			writeInfo(c.Out, &info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template")
	return cmd
}

func writeInfo(w io.Writer, i *types.Info) {
	fmt.Fprintf(w, "Containers: %d\n", i.Containers)
	fmt.Fprintf(w, " Running: %d\n", i.ContainersRunning)
	fmt.Fprintf(w, " Paused: %d\n", i.ContainersPaused)
	fmt.Fprintf(w, " Stopped: %d\n", i.ContainersStopped)
	fmt.Fprintf(w, "Server Version: %s\n", i.ServerVersion)
	fmt.Fprintf(w, "Cgroup Driver: %s\n", i.CgroupDriver)
	fmt.Fprintf(w, "Cgroup Version: %s\n", i.CgroupVersion)
	fmt.Fprintf(w, "Default Runtime: %s\n", i.DefaultRuntime)
	fmt.Fprintf(w, "Runtimes:\n")
	for _, name := range sortedKeys(i.Runtimes) {
		fmt.Fprintf(w, " %s: %s\n", name, i.Runtimes[name])
	}
	fmt.Fprintf(w, "Kernel Version: %s\n", i.KernelVersion)
	fmt.Fprintf(w, "Operating System: %s\n", i.OperatingSystem)
	fmt.Fprintf(w, "CPUs: %d\n", i.NCPU)
	fmt.Fprintf(w, "Total Memory: %s\n", humanBytes(i.MemTotal))
	fmt.Fprintf(w, "Name: %s\n", i.Name)
	fmt.Fprintf(w, "iSulad Root Dir: %s\n", i.GraphRoot)
	fmt.Fprintf(w, "iSulad State Dir: %s\n", i.StateRoot)
}

// humanBytes is docker's BytesSize: binary units with up to 4 significant digits.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
