package cli

import (
	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/opts"
)

func init() { register(newRenameCommand) }

func newRenameCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := opts.NormalizeName(args[1])
			if err != nil {
				return withCode(ExitEngine, err)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			_, err = cl.Rename(ctx(), &apiv1.RenameRequest{Id: args[0], NewName: name})
			return c.apiErr(err)
		},
	}
}
