package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"
)

// templateFuncs are docker's template functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		r, n := utf8.DecodeRuneInString(s)
		return strings.ToUpper(string(r)) + s[n:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if utf8.RuneCountInString(s) <= n {
			return s
		}
		return string([]rune(s)[:n])
	},
	"println": func(args ...any) string { return fmt.Sprintln(args...) },
}

// parseTemplate parses a --format template with docker's functions; errors are invalid
// arguments naming the template.
func parseTemplate(flag, s string) (*template.Template, error) {
	t, err := template.New("format").Funcs(templateFuncs).Parse(s)
	if err != nil {
		return nil, invalid("invalid %s template %q: %v", flag, s, trimTemplateErr(err))
	}
	return t, nil
}

func trimTemplateErr(err error) string {
	return strings.TrimPrefix(err.Error(), "template: format:")
}

// humanDuration is docker's (go-units) HumanDuration.
func humanDuration(d time.Duration) string {
	if seconds := int(d.Seconds()); seconds < 1 {
		return "Less than a second"
	} else if seconds == 1 {
		return "1 second"
	} else if seconds < 60 {
		return fmt.Sprintf("%d seconds", seconds)
	} else if minutes := int(d.Minutes()); minutes == 1 {
		return "About a minute"
	} else if minutes < 60 {
		return fmt.Sprintf("%d minutes", minutes)
	} else if hours := int(d.Hours() + 0.5); hours == 1 {
		return "About an hour"
	} else if hours < 48 {
		return fmt.Sprintf("%d hours", hours)
	} else if hours < 24*7*2 {
		return fmt.Sprintf("%d days", hours/24)
	} else if hours < 24*30*2 {
		return fmt.Sprintf("%d weeks", hours/24/7)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// ellipsis shortens s to at most n runes, ending with "…" when cut (docker's).
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:n])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// tableWriter renders a "table ..." template: a header row, then the rows, aligned.
type tableWriter struct {
	tw    *tabwriter.Writer
	t     *template.Template
	table bool
	out   io.Writer
}

// newFormatter prepares a --format value: "table TEMPLATE" gives aligned columns with a
// header (made by running the template on headers), "TEMPLATE" one line per item.
func newFormatter(out io.Writer, flag, format string, headers map[string]string) (*tableWriter, error) {
	f := &tableWriter{out: out}
	if rest, ok := strings.CutPrefix(format, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		f.table = true
		format = strings.TrimLeft(rest, " \t")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := parseTemplate(flag, format)
	if err != nil {
		return nil, err
	}
	f.t = t.Option("missingkey=zero")
	if f.table {
		f.tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		var b bytes.Buffer
		if err := f.t.Execute(&b, headers); err != nil {
			return nil, invalid("invalid %s template %q: %v", flag, format, trimTemplateErr(err))
		}
		f.tw.Write(b.Bytes())
		f.tw.Write([]byte("\n"))
	}
	return f, nil
}

func (f *tableWriter) row(v any) error {
	var b bytes.Buffer
	if err := f.t.Execute(&b, v); err != nil {
		return invalid("template: %v", trimTemplateErr(err))
	}
	b.WriteByte('\n')
	if f.tw != nil {
		_, err := f.tw.Write(b.Bytes())
		return err
	}
	_, err := f.out.Write(b.Bytes())
	return err
}

func (f *tableWriter) flush() error {
	if f.tw != nil {
		return f.tw.Flush()
	}
	return nil
}
