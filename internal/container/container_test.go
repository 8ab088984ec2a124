package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/errdefs"
)

func TestTransitions(t *testing.T) {
	c := &Container{ID: "abc"}
	c.State.Status = string(Created)
	steps := []struct {
		to Status
		ok bool
	}{
		{Paused, false}, // a created container cannot be paused
		{Running, true},
		{Paused, true},
		{Created, false},
		{Running, true},
		{Exited, true},
		{Paused, false},
		{Running, true},
		{Exited, true},
		{Removing, true},
		{Running, false},
	}
	for i, s := range steps {
		err := c.SetStatusLocked(s.to)
		if (err == nil) != s.ok {
			t.Fatalf("step %d: %s -> %s: err=%v, want ok=%v", i, c.State.Status, s.to, err, s.ok)
		}
		var te *ErrTransition
		if err != nil && !errors.As(err, &te) {
			t.Fatalf("step %d: error is not a transition error: %v", i, err)
		}
	}
}

// Every pair of statuses, against the table written out here (not derived from the code's).
func TestEveryTransition(t *testing.T) {
	all := []Status{Created, Running, Paused, Restarting, Removing, Exited, Dead}
	allowed := map[[2]Status]bool{
		{Created, Running}: true, {Created, Exited}: true, {Created, Removing}: true,
		{Running, Paused}: true, {Running, Exited}: true, {Running, Removing}: true,
		{Paused, Running}: true, {Paused, Exited}: true, {Paused, Removing}: true,
		{Restarting, Running}: true, {Restarting, Exited}: true, {Restarting, Removing}: true,
		{Exited, Running}: true, {Exited, Restarting}: true, {Exited, Removing}: true,
		{Removing, Dead}: true,
		{Dead, Removing}: true,
	}
	for _, from := range all {
		for _, to := range all {
			c := &Container{ID: "abc"}
			c.State.Status = string(from)
			err := c.SetStatusLocked(to)
			want := allowed[[2]Status{from, to}]
			if (err == nil) != want {
				t.Errorf("%s -> %s: err=%v, want allowed=%v", from, to, err, want)
				continue
			}
			var te *ErrTransition
			if err != nil {
				if !errors.As(err, &te) || te.NoChange() != (from == to) {
					t.Errorf("%s -> %s: %v is not the right transition error", from, to, err)
				}
				if Status(c.State.Status) != from {
					t.Errorf("%s -> %s: a refused transition changed the status to %s", from, to, c.State.Status)
				}
				continue
			}
			st := c.State
			if st.Status != string(to) || st.Running != (to == Running || to == Paused) || st.Paused != (to == Paused) ||
				st.Restarting != (to == Restarting) || st.Dead != (to == Dead) {
				t.Errorf("%s -> %s: flags %+v", from, to, st)
			}
		}
	}
}

func TestUpdateRollsBackWhenTheSaveFails(t *testing.T) {
	s := newTestStore(t)
	c := add(t, s, "gggg", "full")
	// The record cannot be written: its directory is a file now (as good as a full disk).
	os.RemoveAll(s.Dir(c.ID))
	if err := os.WriteFile(s.Dir(c.ID), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Update(c, func(c *Container) error {
		c.ManualStop, c.RestartCount = true, 4
		return c.SetRunningLocked(42, time.Now())
	})
	if err == nil {
		t.Fatalf("a change that could not be saved succeeded")
	}
	if c.Status() != Created || c.ManualStop || c.RestartCount != 0 || c.State.Pid != 0 || c.StartedOnce {
		t.Fatalf("memory kept a change the disk does not have: %+v", c)
	}
	// A refused change is put back too, even its partial edits.
	os.Remove(s.Dir(c.ID))
	os.MkdirAll(s.Dir(c.ID), 0o700)
	err = s.Update(c, func(c *Container) error {
		c.ManualStop = true
		return c.SetStatusLocked(Paused)
	})
	if err == nil || c.ManualStop {
		t.Fatalf("refused change: err=%v manual=%v", err, c.ManualStop)
	}
	if err := s.Update(c, func(c *Container) error { return c.SetStatusLocked(Running) }); err != nil {
		t.Fatal(err)
	}
	s2, _ := NewStore(s.Root)
	s2.Load()
	if got, _ := s2.Get(c.ID); got == nil || got.Status() != Running {
		t.Fatalf("saved change not on disk: %+v", got)
	}
}

func TestRunningAndExitedFields(t *testing.T) {
	c := &Container{ID: "abc"}
	c.State.Status = string(Created)
	now := time.Now()
	if err := c.SetRunningLocked(42, now); err != nil {
		t.Fatal(err)
	}
	if !c.State.Running || c.State.Pid != 42 || !c.StartedOnce {
		t.Fatalf("running state: %+v", c.State)
	}
	if err := c.SetExitedLocked(137, now, true); err != nil {
		t.Fatal(err)
	}
	if c.State.Running || c.State.Pid != 0 || c.State.ExitCode != 137 || !c.State.OOMKilled {
		t.Fatalf("exited state: %+v", c.State)
	}
}

func newTestStore(t *testing.T) *Store {
	s, err := NewStore(filepath.Join(t.TempDir(), "containers"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func add(t *testing.T, s *Store, id, name string) *Container {
	c := &Container{ID: id, Name: name, Created: time.Now()}
	c.State.Status = string(Created)
	if err := s.ReserveName(name, id); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(s.Dir(id), 0o700)
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	s.Add(c)
	return c
}

func TestStoreGet(t *testing.T) {
	s := newTestStore(t)
	add(t, s, "aaaa1111", "one")
	add(t, s, "aaaa2222", "two")
	add(t, s, "bbbb3333", "three")
	for ref, want := range map[string]string{"one": "aaaa1111", "/two": "aaaa2222", "bbbb": "bbbb3333", "aaaa1": "aaaa1111", "aaaa2222": "aaaa2222"} {
		c, err := s.Get(ref)
		if err != nil || c.ID != want {
			t.Errorf("Get(%q) = %v, %v; want %s", ref, c, err, want)
		}
	}
	if _, err := s.Get("aaaa"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := s.Get("zzz"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Get(""); err == nil {
		t.Errorf("empty ref accepted")
	}
}

func TestReserveNameRace(t *testing.T) {
	s := newTestStore(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if s.ReserveName("same", fmt.Sprintf("id%d", i)) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d reservations of one name won", wins)
	}
}

func TestLoadAndOrphans(t *testing.T) {
	s := newTestStore(t)
	c := add(t, s, "cccc", "kept")
	c.Lock()
	c.State.ExitCode = 3
	c.Unlock()
	s.Save(c)
	os.MkdirAll(s.Dir("orphan"), 0o700) // a create killed before its record was saved
	s2, _ := NewStore(s.Root)
	found, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Unfinished) != 1 || filepath.Base(found.Unfinished[0]) != "orphan" || len(found.Quarantined) != 0 {
		t.Fatalf("found: %+v", found)
	}
	got, err := s2.Get("kept")
	if err != nil || got.State.ExitCode != 3 {
		t.Fatalf("reloaded: %v %v", got, err)
	}
}

func TestDeleteThenSaveDoesNotResurrect(t *testing.T) {
	s := newTestStore(t)
	c := add(t, s, "dddd", "gone")
	if err := s.Delete(c); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir(c.ID)); !os.IsNotExist(err) {
		t.Fatalf("a save after delete recreated the record: %v", err)
	}
	if s.Known(c.ID) {
		t.Fatalf("still known")
	}
}

func TestRename(t *testing.T) {
	s := newTestStore(t)
	a := add(t, s, "eeee", "a")
	add(t, s, "ffff", "b")
	if err := s.Rename(a, "b"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("rename onto a used name: %v", err)
	}
	if err := s.Rename(a, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); err == nil {
		t.Fatalf("old name still resolves")
	}
	if c, _ := s.Get("c"); c != a {
		t.Fatalf("new name does not resolve")
	}
}

func commit(t *testing.T, s *Store, id, name string, created time.Time) *Container {
	t.Helper()
	c := &Container{ID: id, Name: name, Created: created}
	c.State.Status = string(Running)
	if err := os.MkdirAll(s.Dir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue 10 #6: an unreadable record is a container set aside, not an unfinished create.
func TestLoadQuarantinesUnreadableRecords(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	damage := map[string]func(path string){
		"truncated": func(p string) { data, _ := os.ReadFile(p); os.WriteFile(p, data[:len(data)/2], 0o600) },
		"empty":     func(p string) { os.WriteFile(p, nil, 0o600) },
		"braces":    func(p string) { os.WriteFile(p, []byte("{}"), 0o600) },
		"deleted":   func(p string) { os.Remove(p) },
		"otherid": func(p string) {
			os.WriteFile(p, []byte(`{"ID":"good","Name":"x","State":{"Status":"running"}}`), 0o600)
		},
		"status": func(p string) {
			os.WriteFile(p, []byte(`{"ID":"status","Name":"x","State":{"Status":"flying"}}`), 0o600)
		},
	}
	for id, f := range damage {
		commit(t, s, id, "name-"+id, now)
		f(filepath.Join(s.Dir(id), recordFile))
	}
	commit(t, s, "good", "good", now)
	os.MkdirAll(s.Dir("unfinished"), 0o700) // a create killed before its commit point
	s2, _ := NewStore(s.Root)
	found, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Unfinished) != 1 || filepath.Base(found.Unfinished[0]) != "unfinished" {
		t.Fatalf("unfinished: %v", found.Unfinished)
	}
	got := map[string]bool{}
	for _, q := range found.Quarantined {
		got[q.ID] = true
		if q.Err == nil || q.Dir != s.Dir(q.ID) {
			t.Errorf("quarantined %+v", q)
		}
	}
	for id := range damage {
		if !got[id] {
			t.Errorf("%s: not quarantined (found %+v)", id, found)
		}
		if !s2.Owns(id) || s2.Known(id) {
			t.Errorf("%s: owns=%v known=%v", id, s2.Owns(id), s2.Known(id))
		}
		if _, err := os.Stat(s.Dir(id)); err != nil {
			t.Errorf("%s: directory touched: %v", id, err)
		}
	}
	if c, err := s2.Get("good"); err != nil || c.ID != "good" || len(s2.List()) != 1 {
		t.Fatalf("good record: %v %v", c, err)
	}
	if s2.Owns("unfinished") {
		t.Fatalf("an unfinished create is owned")
	}
}

// Issue 10 #6: a record edited to another container's name does not give two containers
// one name; the older keeps it.
func TestLoadNameClash(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	commit(t, s, "1111aaaa2222bbbb", "web", now)
	second := commit(t, s, "3333cccc4444dddd", "db", now.Add(time.Second))
	second.Name = "web"
	if err := s.Save(second); err != nil {
		t.Fatal(err)
	}
	s2, _ := NewStore(s.Root)
	found, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Renamed) != 1 || found.Renamed[0].ID != second.ID || found.Renamed[0].To != "web_3333cccc4444" || found.Renamed[0].SaveErr != nil {
		t.Fatalf("renamed: %+v", found.Renamed)
	}
	if c, _ := s2.Get("web"); c == nil || c.ID != "1111aaaa2222bbbb" {
		t.Fatalf("web is %v", c)
	}
	if c, _ := s2.Get("web_3333cccc4444"); c == nil || c.ID != second.ID {
		t.Fatalf("the renamed container does not resolve: %v", c)
	}
	s3, _ := NewStore(s.Root)
	if found, _ := s3.Load(); len(found.Renamed) != 0 {
		t.Fatalf("the new name was not saved: %+v", found.Renamed)
	}
}

// A --rm container's record (CommitTransient: no fsync, no commit mark) is loaded when it is
// whole; one a power loss left torn or empty is an unfinished create, not a quarantined
// container: it never reached a durable commit point.
func TestLoadTransientRecords(t *testing.T) {
	s := newTestStore(t)
	for _, id := range []string{"whole", "torn", "empty"} {
		c := &Container{ID: id, Name: "n-" + id, Created: time.Now()}
		c.State.Status = string(Created)
		os.MkdirAll(s.Dir(id), 0o700)
		if err := s.CommitTransient(c); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(s.Dir(id), commitFile)); !os.IsNotExist(err) {
			t.Fatalf("a transient commit wrote a commit mark: %v", err)
		}
	}
	p := filepath.Join(s.Dir("torn"), recordFile)
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)/2], 0o600)
	os.WriteFile(filepath.Join(s.Dir("empty"), recordFile), nil, 0o600)
	s2, _ := NewStore(s.Root)
	found, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range found.Unfinished {
		got[filepath.Base(d)] = true
	}
	if len(found.Quarantined) != 0 || len(got) != 2 || !got["torn"] || !got["empty"] {
		t.Fatalf("found %+v", found)
	}
	if c, err := s2.Get("n-whole"); err != nil || c.ID != "whole" {
		t.Fatalf("whole transient record: %v %v", c, err)
	}
}

func TestRunHoldsDelayAfterHolds(t *testing.T) {
	c := &Container{}
	run := c.NewRun()
	// No hold: at once.
	called := 0
	run.AfterHolds(func() { called++ })
	if called != 1 {
		t.Fatalf("AfterHolds without holds: called %d times, want 1", called)
	}
	r1, r2 := run.Hold(), run.Hold()
	run.AfterHolds(func() { called++ })
	r1()
	r1() // a second release of the same hold does nothing
	if called != 1 {
		t.Fatalf("AfterHolds ran with a hold left (called %d)", called)
	}
	r2()
	if called != 2 {
		t.Fatalf("AfterHolds did not run once the last hold went (called %d)", called)
	}
	r2()
	if called != 2 {
		t.Fatalf("a released hold ran AfterHolds again (called %d)", called)
	}
}
