package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/term"
	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/container"
)

func init() { register(newStatsCommand) }

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}\t{{.HostChannels}}"

var statsHeaders = map[string]string{
	"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
	"PIDs": "PIDS", "HostChannels": "HOST CHANNELS (USED / SIZE)",
}

// statsRow is what --format templates see: docker's names, already formatted; Raw is the
// sample itself (numbers in bytes and nanoseconds).
type statsRow struct {
	ID, Container, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs, HostChannels string
	Raw                                                                                 types.Stats
}

// sizeOf is humanBytes (info.go) of a counter.
func sizeOf(n uint64) string { return humanBytes(int64(n)) }

func newStatsRow(s types.Stats, noTrunc bool) statsRow {
	id := s.ID
	if !noTrunc {
		id = container.ShortID(id)
	}
	r := statsRow{ID: id, Container: id, Name: s.Name, Raw: s,
		CPUPerc:  fmt.Sprintf("%.2f%%", s.CPUPercent),
		MemUsage: sizeOf(s.MemUsage) + " / " + sizeOf(s.MemLimit),
		NetIO:    sizeOf(s.NetRx) + " / " + sizeOf(s.NetTx),
		BlockIO:  sizeOf(s.BlockRead) + " / " + sizeOf(s.BlockWrite),
		PIDs:     fmt.Sprint(s.PIDs),
		MemPerc:  "0.00%",
	}
	if s.MemLimit > 0 {
		r.MemPerc = fmt.Sprintf("%.2f%%", float64(s.MemUsage)/float64(s.MemLimit)*100)
	}
	var ch []string
	for _, c := range s.HostChannels {
		ch = append(ch, c.PathInContainer+" "+sizeOf(c.Used)+" / "+sizeOf(c.Size))
	}
	r.HostChannels = strings.Join(ch, ", ")
	if r.HostChannels == "" {
		r.HostChannels = "--"
	}
	return r
}

func newStatsCommand(c *CLI) *cobra.Command {
	var noStream, all, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Long: "Display CPU, memory, network, block I/O and pids use of containers (every running one\n" +
			"when none is named), from their cgroup files, and the used / total bytes of their host\n" +
			"channels (whose pages are charged to the container's memory). Refreshed every second\n" +
			"on a terminal until interrupted; --no-stream prints one sample.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = defaultStatsFormat
			}
			if _, err := newFormatter(io.Discard, "--format", format, statsHeaders); err != nil {
				return withCode(ExitEngine, err)
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			stream, err := oc.Stats(ctx(), &apiv1.StatsRequest{Ids: args, Stream: !noStream, All: all})
			if err != nil {
				return c.apiErr(err)
			}
			tty := false
			if f, ok := c.Out.(*os.File); ok {
				tty = term.IsTerminal(f.Fd())
			}
			for {
				m, err := stream.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return c.apiErr(err)
				}
				var list []types.Stats
				if err := json.Unmarshal(m.StatsJson, &list); err != nil {
					return fmt.Errorf("stats: bad answer from the daemon: %v", err)
				}
				if tty && !noStream {
					fmt.Fprint(c.Out, "\033[2J\033[H") // redraw in place
				}
				f, _ := newFormatter(c.Out, "--format", format, statsHeaders)
				for _, s := range list {
					if err := f.row(newStatsRow(s, noTrunc)); err != nil {
						return withCode(ExitEngine, err)
					}
				}
				f.flush()
			}
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	cmd.Flags().StringVar(&format, "format", "", "pretty-print with a Go template ('table ...' for columns)")
	cmd.ValidArgsFunction = c.completeContainers(false)
	cmd.RegisterFlagCompletionFunc("format", noFiles)
	return cmd
}
