package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/cli/runopts"
	"github.com/isulad-go/isulad/internal/errdefs"
)

func init() { register(newRunCommand) }

func newRunCommand(c *CLI) *cobra.Command {
	o := &runopts.RunOptions{}
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and start a container",
		Long: "Create and start a container, and (without -d) attach to it and exit with its exit code.\n" +
			"IMAGE is none with --external-rootfs DIR. Exit codes: 125 engine error, 126 command\n" +
			"cannot be executed, 127 command not found, else the container's.",
		Args:        minArgs(1),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(o, args[0], args[1:])
		},
	}
	runopts.AddRunFlags(cmd.Flags(), o)
	return cmd
}

func (c *CLI) run(o *runopts.RunOptions, image string, cmd []string) error {
	req, err := o.BuildRequest(image, cmd, o.Detach, c.LookupEnv)
	if err != nil {
		return withCode(ExitEngine, err)
	}
	if !o.Detach {
		if err := c.checkTTY(o.TTY, o.Interactive); err != nil {
			return withCode(ExitEngine, err)
		}
	}
	if err := c.ensureImage(req.Config.Image, o.Image.Pull); err != nil {
		return withCode(ExitEngine, err)
	}
	if o.Detach {
		// Created and started in one call.
		id, err := c.createStart(req, true)
		if err != nil {
			return withCode(ExitEngine, err)
		}
		fmt.Fprintln(c.Out, id)
		return nil
	}
	// Created, attached to and started in one stream.
	createJSON, err := json.Marshal(req)
	if err != nil {
		return withCode(ExitEngine, err)
	}
	res, err := c.attachCreate("", createJSON, true, o.Interactive, o.TTY, o.SigProxy)
	if err != nil {
		return withCode(ExitEngine, err)
	}
	id := res.id
	err = c.streamExit(res)
	// The daemon sends the Exit of an attached start once the exit is handled, --rm's
	// removal included: only an exit learnt otherwise (Wait) needs to look for the removal.
	if o.AutoRemove && !res.detached && !res.streamExit {
		c.waitRemoved(id, 60*time.Second)
	}
	return err
}

func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return withCode(code, nil)
}

// attach attaches to container id (starting it when start), and returns how the stream
// ended. Without an Exit message (the daemon closed the stream), the exit code comes from
// Wait.
func (c *CLI) attach(id string, start, stdin, tty, sigProxy bool) (streamResult, error) {
	return c.attachCreate(id, nil, start, stdin, tty, sigProxy)
}

// attachCreate is attach; with createJSON (a types.CreateRequest, id empty) the daemon
// creates the container first, and the result's id says which it is.
func (c *CLI) attachCreate(id string, createJSON []byte, start, stdin, tty, sigProxy bool) (streamResult, error) {
	cl, err := c.client()
	if err != nil {
		return streamResult{}, err
	}
	open := func(cx context.Context) (ioStream, error) { return cl.Attach(cx) }
	first := func(w, h uint32) *apiv1.StreamIn {
		return &apiv1.StreamIn{Msg: &apiv1.StreamIn_Attach{Attach: &apiv1.AttachRequest{
			Id: id, Stdin: stdin, Start: start, Width: w, Height: h, CreateJson: createJSON}}}
	}
	res, err := c.runStream(open, first, streamSpec{tty: tty, stdin: stdin, killID: id, sigProxy: sigProxy})
	if res.id == "" {
		res.id = id
	}
	if err != nil || res.exited || res.detached || res.id == "" {
		return res, err
	}
	id = res.id
	w, err := cl.Wait(ctx(), &apiv1.IDRequest{Id: id})
	if err != nil {
		return res, c.apiErr(err)
	}
	res.code, res.exited = int(w.ExitCode), true
	return res, nil
}

// waitRemoved waits until the container is gone (run --rm returns after the removal).
func (c *CLI) waitRemoved(id string, timeout time.Duration) {
	cl, err := c.client()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for time.Now().Before(deadline) {
		_, err := cl.Inspect(ctx(), &apiv1.IDRequest{Id: id})
		if err != nil {
			var de *daemonError
			if e := c.apiErr(err); errdefs.IsNotFound(e) || !errors.As(e, &de) {
				return
			}
		}
		time.Sleep(delay)
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}
