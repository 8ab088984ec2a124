package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newStartCommand) }

type startOptions struct {
	attach, interactive bool
}

func newStartCommand(c *CLI) *cobra.Command {
	o := &startOptions{}
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.attach || o.interactive {
				if len(args) > 1 {
					return usagef(cmd, "you cannot start and attach multiple containers at once")
				}
				return c.startAttach(args[0], o.interactive)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			return c.forEach(args, func(ref string) error {
				_, err := cl.Start(ctx(), &apiv1.IDRequest{Id: ref})
				return c.apiErr(err)
			})
		},
	}
	cmd.Flags().BoolVarP(&o.attach, "attach", "a", false, "attach stdout/stderr and exit with the container's exit code")
	cmd.Flags().BoolVarP(&o.interactive, "interactive", "i", false, "attach stdin")
	return cmd
}

// inspectContainer fetches the inspect document of one container.
func (c *CLI) inspectContainer(ref string) (*types.ContainerJSON, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	r, err := cl.Inspect(ctx(), &apiv1.IDRequest{Id: ref})
	if err != nil {
		return nil, c.apiErr(err)
	}
	var cj types.ContainerJSON
	if err := json.Unmarshal(r.Json, &cj); err != nil {
		return nil, err
	}
	return &cj, nil
}

func (c *CLI) startAttach(ref string, interactive bool) error {
	cj, err := c.inspectContainer(ref)
	if err != nil {
		return err
	}
	stdin := interactive && cj.Config.OpenStdin
	if err := c.checkTTY(cj.Config.Tty, stdin); err != nil {
		return err
	}
	res, err := c.attach(cj.ID, true, stdin, cj.Config.Tty, true)
	if err != nil {
		return err
	}
	return c.streamExit(res)
}

// streamExit turns the end of an attach/exec stream into the command's result.
func (c *CLI) streamExit(res streamResult) error {
	if res.detached {
		return nil
	}
	code := res.code
	if res.errMsg != "" {
		if code == 0 {
			code = ExitEngine
		}
		c.report(nil, &daemonError{err: errorString(res.errMsg)})
	}
	return exitWith(code)
}

type errorString string

func (e errorString) Error() string { return string(e) }
