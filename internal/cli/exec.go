package cli

import (
	"context"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/cli/runopts"
)

func init() { register(newExecCommand) }

type execOptions struct {
	interactive, tty, detach, privileged bool
	env                                  []string
	user, workdir                        string
}

// config builds the exec request's configuration.
func (o *execOptions) config(cmd []string, lookup func(string) (string, bool)) (*types.ExecConfig, error) {
	env, err := runopts.ParseEnvWith(o.env, lookup)
	if err != nil {
		return nil, err
	}
	if o.workdir != "" && o.workdir[0] != '/' {
		return nil, invalid("invalid --workdir %q (want an absolute path)", o.workdir)
	}
	return &types.ExecConfig{
		Cmd: cmd, Env: env, User: o.user, WorkingDir: o.workdir, Tty: o.tty,
		AttachStdin: o.interactive && !o.detach, Detach: o.detach, Privileged: o.privileged,
	}, nil
}

func newExecCommand(c *CLI) *cobra.Command {
	o := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Long:  "Run a command in a running container and exit with its exit code (126: cannot be executed, 127: not found).",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ec, err := o.config(args[1:], c.LookupEnv)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			if !o.detach {
				if err := c.checkTTY(o.tty, o.interactive); err != nil {
					return withCode(ExitEngine, err)
				}
			}
			b, _ := json.Marshal(ec)
			cl, err := c.client()
			if err != nil {
				return err
			}
			id := args[0]
			open := func(cx context.Context) (ioStream, error) { return cl.Exec(cx) }
			first := func(w, h uint32) *apiv1.StreamIn {
				return &apiv1.StreamIn{Msg: &apiv1.StreamIn_Exec{Exec: &apiv1.ExecRequest{Id: id, ConfigJson: b, Width: w, Height: h}}}
			}
			res, err := c.runStream(open, first, streamSpec{tty: o.tty, stdin: ec.AttachStdin, detach: o.detach, noReady: true})
			if err != nil {
				return err
			}
			if !res.exited && !res.detached {
				return withCode(ExitEngine, errorString("the exec stream ended without an exit status"))
			}
			return c.streamExit(res)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "keep stdin open and forward it")
	fs.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fs.BoolVarP(&o.detach, "detach", "d", false, "run the command in the background")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable")
	fs.StringVarP(&o.user, "user", "u", "", "user name or uid[:group or gid]")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	fs.BoolVar(&o.privileged, "privileged", false, "give extended privileges to the command")
	return cmd
}
