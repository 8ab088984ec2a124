package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/opts"
)

func init() { register(newVolumeCommand) }

const defaultVolumeFormat = "table {{.Driver}}\t{{.Name}}"

var volumeHeaders = map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "Labels": "LABELS", "CreatedAt": "CREATED AT", "UsedBy": "USED BY"}

func decodeVolumes(r *apiv1.VolumeResponse) ([]types.Volume, error) {
	var vs []types.Volume
	if err := json.Unmarshal(r.VolumesJson, &vs); err != nil {
		return nil, fmt.Errorf("volume: bad answer from the daemon: %v", err)
	}
	return vs, nil
}

func newVolumeCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume COMMAND",
		Short: "Manage volumes",
		Long: "Named volumes of the local driver: directories under the daemon's --graph\n" +
			"(volumes/NAME/_data) that outlive containers. A container mounts one with\n" +
			"-v NAME:/path (made on first use).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newVolumeCreate(c), newVolumeLs(c), newVolumeInspect(c), newVolumeRm(c), newVolumePrune(c))
	return cmd
}

func newVolumeCreate(c *CLI) *cobra.Command {
	var labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume (a random name when none is given)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef(cmd, "%q accepts at most one volume name", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &apiv1.VolumeRequest{Labels: map[string]string{}}
			if len(args) == 1 {
				if !opts.ValidVolumeName(args[0]) {
					return withCode(ExitEngine, invalid("invalid volume name %q (want [a-zA-Z0-9][a-zA-Z0-9_.-]+, at least two characters)", args[0]))
				}
				req.Name = args[0]
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if k == "" {
					return withCode(ExitEngine, invalid("invalid --label %q (want KEY=VALUE)", l))
				}
				req.Labels[k] = v
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			r, err := oc.VolumeCreate(ctx(), req)
			if err != nil {
				return c.apiErr(err)
			}
			vs, err := decodeVolumes(r)
			if err != nil || len(vs) != 1 {
				return fmt.Errorf("volume create: bad answer from the daemon")
			}
			fmt.Fprintln(c.Out, vs[0].Name)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set metadata for a volume (KEY=VALUE, repeatable)")
	cmd.ValidArgsFunction = noFiles
	cmd.RegisterFlagCompletionFunc("label", noFiles)
	return cmd
}

func newVolumeLs(c *CLI) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quiet {
				format = "{{.Name}}"
			} else if format == "" {
				format = defaultVolumeFormat
			}
			f, err := newFormatter(c.Out, "--format", format, volumeHeaders)
			if err != nil {
				return withCode(ExitEngine, err)
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			r, err := oc.VolumeList(ctx(), &apiv1.Empty{})
			if err != nil {
				return c.apiErr(err)
			}
			vs, err := decodeVolumes(r)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if err := f.row(v); err != nil {
					return withCode(ExitEngine, err)
				}
			}
			return f.flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	cmd.Flags().StringVar(&format, "format", "", "pretty-print volumes using a Go template")
	cmd.RegisterFlagCompletionFunc("format", noFiles)
	return cmd
}

func newVolumeInspect(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *template.Template
			if format != "" {
				var err error
				if t, err = parseTemplate("--format", format); err != nil {
					return withCode(ExitEngine, err)
				}
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			return c.inspectEach(args, t, func(name string) (json.RawMessage, error) {
				r, err := oc.VolumeInspect(ctx(), &apiv1.VolumeRequest{Name: name})
				if err != nil {
					return nil, err
				}
				var vs []json.RawMessage
				if err := json.Unmarshal(r.VolumesJson, &vs); err != nil || len(vs) != 1 {
					return nil, fmt.Errorf("volume inspect %s: bad answer from the daemon", name)
				}
				return vs[0], nil
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	cmd.ValidArgsFunction = c.completeVolumes
	cmd.RegisterFlagCompletionFunc("format", noFiles)
	return cmd
}

func newVolumeRm(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes (refused while a container uses one)",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			oc, err := c.ops()
			if err != nil {
				return err
			}
			return c.forEach(args, func(name string) error {
				_, err := oc.VolumeRemove(ctx(), &apiv1.VolumeRequest{Name: name})
				if err != nil && force && errdefs.IsNotFound(c.apiErr(err)) {
					return nil
				}
				return c.apiErr(err)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not fail on a volume that does not exist")
	cmd.ValidArgsFunction = c.completeVolumes
	return cmd
}

func newVolumePrune(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all volumes that no container uses",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(c.Out, "WARNING! This will remove all volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(c.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			oc, err := c.ops()
			if err != nil {
				return err
			}
			r, err := oc.VolumePrune(ctx(), &apiv1.Empty{})
			if err != nil {
				return c.apiErr(err)
			}
			vs, err := decodeVolumes(r)
			if err != nil {
				return err
			}
			if len(vs) > 0 {
				fmt.Fprintln(c.Out, "Deleted Volumes:")
			}
			for _, v := range vs {
				fmt.Fprintln(c.Out, v.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}
