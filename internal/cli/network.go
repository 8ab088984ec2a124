package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newNetworkCommand) }

// networks returns the network API client on the daemon's connection.
func (c *CLI) networks() (apiv1.NetworksClient, error) {
	if _, err := c.client(); err != nil {
		return nil, err
	}
	if c.conn == nil {
		return nil, errors.New("no connection to the daemon for the network API")
	}
	return apiv1.NewNetworksClient(c.conn), nil
}

func newNetworkCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network COMMAND",
		Short: "Manage networks",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNetworkCreateCommand(c), newNetworkLsCommand(c), newNetworkInspectCommand(c),
		newNetworkRmCommand(c), newNetworkPruneCommand(c))
	return cmd
}

func newNetworkCreateCommand(c *CLI) *cobra.Command {
	var req types.NetworkCreateRequest
	var labels []string
	cmd := &cobra.Command{
		Use:         "create [OPTIONS] NETWORK",
		Short:       "Create a bridge network",
		Args:        exactArgs(1),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if k == "" {
					return invalid("invalid --label %q (want KEY=VALUE)", l)
				}
				if req.Labels == nil {
					req.Labels = map[string]string{}
				}
				req.Labels[k] = v
			}
			nc, err := c.networks()
			if err != nil {
				return err
			}
			data, _ := json.Marshal(req)
			r, err := nc.Create(ctx(), &apiv1.NetworkCreateRequest{ConfigJson: data})
			if err != nil {
				return c.apiErr(err)
			}
			fmt.Fprintln(c.Out, r.Name)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&req.Driver, "driver", "d", "bridge", "driver (bridge)")
	fs.StringVar(&req.Subnet, "subnet", "", "subnet in CIDR form (default: the next free /24)")
	fs.StringVar(&req.Gateway, "gateway", "", "gateway address (default: the subnet's first)")
	fs.BoolVar(&req.Internal, "internal", false, "no route out and no masquerade")
	fs.StringArrayVar(&labels, "label", nil, "set a label (KEY=VALUE)")
	return cmd
}

// networkFilters parses -f name=|driver=|label=|id=.
func networkFilters(list []string) ([]*apiv1.NetworkFilter, error) {
	var out []*apiv1.NetworkFilter
	for _, f := range list {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return nil, invalid("invalid --filter %q (want name=NAME, driver=DRIVER, id=ID or label=KEY[=VALUE])", f)
		case k == "name" || k == "driver" || k == "id" || k == "label":
		default:
			return nil, invalid("invalid --filter %q: unknown key %q (want name, driver, id or label)", f, k)
		}
		out = append(out, &apiv1.NetworkFilter{Key: k, Value: v})
	}
	return out, nil
}

var networkHeaders = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER",
	"Subnet": "SUBNET", "Gateway": "GATEWAY", "Internal": "INTERNAL", "Labels": "LABELS", "Bridge": "BRIDGE"}

// networkRow is one row of network ls, docker's template names.
type networkRow struct {
	ID, Name, Driver, Subnet, Gateway, Bridge, Labels string
	Internal                                          bool
}

func newNetworkLsCommand(c *CLI) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, err := networkFilters(filters)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			if quiet {
				format = "{{.ID}}"
			} else if format == "" {
				format = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Subnet}}"
			}
			f, err := newFormatter(c.Out, "--format", format, networkHeaders)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			nc, err := c.networks()
			if err != nil {
				return err
			}
			r, err := nc.List(ctx(), &apiv1.NetworkListRequest{Filters: fl})
			if err != nil {
				return c.apiErr(err)
			}
			var list []types.NetworkResource
			if err := json.Unmarshal(r.Json, &list); err != nil {
				return err
			}
			for _, n := range list {
				id := n.ID
				if !noTrunc && len(id) > 12 {
					id = id[:12]
				}
				var ls []string
				for _, k := range sortedKeys(n.Labels) {
					ls = append(ls, k+"="+n.Labels[k])
				}
				if err := f.row(networkRow{ID: id, Name: n.Name, Driver: n.Driver, Subnet: n.Subnet, Gateway: n.Gateway,
					Bridge: n.Bridge, Internal: n.Internal, Labels: strings.Join(ls, ",")}); err != nil {
					return err
				}
			}
			return f.flush()
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	fs.StringVar(&format, "format", "", "format the output with a Go template ({{.Name}}, {{.Subnet}}...; 'table ...' for columns)")
	fs.StringArrayVarP(&filters, "filter", "f", nil, "filter: name=NAME, driver=DRIVER, id=ID, label=KEY[=VALUE]")
	return cmd
}

func newNetworkInspectCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Show networks in detail (JSON)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *template.Template
			if format != "" {
				var err error
				if t, err = parseTemplate("--format", format); err != nil {
					return withCode(ExitEngine, err)
				}
			}
			nc, err := c.networks()
			if err != nil {
				return err
			}
			return c.inspectEach(args, t, func(name string) (json.RawMessage, error) {
				r, err := nc.Inspect(ctx(), &apiv1.NetworkNameRequest{Name: name})
				if err != nil {
					return nil, err
				}
				return json.RawMessage(r.Json), nil
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, e.g. '{{.Subnet}}'")
	return cmd
}

func newNetworkRmCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nc, err := c.networks()
			if err != nil {
				return err
			}
			return c.forEach(args, func(name string) error {
				_, err := nc.Remove(ctx(), &apiv1.NetworkNameRequest{Name: name})
				return c.apiErr(err)
			})
		},
	}
}

func newNetworkPruneCommand(c *CLI) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove the networks no container uses",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, err := networkFilters(filters)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			nc, err := c.networks()
			if err != nil {
				return err
			}
			r, err := nc.Prune(ctx(), &apiv1.NetworkPruneRequest{Filters: fl})
			if err != nil {
				return c.apiErr(err)
			}
			for _, n := range r.Removed {
				fmt.Fprintln(c.Out, n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt (there is no prompt)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter: name=, driver=, id=, label=")
	return cmd
}
