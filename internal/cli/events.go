package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newEventsCommand) }

// eventRow is what --format templates see: docker's names (.Type .Action .Status .ID
// .Actor.ID .Actor.Attributes .Time .TimeNano) and .Attributes for short.
type eventRow struct {
	Type, Action, Status, ID string
	Actor                    struct {
		ID         string
		Attributes map[string]string
	}
	Attributes map[string]string
	Time       time.Time
	TimeNano   int64
}

// parseEventTime reads --since/--until as docker does: an RFC 3339 time (or a date, or a
// date and time without zone, taken as local), a Unix timestamp with optional fraction, or a
// duration before now ("10m", "1h30m").
func parseEventTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, invalid("invalid %s %q: a duration must not be negative", flag, s)
		}
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(s, "."); len(sec) > 0 && strings.Trim(sec, "0123456789") == "" && (!ok || (frac != "" && strings.Trim(frac, "0123456789") == "")) {
		n, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			ns := int64(0)
			if ok {
				f := (frac + "000000000")[:9]
				ns, _ = strconv.ParseInt(f, 10, 64)
			}
			return time.Unix(n, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		loc := time.Local
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalid("invalid %s %q (want an RFC 3339 time, a Unix timestamp or a duration like 10m)", flag, s)
}

func newEventsCommand(c *CLI) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Long: "Print the daemon's events as they happen: container create, start, die (with its exit\n" +
			"code), oom, kill, stop, restart, rm, exec_create, exec_start, exec_die, rename, pause,\n" +
			"unpause, update, and host channel mount, unmount and resize. --since replays the\n" +
			"daemon's on-disk event log (kept across daemon restarts, bounded); --until ends the output.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			s, err := parseEventTime("--since", since, now)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			u, err := parseEventTime("--until", until, now)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			if !s.IsZero() && !u.IsZero() && u.Before(s) {
				return withCode(ExitEngine, invalid("--until %s is before --since %s", until, since))
			}
			req := &apiv1.EventsRequest{}
			if !s.IsZero() {
				req.SinceUnixNano = s.UnixNano()
			}
			if !u.IsZero() {
				req.UntilUnixNano = u.UnixNano()
			}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok || v == "" || !slices.Contains([]string{"container", "event", "type"}, k) {
					return withCode(ExitEngine, invalid("invalid --filter %q (want container=NAME|ID, event=ACTION or type=container|hostchannel)", f))
				}
				req.Filters = append(req.Filters, &apiv1.Filter{Key: k, Value: v})
			}
			var fm *tableWriter
			if format != "" {
				if fm, err = newFormatter(c.Out, "--format", format, map[string]string{}); err != nil {
					return withCode(ExitEngine, err)
				}
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			stream, err := oc.Events(ctx(), req)
			if err != nil {
				return c.apiErr(err)
			}
			for {
				m, err := stream.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return c.apiErr(err)
				}
				var e types.Event
				if err := json.Unmarshal(m.EventJson, &e); err != nil {
					return fmt.Errorf("events: bad answer from the daemon: %v", err)
				}
				if fm == nil {
					fmt.Fprintln(c.Out, eventLine(e))
					continue
				}
				r := eventRow{Type: e.Type, Action: e.Action, Status: e.Action, ID: e.ID, Attributes: e.Attrs, Time: e.Time, TimeNano: e.TimeNano}
				r.Actor.ID, r.Actor.Attributes = e.ID, e.Attrs
				if err := fm.row(r); err != nil {
					return withCode(ExitEngine, err)
				}
			}
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "show events since this time (RFC 3339, Unix timestamp, or a duration before now)")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this time")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output: container=NAME|ID, event=ACTION, type=container|hostchannel (repeatable)")
	cmd.Flags().StringVar(&format, "format", "", "format the output with a Go template")
	cmd.RegisterFlagCompletionFunc("filter", c.completeEventFilter)
	for _, f := range []string{"since", "until", "format"} {
		cmd.RegisterFlagCompletionFunc(f, noFiles)
	}
	return cmd
}

// eventLine is docker's default form: time, type, action, id, (attributes sorted by key).
func eventLine(e types.Event) string {
	keys := make([]string, 0, len(e.Attrs))
	for k := range e.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+e.Attrs[k])
	}
	return fmt.Sprintf("%s %s %s %s (%s)", e.Time.Local().Format("2006-01-02T15:04:05.000000000Z07:00"), e.Type, e.Action, e.ID, strings.Join(kv, ", "))
}
