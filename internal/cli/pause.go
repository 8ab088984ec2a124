package cli

import (
	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() {
	register(func(c *CLI) *cobra.Command { return newPauseCommand(c, false) })
	register(func(c *CLI) *cobra.Command { return newPauseCommand(c, true) })
}

// newPauseCommand builds pause, or unpause.
func newPauseCommand(c *CLI, unpause bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return c.forEach(args, func(ref string) error {
				var err error
				if unpause {
					_, err = cl.Unpause(ctx(), &apiv1.IDRequest{Id: ref})
				} else {
					_, err = cl.Pause(ctx(), &apiv1.IDRequest{Id: ref})
				}
				return c.apiErr(err)
			})
		},
	}
	if unpause {
		cmd.Use = "unpause CONTAINER [CONTAINER...]"
		cmd.Short = "Unpause all processes within one or more containers"
	}
	return cmd
}
