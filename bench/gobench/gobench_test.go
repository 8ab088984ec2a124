// Package gobench holds Go benchmarks of the engine's start path that need no daemon:
// OCI spec generation (every create) and the on-disk writes (every create, start, exit).
//
//	go test -run '^$' -bench . -benchmem ./bench/gobench
package gobench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/spec"
)

func options(b *testing.B, system bool) spec.Options {
	b.Helper()
	return spec.Options{
		ID:          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Config:      types.Config{Cmd: []string{"true"}, Hostname: "0123456789ab"},
		HostConfig:  types.HostConfig{SystemContainer: system},
		Rootfs:      b.TempDir(),
		Hostname:    "0123456789ab",
		EngineName:  "isulad",
		CgroupsPath: "/isulad/0123456789abcdef",
	}
}

// BenchmarkSpecGenerate: the default container's spec (docker capabilities, masked paths,
// the default seccomp profile), as on every create.
func BenchmarkSpecGenerate(b *testing.B) {
	o := options(b, false)
	if _, err := spec.Generate(o); err != nil {
		b.Skip("spec generation needs this host:", err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := spec.Generate(o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpecGenerateSystem: a system container's spec.
func BenchmarkSpecGenerateSystem(b *testing.B) {
	o := options(b, true)
	if _, err := spec.Generate(o); err != nil {
		b.Skip("spec generation needs this host:", err)
	}
	for b.Loop() {
		if _, err := spec.Generate(o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpecMarshal: config.json as written into the bundle.
func BenchmarkSpecMarshal(b *testing.B) {
	s, err := spec.Generate(options(b, false))
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, err := json.Marshal(s); err != nil {
			b.Fatal(err)
		}
	}
}

func stateDir(b *testing.B) string {
	// Next to the engine's default state (/var/run/isulad), which on this kind of host may be
	// a disk, not a tmpfs.
	d, err := os.MkdirTemp("/run", "isulad-gobench-")
	if err != nil {
		d = b.TempDir()
	} else {
		b.Cleanup(func() { os.RemoveAll(d) })
	}
	return d
}

// BenchmarkAtomicWriteSync: a record write with fsync of the file and its directory
// (internal/atomicfile: container.json, hostconfig.json, config.json).
func BenchmarkAtomicWriteSync(b *testing.B) {
	p := filepath.Join(stateDir(b), "container.json")
	data := make([]byte, 2048)
	for b.Loop() {
		if err := atomicfile.Write(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAtomicWriteRename: the same without fsync (what the shim does for its runtime
// state: shim.pid, init.pid, exit.json).
func BenchmarkAtomicWriteRename(b *testing.B) {
	p := filepath.Join(stateDir(b), "exit.json")
	data := make([]byte, 64)
	for b.Loop() {
		if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			b.Fatal(err)
		}
	}
}
