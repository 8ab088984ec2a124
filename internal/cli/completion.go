package cli

import (
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// Shell completion of values, for `isula completion bash` (cobra's, which asks the binary
// itself through `isula __complete`): container and volume names from the daemon, and the
// fixed vocabularies of the flags.

// containerNames lists the daemon's containers' names (running ones only unless all).
func (c *CLI) containerNames(all bool) []string {
	cl, err := c.client()
	if err != nil {
		return nil
	}
	r, err := cl.List(ctx(), &apiv1.ListRequest{All: all})
	if err != nil {
		return nil
	}
	var list []types.Container
	json.Unmarshal(r.ContainersJson, &list)
	var names []string
	for _, x := range list {
		names = append(names, strings.TrimPrefix(x.Names, "/"))
	}
	return names
}

// completeContainers completes every argument with container names.
func (c *CLI) completeContainers(all bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return c.containerNames(all), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeCp offers CONTAINER: for either argument of cp, and local files.
func (c *CLI) completeCp(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) >= 2 || strings.Contains(toComplete, ":") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range c.containerNames(true) {
		out = append(out, n+":")
	}
	return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveDefault
}

// completeVolumes completes with volume names.
func (c *CLI) completeVolumes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	oc, err := c.ops()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	r, err := oc.VolumeList(ctx(), &apiv1.Empty{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	vs, _ := decodeVolumes(r)
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeWords completes a flag's value from a fixed list.
func completeWords(words ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeEventFilter completes --filter of events: the keys, then the values of each.
func (c *CLI) completeEventFilter(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	key, _, ok := strings.Cut(toComplete, "=")
	if !ok {
		return []string{"container=", "event=", "type="}, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	}
	var vals []string
	switch key {
	case "container":
		vals = c.containerNames(true)
	case "event":
		vals = strings.Fields("create start die oom kill stop restart rm exec_create exec_start exec_die rename pause unpause update mount unmount resize")
	case "type":
		vals = []string{"container", "hostchannel"}
	}
	var out []string
	for _, v := range vals {
		out = append(out, key+"="+v)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// noFiles is for flags whose values are not files (sizes, numbers, templates).
func noFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}
