package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/image/reference"
)

func init() {
	register(newPullCommand)
	register(newPushCommand)
}

func newPullCommand(c *CLI) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:         "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short:       "Pull an image from a registry",
		Args:        exactArgs(1),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := reference.Parse(args[0])
			if err != nil {
				return withCode(ExitEngine, err)
			}
			if !quiet {
				fmt.Fprintf(c.Out, "Pulling %s\n", reference.Familiar(r.String()))
			}
			res, err := c.pull(args[0], c.Out, quiet)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			if quiet {
				fmt.Fprintln(c.Out, reference.Familiar(r.String()))
				return nil
			}
			fmt.Fprintf(c.Out, "Digest: %s\nStatus: downloaded %s\nImage ID: %s\n", res.Digest, reference.Familiar(r.String()), res.ID)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image name")
	return cmd
}

func newPushCommand(c *CLI) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:         "push [OPTIONS] NAME[:TAG]",
		Short:       "Push an image to a registry",
		Args:        exactArgs(1),
		Annotations: map[string]string{"engine-exit": "125"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := reference.Parse(args[0]); err != nil {
				return withCode(ExitEngine, err)
			}
			cl, err := c.images()
			if err != nil {
				return err
			}
			data, _ := json.Marshal(types.ImageRefRequest{Name: args[0]})
			stream, err := cl.Push(ctx(), &apiv1.ImageRequest{Json: data})
			if err != nil {
				return withCode(ExitEngine, c.apiErr(err))
			}
			res, err := c.followEvents(stream.Recv, newProgressView(c.Out, quiet))
			if err != nil {
				return withCode(ExitEngine, err)
			}
			fmt.Fprintf(c.Out, "%s: digest: %s\n", args[0], res.Digest)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}
