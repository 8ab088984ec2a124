package cli

import (
	"github.com/spf13/cobra"
)

func init() { register(newAttachCommand) }

type attachOptions struct {
	noStdin, sigProxy bool
}

func newAttachCommand(c *CLI) *cobra.Command {
	o := &attachOptions{}
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output and error to a running container",
		Long:  "Attach to a running container. With a terminal, ctrl-p ctrl-q detaches.",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cj, err := c.inspectContainer(args[0])
			if err != nil {
				return err
			}
			stdin := !o.noStdin && cj.Config.OpenStdin
			if err := c.checkTTY(cj.Config.Tty, stdin); err != nil {
				return err
			}
			res, err := c.attach(cj.ID, false, stdin, cj.Config.Tty, o.sigProxy)
			if err != nil {
				return err
			}
			return c.streamExit(res)
		},
	}
	cmd.Flags().BoolVar(&o.noStdin, "no-stdin", false, "do not attach stdin")
	cmd.Flags().BoolVar(&o.sigProxy, "sig-proxy", true, "forward received signals to the container (not with a tty)")
	return cmd
}
