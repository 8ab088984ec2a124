package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newPsCommand) }

type psOptions struct {
	all, quiet, noTrunc bool
	format              string
	filters             []string
}

const defaultPsFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

// psHeaders are the column titles of ps templates (docker's).
var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
	"CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE",
	"Ports": "PORTS", "Pid": "PID", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
	"Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
}

// psRow is what a ps template sees: docker's field names.
type psRow struct {
	ID, Names, Image, Command, CreatedAt, RunningFor, Status, State, Ports string
	Pid                                                                    int
}

var psFilterKeys = map[string]bool{"status": true, "name": true, "id": true}
var psStatuses = map[string]bool{"created": true, "running": true, "paused": true, "restarting": true, "removing": true, "exited": true, "dead": true}

// parsePsFilters checks --filter key=value pairs.
func parsePsFilters(list []string) ([]*apiv1.Filter, error) {
	var out []*apiv1.Filter
	for _, f := range list {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !psFilterKeys[k] {
			return nil, invalid("invalid --filter %q (want status=STATE, name=NAME or id=ID)", f)
		}
		if k == "status" && !psStatuses[v] {
			return nil, invalid("invalid --filter %q (want a status of created, running, paused, restarting, removing, exited or dead)", f)
		}
		out = append(out, &apiv1.Filter{Key: k, Value: v})
	}
	return out, nil
}

func newPsCommand(c *CLI) *cobra.Command {
	o := &psOptions{}
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"list", "ls"},
		Short:   "List containers",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			filters, err := parsePsFilters(o.filters)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			format := o.format
			if o.quiet {
				format = "{{.ID}}"
			} else if format == "" {
				format = defaultPsFormat
			}
			f, err := newFormatter(c.Out, "--format", format, psHeaders)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			r, err := cl.List(ctx(), &apiv1.ListRequest{All: o.all, Filters: filters})
			if err != nil {
				return c.apiErr(err)
			}
			var list []types.Container
			if len(r.ContainersJson) > 0 {
				if err := json.Unmarshal(r.ContainersJson, &list); err != nil {
					return err
				}
			}
			return writePs(f, list, !o.noTrunc, time.Now())
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.all, "all", "a", false, "show all containers (default shows just running)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "only display container IDs")
	fs.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate output")
	fs.StringVar(&o.format, "format", "", "format the output with a Go template ({{.ID}}, {{.Names}}, {{.Status}}...; 'table ...' for columns)")
	fs.StringArrayVarP(&o.filters, "filter", "f", nil, "filter: status=STATE, name=NAME, id=ID")
	return cmd
}

func writePs(f *tableWriter, list []types.Container, trunc bool, now time.Time) error {
	for _, ct := range list {
		if err := f.row(makePsRow(ct, trunc, now)); err != nil {
			return err
		}
	}
	return f.flush()
}

func makePsRow(ct types.Container, trunc bool, now time.Time) psRow {
	r := psRow{
		ID: ct.ID, Names: strings.TrimPrefix(ct.Names, "/"), Image: ct.Image, State: ct.State,
		Ports: ct.Ports, Pid: ct.Pid, Status: ct.Status,
	}
	cmd := ct.Command
	if trunc {
		if len(r.ID) > 12 {
			r.ID = r.ID[:12]
		}
		cmd = ellipsis(cmd, 20)
	}
	r.Command = strconv.Quote(cmd)
	if !ct.Created.IsZero() {
		r.CreatedAt = ct.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
		r.RunningFor = humanDuration(now.Sub(ct.Created)) + " ago"
	}
	if r.Status == "" {
		r.Status = statusFromState(ct.State)
	}
	return r
}

// statusFromState is the fallback STATUS when the daemon sends none.
func statusFromState(state string) string {
	switch state {
	case "running":
		return "Up"
	case "paused":
		return "Up (Paused)"
	case "":
		return ""
	}
	return strings.ToUpper(state[:1]) + state[1:]
}
