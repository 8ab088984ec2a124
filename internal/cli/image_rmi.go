package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/errdefs"
)

func init() {
	register(newRmiCommand)
	register(newTagCommand)
	register(newLoginCommand)
	register(newLogoutCommand)
	register(newImageCommand)
	register(newSystemCommand)
}

func printDeleted(out io.Writer, items []types.ImageDeleteItem) {
	for _, it := range items {
		if it.Untagged != "" {
			fmt.Fprintf(out, "Untagged: %s\n", it.Untagged)
		}
		if it.Deleted != "" {
			fmt.Fprintf(out, "Deleted: %s\n", it.Deleted)
		}
	}
}

func newRmiCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rmi [OPTIONS] IMAGE [IMAGE...]",
		Aliases: []string{"remove-images"},
		Short:   "Remove images (by name, ID or ID prefix)",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp types.ImageDeleteResponse
			err := c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.Remove(ctx(), r)
			}, types.ImageRemoveRequest{Names: args, Force: force}, &resp)
			if err != nil {
				return err
			}
			printDeleted(c.Out, resp.Items)
			failed := false
			for _, it := range resp.Items {
				if it.Error != "" {
					fmt.Fprintf(c.Err, "Error response from daemon: %s\n", it.Error)
					failed = true
				}
			}
			if failed {
				return withCode(ExitError, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove every name of the image, even if a container uses it")
	return cmd
}

func newTagCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE TARGET_IMAGE[:TAG]",
		Short: "Give an image another name",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.Tag(ctx(), r)
			}, types.ImageTagRequest{Source: args[0], Target: args[1]}, nil)
		},
	}
}

func newLoginCommand(c *CLI) *cobra.Command {
	var user, password string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (the daemon keeps the login, root-only)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			if stdin {
				if password != "" {
					return usagef(cmd, "--password and --password-stdin cannot be used together")
				}
				b, err := io.ReadAll(bufio.NewReader(c.In))
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || password == "" {
				return withCode(ExitError, errdefs.Errorf(errdefs.ErrInvalidArgument, "login to %s: give -u USER and -p PASSWORD or --password-stdin", server))
			}
			if !stdin {
				fmt.Fprintln(c.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			err := c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.Login(ctx(), r)
			}, types.LoginRequest{Server: server, Username: user, Password: password}, nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func newLogoutCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Forget the login to a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			err := c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.Logout(ctx(), r)
			}, types.LoginRequest{Server: server}, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.Out, "Removing login credentials for %s\n", server)
			return nil
		},
	}
}

func newImageCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	var all bool
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove dangling images (-a: every image no container uses)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp types.ImageDeleteResponse
			err := c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.Prune(ctx(), r)
			}, types.ImagePruneRequest{All: all}, &resp)
			if err != nil {
				return err
			}
			printDeleted(c.Out, resp.Items)
			fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", humanSize(resp.Reclaimed))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses")
	prune.Flags().BoolP("force", "f", false, "do not ask for a confirmation (isula never asks: accepted for docker's scripts)")
	cmd.AddCommand(prune)
	return cmd
}

func newSystemCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage the engine", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	df := &cobra.Command{
		Use:   "df",
		Short: "Show the space used by images, containers and host channels",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var u types.DiskUsage
			err := c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.DiskUsage(ctx(), r)
			}, struct{}{}, &u)
			if err != nil {
				return err
			}
			f, _ := newFormatter(c.Out, "", "table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Note}}",
				map[string]string{"Type": "TYPE", "Total": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Note": "NOTE"})
			type row struct{ Type, Total, Active, Size, Note string }
			f.row(row{"Images", fmt.Sprint(u.Images), fmt.Sprint(u.ImagesActive), humanSize(u.LayersSize + u.BlobsSize),
				fmt.Sprintf("layers %s, blobs %s, shared by several images %s", humanSize(u.LayersSize), humanSize(u.BlobsSize), humanSize(u.ImagesShared))})
			f.row(row{"Containers", fmt.Sprint(u.Containers), "", humanSize(u.ContainersSize), "the containers' own layers"})
			f.row(row{"Host channels", fmt.Sprint(u.Channels), "", humanSize(u.ChannelsSize), ""})
			return f.flush()
		},
	}
	cmd.AddCommand(df)
	return cmd
}
