package runopts

import (
	"encoding/json"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"
)

// Plan is what the light protocol makes of a `run` command line (docs/ARCHITECTURE.md,
// "Front and full client").
type Plan struct {
	Create   []byte // the JSON of the create request, as the full client sends it
	SigProxy bool   // --sig-proxy
	Detach   bool   // -d
	// Fallback: --pull=missing with an image: a not-found error before the container is
	// made hands the command line to the full client, which pulls the image and runs.
	Fallback bool
}

// PlanRun parses the arguments of `isula run` (after the word run) the way the full client
// does, for the daemon: the front sends its command line and environment instead of
// parsing them (their parse and the packages behind it were ~0.9 ms of every front's
// start). ok is false for what the light protocol does not serve: --help, an attached -i
// or -t, a --pull other than missing or never, anything the full client rejects, and what
// only the client's side can do: read an --env-file, resolve a relative --external-rootfs
// or --hook-spec against its working directory, dial the daemon that an -H after run
// names. The full client then runs the command line. lookup is the client's environment
// (a bare -e KEY); nothing here reads the daemon's environment or files.
func PlanRun(args []string, lookup func(string) (string, bool)) (p Plan, ok bool) {
	if lookup == nil {
		return Plan{}, false
	}
	// One flag set as cobra merges them: run's own and the root's persistent -H.
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var host string
	fs.StringVarP(&host, "host", "H", "", "")
	o := &RunOptions{}
	AddRunFlags(fs, o)
	if err := fs.Parse(args); err != nil {
		return Plan{}, false // the full client prints the error
	}
	if help, _ := fs.GetBool("help"); help || fs.NArg() < 1 || fs.Changed("host") {
		return Plan{}, false
	}
	// -d is served whatever -i and -t say: nothing is attached (the full client checks the
	// terminal only for an attached run).
	if (!o.Detach && (o.Interactive || o.TTY)) || (o.Image.Pull != "missing" && o.Image.Pull != "never") {
		return Plan{}, false
	}
	if len(o.envFile) > 0 || (o.externalRootfs != "" && !filepath.IsAbs(o.externalRootfs)) ||
		(o.hookSpec != "" && !filepath.IsAbs(o.hookSpec)) {
		return Plan{}, false
	}
	req, err := o.BuildRequest(fs.Arg(0), fs.Args()[1:], o.Detach, lookup)
	if err != nil {
		return Plan{}, false
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Plan{}, false
	}
	return Plan{Create: b, SigProxy: o.SigProxy, Detach: o.Detach,
		Fallback: o.Image.Pull == "missing" && req.Config.Image != "none"}, true
}
