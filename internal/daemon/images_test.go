package daemon

import (
	"reflect"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
)

func TestApplyImageConfig(t *testing.T) {
	img := types.ImageConfig{
		Env: []string{"PATH=/img", "A=img", "B=img"}, Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"},
		WorkingDir: "/w", User: "u", StopSignal: "SIGUSR1", Labels: map[string]string{"k": "img", "j": "img"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}}, Volumes: map[string]struct{}{"/v": {}},
	}
	for name, tc := range map[string]struct {
		in    types.Config
		args  []string
		check func(types.Config) bool
	}{
		"image defaults": {types.Config{}, []string{"/ep", "c1", "c2"}, func(c types.Config) bool {
			return c.WorkingDir == "/w" && c.User == "u" && c.StopSignal == "SIGUSR1" && c.Labels["k"] == "img" &&
				reflect.DeepEqual(c.Env, []string{"PATH=/img", "A=img", "B=img"}) && len(c.ExposedPorts) == 1 && len(c.Volumes) == 1
		}},
		"args replace cmd":                 {types.Config{Cmd: []string{"x"}}, []string{"/ep", "x"}, nil},
		"entrypoint drops the image's cmd": {types.Config{Entrypoint: []string{"/sh"}}, []string{"/sh"}, nil},
		"entrypoint and args":              {types.Config{Entrypoint: []string{"/sh"}, Cmd: []string{"-c", "y"}}, []string{"/sh", "-c", "y"}, nil},
		"empty entrypoint clears":          {types.Config{Entrypoint: []string{""}, Cmd: []string{"ls"}}, []string{"ls"}, nil},
		"user values win": {types.Config{Env: []string{"A=user", "C=user"}, WorkingDir: "/mine", User: "0", StopSignal: "TERM", Labels: map[string]string{"k": "user"}},
			[]string{"/ep", "c1", "c2"}, func(c types.Config) bool {
				return reflect.DeepEqual(c.Env, []string{"PATH=/img", "B=img", "A=user", "C=user"}) && c.WorkingDir == "/mine" && c.User == "0" &&
					c.StopSignal == "TERM" && c.Labels["k"] == "user" && c.Labels["j"] == "img"
			}},
	} {
		c := tc.in
		applyImageConfig(&c, img)
		if got := processArgs(c); !reflect.DeepEqual(got, tc.args) {
			t.Errorf("%s: args %q, want %q", name, got, tc.args)
		}
		if tc.check != nil && !tc.check(c) {
			t.Errorf("%s: %+v", name, c)
		}
	}
}

func TestCheckImageConfig(t *testing.T) {
	if err := checkImageConfig("x", types.ImageConfig{WorkingDir: "/w", Env: []string{"A=b"}, StopSignal: "SIGTERM", User: "1:2"}); err != nil {
		t.Fatal(err)
	}
	for name, ic := range map[string]types.ImageConfig{
		"relative workdir": {WorkingDir: "../w"},
		"bad env":          {Env: []string{"=x"}},
		"bad signal":       {StopSignal: "SIGNOPE"},
		"nul in cmd":       {Cmd: []string{"a\x00b"}},
		"bad user":         {User: "a:b:c"},
	} {
		if err := checkImageConfig("x", ic); err == nil || !strings.Contains(err.Error(), "image x: its config has") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
