package runopts

import (
	"testing"

	"github.com/spf13/pflag"
)

// stringArray behaves and prints as pflag's StringArray: the same help, the same values.
func TestStringArrayIsPflags(t *testing.T) {
	for _, vals := range [][]string{nil, {"a"}, {"a,b", "c"}, {"", "x"}, {`say "hi"`, " lead", "\ttab", "multi\nline", `\.`, "ü"}} {
		var mine, theirs []string
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		stringArrayVarP(fs, &mine, "mine", "m", "usage")
		fs.StringArrayVarP(&theirs, "theirs", "t", nil, "usage")
		for _, v := range vals {
			if err := fs.Parse([]string{"--mine", v, "--theirs", v}); err != nil {
				t.Fatal(err)
			}
		}
		m, th := fs.Lookup("mine"), fs.Lookup("theirs")
		if m.Value.String() != th.Value.String() || m.Value.Type() != th.Value.Type() {
			t.Errorf("%q: mine %q %q, pflag's %q %q", vals, m.Value.String(), m.Value.Type(), th.Value.String(), th.Value.Type())
		}
		if len(mine) != len(theirs) {
			t.Fatalf("%q: %q against %q", vals, mine, theirs)
		}
		for i := range mine {
			if mine[i] != theirs[i] {
				t.Fatalf("%q: %q against %q", vals, mine, theirs)
			}
		}
	}
	// The help line reads the same.
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	var a, b []string
	stringArrayVarP(fs, &a, "env", "e", "set a variable")
	u1 := fs.FlagUsages()
	fs2 := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs2.StringArrayVarP(&b, "env", "e", nil, "set a variable")
	if u2 := fs2.FlagUsages(); u1 != u2 {
		t.Fatalf("help %q, pflag's %q", u1, u2)
	}
}
