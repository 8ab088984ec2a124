// Command isulad is the container engine's daemon.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/internal/daemon"
	"github.com/isulad-go/isulad/internal/procs"
)

func main() {
	cfg := daemon.DefaultConfig()
	var configFile string
	var hosts []string
	cmd := &cobra.Command{
		Use:           "isulad",
		Short:         "The isulad container engine daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       daemon.Version,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cfg
			cfg = daemon.DefaultConfig()
			unknown, err := daemon.LoadConfigFile(&cfg, configFile, cmd.Flags().Changed("config-file"))
			if err != nil {
				return err
			}
			for _, k := range unknown {
				fmt.Fprintf(os.Stderr, "isulad: %s: ignoring unknown key %q\n", configFile, k)
			}
			f := cmd.Flags()
			if f.Changed("graph") {
				cfg.Graph = flags.Graph
			}
			if f.Changed("state") {
				cfg.State = flags.State
			}
			if f.Changed("host") {
				cfg.Hosts = hosts
			}
			if f.Changed("default-runtime") {
				cfg.DefaultRuntime = flags.DefaultRuntime
			}
			if f.Changed("log-level") {
				cfg.LogLevel = flags.LogLevel
			}
			if f.Changed("cgroup-parent") {
				cfg.CgroupParent = flags.CgroupParent
			}
			if err := cfg.Finish(); err != nil {
				return err
			}
			return run(cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config-file", daemon.DefaultConfigFile, "daemon configuration file")
	f.StringVarP(&cfg.Graph, "graph", "g", cfg.Graph, "root directory of persistent state")
	f.StringVarP(&cfg.State, "state", "S", cfg.State, "root directory of runtime state")
	f.StringArrayVarP(&hosts, "host", "H", nil, "API socket to listen on (unix://PATH), repeatable")
	f.StringVar(&cfg.DefaultRuntime, "default-runtime", cfg.DefaultRuntime, "default OCI runtime (runc or crun)")
	f.StringVarP(&cfg.LogLevel, "log-level", "l", cfg.LogLevel, "log level: debug, info, warn, error")
	f.StringVar(&cfg.CgroupParent, "cgroup-parent", cfg.CgroupParent, "default cgroup parent of containers")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "isulad: "+err.Error())
		os.Exit(1)
	}
}

func run(cfg daemon.Config) error {
	// No soft memory limit by default: one of 20 MiB (the idle footprint plus a few MiB)
	// kept the collector running through a burst of starts, 43% of the daemon's CPU then
	// (docs/PERFORMANCE.md, issue 14's third round). GOMEMLIMIT in the environment still
	// sets one. Memory freed after a burst goes back to the system below.
	go func() {
		// Give memory freed after a burst (100 containers started and removed) back to
		// the system; the heap is a few MiB, so this costs well under a millisecond.
		for range time.Tick(10 * time.Second) {
			debug.FreeOSMemory()
		}
	}()
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel))); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if os.Geteuid() != 0 {
		return fmt.Errorf("isulad must run as root")
	}
	lock, err := daemon.LockState(cfg.State)
	if err != nil {
		return err
	}
	defer lock.Close()
	// One P, but for an image's or an archive's work (internal/procs).
	procs.Narrow()
	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	srv, err := daemon.NewServer(d)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("isulad is listening", "hosts", cfg.Hosts, "graph", cfg.Graph, "state", cfg.State, "version", daemon.Version)
	return srv.Serve(ctx)
}
