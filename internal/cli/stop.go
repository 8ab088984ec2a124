package cli

import (
	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() {
	register(func(c *CLI) *cobra.Command { return newStopCommand(c, false) })
	register(func(c *CLI) *cobra.Command { return newStopCommand(c, true) })
}

type stopOptions struct {
	time  int
	force bool
}

// newStopCommand builds stop, or restart when restart is set.
func newStopCommand(c *CLI, restart bool) *cobra.Command {
	o := &stopOptions{}
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
	}
	if restart {
		cmd.Use = "restart [OPTIONS] CONTAINER [CONTAINER...]"
		cmd.Short = "Restart one or more containers"
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		timeout := int32(-1) // the container's default
		if cmd.Flags().Changed("time") {
			if o.time < 0 {
				return withCode(ExitEngine, invalid("invalid --time %d (want 0 or more seconds)", o.time))
			}
			timeout = int32(o.time)
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		return c.forEach(args, func(ref string) error {
			req := &apiv1.StopRequest{Id: ref, Timeout: timeout, Force: o.force}
			if restart {
				_, err = cl.Restart(ctx(), req)
			} else {
				_, err = cl.Stop(ctx(), req)
			}
			return c.apiErr(err)
		})
	}
	cmd.Flags().IntVarP(&o.time, "time", "t", 10, "seconds to wait for the stop before killing")
	if !restart {
		cmd.Flags().BoolVarP(&o.force, "force", "f", false, "kill at once, without the stop signal and grace time")
	}
	return cmd
}
