package procs

import (
	"runtime"
	"sync"
	"testing"

	"github.com/isulad-go/isulad/internal/testenv"
)

// reset puts the package and the process back as a fresh process has them.
func reset(t *testing.T) int {
	t.Helper()
	restore := func() {
		mu.Lock()
		managed, wide = false, 0
		mu.Unlock()
		runtime.SetDefaultGOMAXPROCS()
	}
	restore()
	t.Cleanup(restore)
	return runtime.GOMAXPROCS(0)
}

func TestNarrowThenWide(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	def := reset(t)
	if def < 2 {
		testenv.Missing(t, "the default GOMAXPROCS is %d here: a second CPU is needed to see a change", def)
	}
	Narrow()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after Narrow: GOMAXPROCS %d, want 1", n)
	}
	end1 := Wide()
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("in a Wide: GOMAXPROCS %d, want the default %d", n, def)
	}
	end2 := Wide()
	end1()
	end1() // a second call is nothing: the other Wide still holds
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("one Wide of two ended (its end called twice): GOMAXPROCS %d, want %d", n, def)
	}
	end2()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after the last Wide: GOMAXPROCS %d, want 1", n)
	}
	Narrow() // again: no change, no count lost
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("Narrow twice: GOMAXPROCS %d, want 1", n)
	}
}

// A Wide in progress when Narrow is called keeps the default until it ends.
func TestNarrowDuringWide(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	def := reset(t)
	if def < 2 {
		testenv.Missing(t, "the default GOMAXPROCS is %d here: a second CPU is needed to see a change", def)
	}
	end := Wide()
	Narrow()
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("Narrow during a Wide: GOMAXPROCS %d, want %d", n, def)
	}
	end()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after the Wide: GOMAXPROCS %d, want 1", n)
	}
}

// The operator's GOMAXPROCS stays as it is, through Narrow and Wide.
func TestEnvironmentDecides(t *testing.T) {
	reset(t)
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3) // what the runtime took from the environment at the start
	Narrow()
	end := Wide()
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("GOMAXPROCS=3 in the environment, in a Wide: %d", n)
	}
	end()
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("GOMAXPROCS=3 in the environment, after Narrow and a Wide: %d", n)
	}
}

// Many Wides at once, ending in any order: one P once they are all done.
func TestWideConcurrent(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	def := reset(t)
	if def < 2 {
		testenv.Missing(t, "the default GOMAXPROCS is %d here: a second CPU is needed to see a change", def)
	}
	Narrow()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			end := Wide()
			runtime.Gosched()
			end()
		}()
	}
	wg.Wait()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after 50 Wides: GOMAXPROCS %d, want 1", n)
	}
	if wide != 0 {
		t.Fatalf("count %d after all ended", wide)
	}
}
