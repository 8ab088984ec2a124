package cli

import (
	"testing"
	"time"
)

func TestParseEventTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"0s", now, false},
		{"1767323045", time.Unix(1767323045, 0), false},
		{"1767323045.5", time.Unix(1767323045, 500000000), false},
		{"2026-01-02T03:00:00Z", time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), false},
		{"-5m", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"12.", time.Time{}, true},
	} {
		got, err := parseEventTime("--since", c.in, now)
		if (err != nil) != c.err || !got.Equal(c.want) {
			t.Errorf("%q: %v %v, want %v (err %v)", c.in, got, err, c.want, c.err)
		}
	}
}
