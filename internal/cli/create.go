package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/cli/runopts"
)

func init() { register(newCreateCommand) }

func newCreateCommand(c *CLI) *cobra.Command {
	o := &runopts.Options{}
	cmd := &cobra.Command{
		Use:         "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short:       "Create a new container",
		Long:        "Create a new container. IMAGE is none with --external-rootfs DIR.",
		Args:        minArgs(1),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.BuildRequest(args[0], args[1:], true, c.LookupEnv)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			if err := c.ensureImage(req.Config.Image, o.Image.Pull); err != nil {
				return withCode(ExitEngine, err)
			}
			id, err := c.create(req)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			fmt.Fprintln(c.Out, id)
			return nil
		},
	}
	runopts.AddFlags(cmd.Flags(), o)
	return cmd
}

// create sends a create request, prints the daemon's warnings and returns the new ID.
func (c *CLI) create(req *types.CreateRequest) (string, error) {
	return c.createStart(req, false)
}

// createStart creates the container and, with start, starts it in the same call (run -d).
func (c *CLI) createStart(req *types.CreateRequest, start bool) (string, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	cl, err := c.client()
	if err != nil {
		return "", err
	}
	resp, err := cl.Create(ctx(), &apiv1.CreateRequest{ConfigJson: b, Start: start})
	if err != nil {
		return "", c.apiErr(err)
	}
	c.warnAll(resp.Warnings)
	return resp.Id, nil
}

func (c *CLI) warnAll(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(c.Err, "WARNING: %s\n", w)
	}
}
