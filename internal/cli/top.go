package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newTopCommand) }

func newTopCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			r, err := cl.Top(ctx(), &apiv1.TopRequest{Id: args[0], PsArgs: args[1:]})
			if err != nil {
				return c.apiErr(err)
			}
			tw := tabwriter.NewWriter(c.Out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(r.Titles, "\t"))
			for _, p := range r.Processes {
				fmt.Fprintln(tw, strings.Join(p.Fields, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}
