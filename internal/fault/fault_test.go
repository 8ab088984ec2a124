package fault

import "testing"

func TestParse(t *testing.T) {
	m := parse(" create-after-mkdir=kill, start-after-mount=error ,bare")
	if m["create-after-mkdir"] != "kill" || m["start-after-mount"] != "error" {
		t.Fatalf("parsed %v", m)
	}
	if _, ok := m["bare"]; !ok {
		t.Fatalf("a point without action is still named: %v", m)
	}
	if parse("") != nil {
		t.Fatalf("empty spec must give no points")
	}
}

func TestPoint(t *testing.T) {
	saved := points
	defer func() { points = saved }()
	points = nil
	if err := Point(CreateAfterMkdir); err != nil {
		t.Fatalf("off: %v", err)
	}
	points = parse("create-after-mkdir=error")
	if err := Point(CreateAfterMkdir); err == nil {
		t.Fatalf("error action did not fail")
	}
	if err := Point(StartAfterMount); err != nil {
		t.Fatalf("another point failed: %v", err)
	}
}
