package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/opts"
)

func init() { register(newPortCommand) }

// newPortCommand prints the published ports of a container as docker does:
// "80/tcp -> 127.0.0.1:8080" for all, "127.0.0.1:8080" for one PORT[/PROTO].
func newPortCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List a container's published ports",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef(cmd, "%q requires 1 or 2 arguments", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			want := ""
			if len(args) == 2 {
				p, proto, err := opts.ParsePortKey(args[1])
				if err != nil {
					return withCode(ExitEngine, err)
				}
				want = fmt.Sprintf("%d/%s", p, proto)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			r, err := cl.Inspect(ctx(), &apiv1.IDRequest{Id: args[0]})
			if err != nil {
				return c.apiErr(err)
			}
			var j types.ContainerJSON
			if err := json.Unmarshal(r.Json, &j); err != nil {
				return err
			}
			var ports types.PortMap
			if j.NetworkSettings != nil {
				ports = j.NetworkSettings.Ports
			}
			if want != "" {
				bs, ok := ports[want]
				if !ok {
					return fmt.Errorf("no public port '%s' published for %s", want, strings.TrimPrefix(j.Name, "/"))
				}
				for _, b := range bs {
					fmt.Fprintf(c.Out, "%s:%s\n", b.HostIP, b.HostPort)
				}
				return nil
			}
			keys := make([]string, 0, len(ports))
			for k := range ports {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, k int) bool {
				var a, b int
				fmt.Sscan(keys[i], &a)
				fmt.Sscan(keys[k], &b)
				if a != b {
					return a < b
				}
				return keys[i] < keys[k]
			})
			for _, k := range keys {
				for _, b := range ports[k] {
					fmt.Fprintf(c.Out, "%s -> %s:%s\n", k, b.HostIP, b.HostPort)
				}
			}
			return nil
		},
	}
}
