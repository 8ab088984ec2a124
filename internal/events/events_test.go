package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/isulad-go/isulad/api/types"
)

func all(types.Event) bool { return true }

func TestPublishSubscribeAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, DefaultMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, sub, _ := l.Subscribe(time.Time{}, time.Time{}, func(e types.Event) bool { return e.Action != "skip" }, true)
	for _, a := range []string{"create", "skip", "start", "die"} {
		if err := l.Publish(types.Event{Type: "container", Action: a, ID: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"create", "start", "die"} {
		if e := <-sub.C; e.Action != want {
			t.Fatalf("live: got %s, want %s", e.Action, want)
		}
	}
	l.Close()
	if _, ok := <-sub.C; ok {
		t.Fatalf("subscription not ended by Close")
	}
	// A crash can leave half a line: skipped.
	f, _ := os.OpenFile(filepath.Join(dir, "events.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"Type":"container","Act`)
	f.Close()
	l, _ = Open(dir, DefaultMaxSize)
	defer l.Close()
	l.Publish(types.Event{Type: "container", Action: "rm", ID: "x"}) // after the broken line
	past, _, err := l.Subscribe(start, time.Time{}, all, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range past {
		got = append(got, e.Action)
	}
	if fmt.Sprint(got) != "[create skip start die rm]" {
		t.Fatalf("after reopen: %v", got)
	}
	// until bounds the past; times strictly increase.
	for i := 1; i < len(past); i++ {
		if past[i].TimeNano <= past[i-1].TimeNano {
			t.Fatalf("times not increasing: %v", past)
		}
	}
	upto, _, _ := l.Subscribe(start, time.Unix(0, past[1].TimeNano), all, false)
	if len(upto) != 2 {
		t.Fatalf("until: %d events, want 2", len(upto))
	}
}

func TestLogIsBounded(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 4096)
	defer l.Close()
	for i := 0; i < 1000; i++ {
		l.Publish(types.Event{Type: "container", Action: "start", ID: fmt.Sprint(i)})
	}
	var total int64
	for _, n := range []string{"events.log", "events.log.1"} {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > 2*4096 {
		t.Fatalf("log holds %d bytes, bound 2*4096", total)
	}
	past, _, _ := l.Subscribe(time.Unix(0, 1), time.Time{}, all, false)
	if len(past) == 0 || past[len(past)-1].ID != "999" {
		t.Fatalf("the newest events are not kept")
	}
}

func TestSlowSubscriberIsCutOff(t *testing.T) {
	l, _ := Open(t.TempDir(), DefaultMaxSize)
	defer l.Close()
	_, sub, _ := l.Subscribe(time.Time{}, time.Time{}, all, true)
	for i := 0; i < subBuffer+1; i++ {
		l.Publish(types.Event{Action: "start"})
	}
	n := 0
	for range sub.C {
		n++
	}
	if n != subBuffer || !errors.Is(sub.Err, ErrTooSlow) {
		t.Fatalf("got %d events and %v", n, sub.Err)
	}
}

func TestNoGapBetweenPastAndLive(t *testing.T) {
	l, _ := Open(t.TempDir(), DefaultMaxSize)
	defer l.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			l.Publish(types.Event{Action: "start", ID: fmt.Sprint(i)})
		}
	}()
	time.Sleep(time.Millisecond)
	past, sub, _ := l.Subscribe(time.Unix(0, 1), time.Time{}, all, true)
	wg.Wait()
	seen := len(past)
	for seen < 500 {
		e := <-sub.C
		if e.ID != fmt.Sprint(seen) {
			t.Fatalf("event %s, want %d", e.ID, seen)
		}
		seen++
	}
	sub.Stop()
	sub.Stop()
}
