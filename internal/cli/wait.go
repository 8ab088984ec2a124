package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newWaitCommand) }

func newWaitCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			failed := false
			for _, ref := range args {
				r, err := cl.Wait(ctx(), &apiv1.IDRequest{Id: ref})
				if err != nil {
					c.report(nil, c.apiErr(err))
					failed = true
					continue
				}
				fmt.Fprintln(c.Out, r.ExitCode)
			}
			if failed {
				return withCode(ExitError, nil)
			}
			return nil
		},
	}
}
