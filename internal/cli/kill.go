package cli

import (
	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/opts"
)

func init() { register(newKillCommand) }

func newKillCommand(c *CLI) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Send a signal to one or more running containers (SIGKILL by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := opts.ParseSignal(signal)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			return c.forEach(args, func(ref string) error {
				_, err := cl.Kill(ctx(), &apiv1.KillRequest{Id: ref, Signal: opts.SignalName(sig)})
				return c.apiErr(err)
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal: a name (TERM, SIGRTMIN+3) or a number")
	return cmd
}
