// Package cli implements the isula command line: one cobra command per file, each adding
// itself to the registry in an init function. Commands parse their flags into an options
// struct, check them with internal/opts (the daemon's own validators), then call the API.
//
// Exit codes: 0 on success; 125 for a bad command line (unknown flag, wrong arguments, an
// invalid value) and for every error of create and run; the container's or the process's
// exit code for run, start -a, attach and exec (126 and 127 when the daemon says the
// command cannot be executed or found); 1 for other errors of the daemon (no such
// container, ...), as docker. Errors are printed as one line on stderr.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/errdefs/grpcerr"
)

// DefaultHost is the daemon's default API address.
const DefaultHost = "unix:///var/run/isulad.sock"

// Exit codes.
const (
	ExitEngine        = 125 // the engine failed, or the command line is wrong
	ExitCannotExecute = 126
	ExitNotFound      = 127
	ExitError         = 1
)

// Version is the client's version; set with -ldflags "-X .../internal/cli.Version=...".
var (
	Version   = "0.1.0"
	GitCommit = ""
)

// CLI is one invocation of isula: its streams, global options and API client.
type CLI struct {
	In       io.Reader
	Out, Err io.Writer
	Host     string

	// Client is the API client; nil means dial Host on first use (tests set a fake).
	Client apiv1.ContainersClient
	conn   *grpc.ClientConn

	// LookupEnv reads the client's environment (for -e KEY); os.LookupEnv by default.
	LookupEnv func(string) (string, bool)

	ran bool // a command's RunE was entered: errors before that are command-line errors
}

// registry holds the constructors of the subcommands; each command file adds itself.
var registry []func(*CLI) *cobra.Command

func register(f func(*CLI) *cobra.Command) { registry = append(registry, f) }

// exitError carries an exit code; err (if any) is printed first.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// withCode makes err exit with code (nil err: exit silently with code).
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageError is a bad command line (flag or argument); exit 125 with a pointer to --help.
type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v (see '%s --help')", e.err, e.cmd)
}

// daemonError is an error that the daemon returned.
type daemonError struct{ err error }

func (e *daemonError) Error() string { return e.err.Error() }
func (e *daemonError) Unwrap() error { return e.err }

// connError: the daemon cannot be reached.
type connError struct {
	host string
	err  error
}

func (e *connError) Error() string {
	msg := fmt.Sprintf("Cannot connect to the isulad daemon at %s. Is the daemon running?", e.host)
	if s, ok := status.FromError(e.err); ok && strings.Contains(s.Message(), "permission denied") {
		msg = fmt.Sprintf("Cannot connect to the isulad daemon at %s: permission denied (the socket is for root only).", e.host)
	}
	return msg
}
func (e *connError) Unwrap() error { return errdefs.ErrUnavailable }

// Main runs isula with args (without the program name) and returns the exit code.
//
// The caller exits right after it: the connection is not closed first. A graceful close of a
// gRPC connection (GOAWAY, the transport's goroutines winding down) was 0.3-4.7 ms between
// `run`'s exit message and the process's exit (trace points, docs/PERFORMANCE.md); the kernel
// closes the socket at the exit, which the daemon sees as the client going away.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	c := &CLI{In: in, Out: out, Err: errOut, LookupEnv: os.LookupEnv}
	return c.Run(args)
}

// Run executes args on c and returns the exit code.
func (c *CLI) Run(args []string) int {
	root := c.NewRootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	return c.report(cmd, err)
}

// report prints err (one line) and returns the exit code.
func (c *CLI) report(cmd *cobra.Command, err error) int {
	if err == nil {
		return 0
	}
	code := ExitError
	if cmd != nil && (cmd.Annotations["engine-exit"] == "125") {
		code = ExitEngine
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err == nil {
			return ee.code
		}
		code = ee.code
		err = ee.err
	}
	var ue *usageError
	var de *daemonError
	var ce *connError
	if !c.ran && !errors.As(err, &ue) {
		name := "isula"
		if cmd != nil {
			name = cmd.CommandPath()
		}
		err = &usageError{cmd: name, err: err}
	}
	switch {
	case errors.As(err, &ue):
		code = ExitEngine
		fmt.Fprintf(c.Err, "Error: %v\n", err)
	case errors.As(err, &ce):
		fmt.Fprintln(c.Err, ce.Error())
	case errors.As(err, &de):
		if errdefs.IsInvalidArgument(err) && ee == nil {
			code = ExitEngine
		}
		fmt.Fprintf(c.Err, "Error response from daemon: %s\n", oneLine(err.Error()))
	default:
		if errdefs.IsInvalidArgument(err) && ee == nil {
			code = ExitEngine
		}
		fmt.Fprintf(c.Err, "Error: %s\n", oneLine(err.Error()))
	}
	return code
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// Close closes the API connection, if any.
func (c *CLI) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// NewRootCommand builds the isula command tree.
func (c *CLI) NewRootCommand() *cobra.Command {
	host := DefaultHost
	if h := os.Getenv("ISULAD_HOST"); h != "" {
		host = h
	}
	root := &cobra.Command{
		Use:           "isula",
		Short:         "The isulad container engine's client",
		Long:          "isula talks to the isulad daemon to create, run and manage containers.",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(c.In)
	root.SetOut(c.Out)
	root.SetErr(c.Err)
	root.SetVersionTemplate("isula version {{.Version}}\n")
	root.PersistentFlags().StringVarP(&c.Host, "host", "H", host, "the daemon's socket (env ISULAD_HOST)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	for _, f := range registry {
		root.AddCommand(f(c))
	}
	c.markRuns(root)
	return root
}

// markRuns wraps every RunE so that errors cobra returns before running a command (unknown
// command, bad flag, wrong arguments) can be told apart: they are usage errors.
func (c *CLI) markRuns(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			c.ran = true
			return run(cmd, args)
		}
	}
	for _, sub := range cmd.Commands() {
		c.markRuns(sub)
	}
}

// Argument checkers that produce usage errors.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
		}
		return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%q accepts no arguments", cmd.CommandPath())}
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%q requires exactly %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%q requires at least %d argument(s)", cmd.CommandPath(), n)}
		}
		return nil
	}
}

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// client returns the API client, dialling the daemon on first use.
func (c *CLI) client() (apiv1.ContainersClient, error) {
	if c.Client != nil {
		return c.Client, nil
	}
	target, err := dialTarget(c.Host)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --host %q: %v", c.Host, err)
	}
	c.conn = conn
	c.Client = apiv1.NewContainersClient(conn)
	return c.Client, nil
}

// dialTarget turns -H into a gRPC target: unix:///path, unix:/path or /path.
func dialTarget(h string) (string, error) {
	switch {
	case strings.HasPrefix(h, "unix://"):
		p := strings.TrimPrefix(h, "unix://")
		if !strings.HasPrefix(p, "/") {
			return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --host %q (want unix:///absolute/path.sock)", h)
		}
		return "unix://" + p, nil
	case strings.HasPrefix(h, "unix:/"):
		return "unix://" + strings.TrimPrefix(h, "unix:"), nil
	case strings.HasPrefix(h, "/"):
		return "unix://" + h, nil
	}
	return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --host %q (want unix:///absolute/path.sock)", h)
}

// apiErr turns an RPC error into a daemonError (plain message, category kept) or a
// connError when the daemon cannot be reached.
func (c *CLI) apiErr(err error) error {
	if err == nil {
		return nil
	}
	if isConnErr(err) {
		return &connError{host: c.Host, err: err}
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Canceled {
		return errdefs.Wrap(errdefs.ErrCanceled, errors.New("canceled"))
	}
	return &daemonError{err: grpcerr.FromGRPC(err)}
}

func isConnErr(err error) bool {
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.Unavailable {
		return false
	}
	m := s.Message()
	return strings.Contains(m, "connection error") || strings.Contains(m, "transport") ||
		strings.Contains(m, "dial unix") || strings.Contains(m, "connect:")
}

func ctx() context.Context { return context.Background() }

func invalid(format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, args...)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
