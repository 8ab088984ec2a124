package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
)

// complete runs `isula __complete args...` (what the bash completion script calls) and
// returns the suggestions.
func complete(t *testing.T, c *CLI, args ...string) []string {
	t.Helper()
	var out bytes.Buffer
	c.Out, c.Err = &out, &bytes.Buffer{}
	c.Run(append([]string{"__complete"}, args...))
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "Completion ended") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return got
}

func TestCompletionOfTheOpsCommands(t *testing.T) {
	f := &fakeClient{list: []types.Container{{Names: "web"}, {Names: "db"}}}
	c := &CLI{Client: f}
	if got := complete(t, c, ""); !containsAll(got, "cp", "stats", "events", "update", "volume") {
		t.Fatalf("commands: %v", got)
	}
	if got := complete(t, c, "volume", ""); !containsAll(got, "create", "ls", "inspect", "rm", "prune") {
		t.Fatalf("volume subcommands: %v", got)
	}
	// Every flag of every new command is offered.
	for cmd, flags := range map[string][]string{
		"cp":             {"--archive", "--follow-link"},
		"stats":          {"--no-stream", "--format", "--all", "--no-trunc"},
		"events":         {"--since", "--until", "--filter", "--format"},
		"update":         {"--memory", "--memory-swap", "--cpus", "--cpu-shares", "--pids-limit", "--restart", "--host-channel"},
		"volume create":  {"--label"},
		"volume ls":      {"--quiet", "--format"},
		"volume inspect": {"--format"},
		"volume rm":      {"--force"},
		"volume prune":   {"--force"},
	} {
		args := append(strings.Fields(cmd), "--")
		if got := complete(t, c, args...); !containsAll(got, flags...) {
			t.Errorf("%s: flags %v, want %v", cmd, got, flags)
		}
	}
	if got := complete(t, c, "cp", ""); !containsAll(got, "web:", "db:") {
		t.Errorf("cp: %v", got)
	}
	if got := complete(t, c, "update", "--restart", ""); !containsAll(got, "always", "on-failure", "unless-stopped") {
		t.Errorf("update --restart: %v", got)
	}
	if got := complete(t, c, "update", ""); !containsAll(got, "web", "db") {
		t.Errorf("update: %v", got)
	}
	if got := complete(t, c, "events", "--filter", ""); !containsAll(got, "container=", "event=", "type=") {
		t.Errorf("events --filter: %v", got)
	}
	if got := complete(t, c, "events", "--filter", "type="); !containsAll(got, "type=container", "type=hostchannel") {
		t.Errorf("events --filter type=: %v", got)
	}
	if got := complete(t, c, "events", "--filter", "container="); !containsAll(got, "container=web") {
		t.Errorf("events --filter container=: %v", got)
	}
}

func containsAll(got []string, want ...string) bool {
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}
