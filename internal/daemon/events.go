package daemon

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// Event types and the actions of each.
const (
	eventContainer   = "container"   // create start die oom kill stop restart rm exec_create exec_start exec_die rename pause unpause update
	eventHostChannel = "hostchannel" // mount unmount resize
)

// event records a lifecycle event of c. kv are extra attributes (key, value, ...).
func (d *Daemon) event(c *container.Container, action string, kv ...string) {
	d.eventOf(eventContainer, c, action, kv...)
}

func (d *Daemon) eventOf(typ string, c *container.Container, action string, kv ...string) {
	if d.events == nil {
		return
	}
	c.Lock()
	attrs := map[string]string{"name": c.Name, "image": c.Config.Image}
	c.Unlock()
	for i := 0; i+1 < len(kv); i += 2 {
		attrs[kv[i]] = kv[i+1]
	}
	if err := d.events.Publish(types.Event{Type: typ, Action: action, ID: c.ID, Attrs: attrs}); err != nil {
		d.log.Warn("writing the event log", "err", err)
	}
}

// eventFilter is --filter: values of one key are alternatives, keys must all match.
func eventFilter(filters []*apiv1.Filter) (func(types.Event) bool, error) {
	f := map[string][]string{}
	for _, x := range filters {
		switch x.Key {
		case "container", "event", "type":
		default:
			return nil, fmt.Errorf("events: invalid filter %q (want container=, event= or type=): %w", x.Key+"="+x.Value, errInvalid)
		}
		f[x.Key] = append(f[x.Key], x.Value)
	}
	return func(e types.Event) bool {
		any := func(key string, ok func(string) bool) bool {
			vs := f[key]
			if len(vs) == 0 {
				return true
			}
			for _, v := range vs {
				if ok(v) {
					return true
				}
			}
			return false
		}
		return any("container", func(v string) bool { return v == e.Attrs["name"] || (len(v) > 0 && strings.HasPrefix(e.ID, v)) }) &&
			any("event", func(v string) bool { return v == e.Action || (v == "destroy" && e.Action == "rm") }) &&
			any("type", func(v string) bool { return v == e.Type })
	}, nil
}

func (s *opsService) Events(r *apiv1.EventsRequest, srv apiv1.Ops_EventsServer) error {
	match, err := eventFilter(r.Filters)
	if err != nil {
		return gerr(err)
	}
	var since, until time.Time
	if r.SinceUnixNano > 0 {
		since = time.Unix(0, r.SinceUnixNano)
	}
	if r.UntilUnixNano > 0 {
		until = time.Unix(0, r.UntilUnixNano)
		if since.IsZero() {
			since = time.Unix(0, 1) // --until alone: everything logged up to then
		}
	}
	follow := until.IsZero() || until.After(time.Now())
	past, sub, err := s.d.events.Subscribe(since, until, match, follow)
	if err != nil {
		return gerr(err)
	}
	send := func(e types.Event) error {
		data, _ := json.Marshal(e)
		return srv.Send(&apiv1.EventMessage{EventJson: data})
	}
	for _, e := range past {
		if err := send(e); err != nil {
			return err
		}
	}
	if sub == nil {
		return nil
	}
	defer sub.Stop()
	s.d.log.Debug("events client subscribed", "past", len(past))
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				if sub.Err != nil {
					return gerr(fmt.Errorf("%v: %w", sub.Err, errdefs.ErrResourceExhausted))
				}
				return nil // the daemon is shutting down
			}
			if err := send(e); err != nil {
				return err
			}
		case <-deadline:
			return nil
		case <-srv.Context().Done():
			return nil
		case <-s.d.closing:
			return gerr(fmt.Errorf("the daemon is shutting down: %w", errdefs.ErrUnavailable))
		}
	}
}

// channelEvent records a host channel's mount, unmount or resize.
func (d *Daemon) channelEvent(c *container.Container, action string, ch types.HostChannel) {
	d.eventOf(eventHostChannel, c, action, "path", ch.PathOnHost, "containerPath", ch.PathInContainer, "size", strconv.FormatInt(ch.Size, 10))
}

// EndStreams ends the API streams that would otherwise run for ever (events, stats), so that
// a graceful stop of the API does not wait for them. Safe to call more than once.
func (d *Daemon) EndStreams() {
	d.closingOnce.Do(func() {
		if d.closing != nil {
			close(d.closing)
		}
	})
}
