package cli

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/opts"
)

func init() { register(newUpdateCommand) }

// parseChannelResize reads one --host-channel of update: "<container path>:<new size>".
func parseChannelResize(s string) (string, int64, error) {
	p, size, ok := strings.Cut(s, ":")
	if !ok || p == "" || size == "" || strings.Contains(size, ":") || !path.IsAbs(p) {
		return "", 0, invalid("invalid --host-channel %q (want <container path>:<new size>, e.g. /ch:64M)", s)
	}
	n, err := hostchannel.ParseSize(size)
	if err != nil {
		return "", 0, invalid("invalid --host-channel %q: %v", s, err)
	}
	return path.Clean(p), n, nil
}

func newUpdateCommand(c *CLI) *cobra.Command {
	var memory, memorySwap, cpus, restart string
	var cpuShares, pidsLimit int64
	var channels []string
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Long: "Change the resources and restart policy of containers. A running container is changed\n" +
			"live through the OCI runtime's update; the new values are kept for its next starts\n" +
			"and shown by inspect. --host-channel resizes a channel live (its tmpfs is remounted\n" +
			"with the new size; shrinking below what is in use is refused).",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u types.UpdateConfig
			var err error
			fail := func(err error) error { return withCode(ExitEngine, err) }
			changed := cmd.Flags().Changed
			if changed("memory") {
				if u.Memory, err = opts.ParseMemory(memory); err != nil {
					return fail(err)
				}
				if u.Memory == 0 {
					return fail(invalid("invalid --memory %q: update cannot remove a memory limit (want a size of at least 6MiB)", memory))
				}
			}
			if changed("memory-swap") {
				if u.MemorySwap, err = opts.ParseMemorySwap(memorySwap); err != nil {
					return fail(err)
				}
			}
			if changed("cpus") {
				if u.NanoCPUs, err = opts.ParseCPUs(cpus); err != nil {
					return fail(err)
				}
			}
			if changed("cpu-shares") {
				if cpuShares <= 0 {
					return fail(invalid("invalid --cpu-shares %d (want 2 to 262144)", cpuShares))
				}
				u.CPUShares = cpuShares
			}
			if changed("pids-limit") {
				u.PidsLimit = &pidsLimit
			}
			if changed("restart") {
				rp, err := opts.ParseRestartPolicy(restart)
				if err != nil {
					return fail(err)
				}
				u.RestartPolicy = &rp
			}
			for _, s := range channels {
				p, n, err := parseChannelResize(s)
				if err != nil {
					return fail(err)
				}
				if u.HostChannels == nil {
					u.HostChannels = map[string]int64{}
				}
				if _, dup := u.HostChannels[p]; dup {
					return fail(invalid("--host-channel %s is given twice", p))
				}
				u.HostChannels[p] = n
			}
			if u.Memory == 0 && u.MemorySwap == 0 && u.NanoCPUs == 0 && u.CPUShares == 0 && u.PidsLimit == nil && u.RestartPolicy == nil && u.HostChannels == nil {
				return usagef(cmd, "you must provide one or more flags when using this command")
			}
			// The daemon's check (create's rules), early, on what does not depend on the
			// container's current values.
			pre := types.CreateRequest{Config: types.Config{Cmd: []string{"x"}, Image: "none"}, HostConfig: types.HostConfig{
				ExternalRootfs: "/", Memory: u.Memory, NanoCPUs: u.NanoCPUs, CPUShares: u.CPUShares, PidsLimit: u.PidsLimit}}
			if u.Memory != 0 {
				pre.HostConfig.MemorySwap = u.MemorySwap
			}
			if u.RestartPolicy != nil {
				pre.HostConfig.RestartPolicy = *u.RestartPolicy
			}
			if err := opts.ValidateCreate(&pre); err != nil {
				return fail(err)
			}
			data, _ := json.Marshal(u)
			oc, err := c.ops()
			if err != nil {
				return err
			}
			return c.forEach(args, func(ref string) error {
				r, err := oc.Update(ctx(), &apiv1.UpdateRequest{Id: ref, UpdateJson: data})
				if err != nil {
					return c.apiErr(err)
				}
				for _, w := range r.Warnings {
					fmt.Fprintf(c.Err, "Warning: %s\n", oneLine(w))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&memory, "memory", "m", "", "memory limit (e.g. 512M); refused below what the container uses")
	f.StringVar(&memorySwap, "memory-swap", "", "memory plus swap limit; -1 for unlimited swap")
	f.StringVar(&cpus, "cpus", "", "number of CPUs (e.g. 1.5)")
	f.Int64Var(&cpuShares, "cpu-shares", 0, "CPU shares (relative weight)")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of processes (-1 for unlimited)")
	f.StringVar(&restart, "restart", "", "restart policy: no, always, on-failure[:N], unless-stopped, on-reboot")
	f.StringArrayVar(&channels, "host-channel", nil, "resize a host channel: <container path>:<new size> (repeatable)")
	cmd.ValidArgsFunction = c.completeContainers(true)
	cmd.RegisterFlagCompletionFunc("restart", completeWords("no", "always", "on-failure", "unless-stopped", "on-reboot"))
	for _, n := range []string{"memory", "memory-swap", "cpus", "cpu-shares", "pids-limit", "host-channel"} {
		cmd.RegisterFlagCompletionFunc(n, noFiles)
	}
	return cmd
}
