package runopts

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// stringArray is pflag's StringArray value (each use of the flag appends one value, commas
// and all) without its String's CSV writer: pflag computes a flag's default with String when
// the flag is defined, and its StringArray's makes a 4 KB buffer for that each time. Run has
// 17 of these flags: 70 KB of the 88 KB that one parse allocated, and the daemon parses a
// front's command line on every run (PlanRun). Its type name is pflag's, so the help reads
// the same.
type stringArray struct {
	v       *[]string
	changed bool
}

func (s *stringArray) Set(val string) error {
	if !s.changed {
		*s.v = []string{val}
		s.changed = true
		return nil
	}
	*s.v = append(*s.v, val)
	return nil
}

func (s *stringArray) Type() string { return "stringArray" }

// String is pflag's rendering: the values as one CSV record in brackets ("[]" when empty),
// a value quoted where encoding/csv would quote it.
func (s *stringArray) String() string {
	q := make([]string, len(*s.v))
	for i, x := range *s.v {
		q[i] = x
		if r, _ := utf8.DecodeRuneInString(x); x != "" && (x == `\.` || strings.ContainsAny(x, ",\"\r\n") || unicode.IsSpace(r)) {
			q[i] = `"` + strings.ReplaceAll(x, `"`, `""`) + `"`
		}
	}
	return "[" + strings.Join(q, ",") + "]"
}

// stringArrayVarP defines a stringArray flag bound to p (nil default). Its DefValue is ""
// rather than "[]": pflag's help leaves out the default of its own StringArray by its type,
// and of any other value only when it reads as zero.
func stringArrayVarP(fs *pflag.FlagSet, p *[]string, name, shorthand, usage string) {
	*p = nil
	fs.VarP(&stringArray{v: p}, name, shorthand, usage)
	fs.Lookup(name).DefValue = ""
}
