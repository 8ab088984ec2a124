package cli

import (
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newLogsCommand) }

type logsOptions struct {
	follow, timestamps bool
	tail               string
}

// logTimeFormat is docker's fixed-width RFC 3339 with nanoseconds.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func newLogsCommand(c *CLI) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tail, err := parseTail(o.tail)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			st, err := cl.Logs(ctx(), &apiv1.LogsRequest{Id: args[0], Follow: o.follow, Tail: tail, Timestamps: o.timestamps})
			if err != nil {
				return c.apiErr(err)
			}
			for {
				e, err := st.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return c.apiErr(err)
				}
				w := c.Out
				if e.Stream == "stderr" {
					w = c.Err
				}
				if o.timestamps {
					io.WriteString(w, time.Unix(0, e.TimeUnixNano).UTC().Format(logTimeFormat)+" ")
				}
				w.Write(e.Data)
			}
		},
	}
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "follow the log output")
	cmd.Flags().StringVarP(&o.tail, "tail", "n", "all", "number of lines to show from the end, or all")
	cmd.Flags().BoolVarP(&o.timestamps, "timestamps", "t", false, "show timestamps")
	return cmd
}

func parseTail(s string) (int64, error) {
	if s == "all" || s == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || !isDigits(s) {
		return 0, invalid("invalid --tail %q (want a number of lines, or all)", s)
	}
	return n, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
