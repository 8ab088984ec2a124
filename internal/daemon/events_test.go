package daemon

import (
	"testing"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func TestEventFilter(t *testing.T) {
	e := types.Event{Type: "container", Action: "rm", ID: "abcdef0123", Attrs: map[string]string{"name": "web"}}
	for _, c := range []struct {
		f    []*apiv1.Filter
		want bool
	}{
		{nil, true},
		{[]*apiv1.Filter{{Key: "container", Value: "web"}}, true},
		{[]*apiv1.Filter{{Key: "container", Value: "abc"}}, true},
		{[]*apiv1.Filter{{Key: "container", Value: "bcd"}}, false},
		{[]*apiv1.Filter{{Key: "event", Value: "start"}, {Key: "event", Value: "rm"}}, true},
		{[]*apiv1.Filter{{Key: "event", Value: "destroy"}}, true},
		{[]*apiv1.Filter{{Key: "event", Value: "rm"}, {Key: "type", Value: "hostchannel"}}, false},
	} {
		m, err := eventFilter(c.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := m(e); got != c.want {
			t.Errorf("%v: %v, want %v", c.f, got, c.want)
		}
	}
	if _, err := eventFilter([]*apiv1.Filter{{Key: "label", Value: "x"}}); err == nil || !isErr(err, errInvalid) {
		t.Fatalf("unknown key: %v", err)
	}
}
