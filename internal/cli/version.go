package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newVersionCommand) }

// APIVersion is the API version the client speaks.
const APIVersion = "1"

func newVersionCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client and daemon versions",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(c.Out, "Client:\n Version:       %s\n API version:   %s\n Go version:    %s\n Git commit:    %s\n OS/Arch:       %s/%s\n",
				Version, APIVersion, runtime.Version(), GitCommit, runtime.GOOS, runtime.GOARCH)
			cl, err := c.client()
			if err != nil {
				return err
			}
			v, err := cl.Version(ctx(), &apiv1.Empty{})
			if err != nil {
				fmt.Fprintln(c.Out)
				return c.apiErr(err)
			}
			fmt.Fprintf(c.Out, "\nServer:\n Version:       %s\n API version:   %s\n Go version:    %s\n Git commit:    %s\n OS/Arch:       %s\n",
				v.Version, v.ApiVersion, v.GoVersion, v.GitCommit, v.OsArch)
			return nil
		},
	}
}
