package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/template"

	"github.com/spf13/cobra"
)

func init() { register(newInspectCommand) }

func newInspectCommand(c *CLI) *cobra.Command {
	var format, typ string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER|IMAGE [CONTAINER|IMAGE...]",
		Short: "Return low-level information on containers and images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *template.Template
			if format != "" {
				var err error
				if t, err = parseTemplate("--format", format); err != nil {
					return withCode(ExitEngine, err)
				}
			}
			if typ != "" && typ != "container" && typ != "image" {
				return withCode(ExitEngine, invalid("--type %q: want container or image", typ))
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			return c.inspectEach(args, t, func(ref string) (json.RawMessage, error) {
				r, err := c.inspectObject(cl, ref, typ)
				if err != nil {
					return nil, err
				}
				return json.RawMessage(r.Json), nil
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "what to inspect: container or image (default: a container, else an image)")
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, e.g. '{{.State.Pid}}' or '{{json .HostConfig}}'")
	return cmd
}

func asConn(err error, target **connError) bool {
	ce, ok := err.(*connError)
	if ok {
		*target = ce
	}
	return ok
}

// execInspectTemplate runs t on one inspect document decoded generically (numbers kept as
// written), followed by a newline, as docker.
func execInspectTemplate(out io.Writer, t *template.Template, doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return invalid("template: %s", trimTemplateErr(err))
	}
	b.WriteByte('\n')
	_, err := out.Write(b.Bytes())
	return err
}

// writeJSONArray prints documents as one JSON array indented with 4 spaces, like docker.
func writeJSONArray(out io.Writer, docs []json.RawMessage) error {
	if docs == nil {
		docs = []json.RawMessage{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(docs); err != nil {
		return fmt.Errorf("bad inspect document from the daemon: %w", err)
	}
	_, err := out.Write(b.Bytes())
	return err
}

// inspectEach prints the document fetch gives for each name: a JSON array, or each through
// the --format template t. A name that fails is reported and the others are still printed
// (exit 1); a daemon that cannot be reached ends it at once.
func (c *CLI) inspectEach(names []string, t *template.Template, fetch func(string) (json.RawMessage, error)) error {
	var docs []json.RawMessage
	failed := false
	for _, name := range names {
		doc, err := fetch(name)
		if err != nil {
			e := c.apiErr(err)
			var ce *connError
			if asConn(e, &ce) {
				return e
			}
			c.report(nil, e)
			failed = true
			continue
		}
		docs = append(docs, doc)
	}
	if t != nil {
		for _, d := range docs {
			if err := execInspectTemplate(c.Out, t, d); err != nil {
				return withCode(ExitError, err)
			}
		}
	} else if err := writeJSONArray(c.Out, docs); err != nil {
		return err
	}
	if failed {
		return withCode(ExitError, nil)
	}
	return nil
}
