package cli

import "fmt"

// forEach runs f on every container named in refs, prints each ref that succeeded (as
// docker does), prints each failure on stderr, and exits 1 at the end if any failed.
func (c *CLI) forEach(refs []string, f func(ref string) error) error {
	failed := false
	for _, ref := range refs {
		if err := f(ref); err != nil {
			if _, ok := err.(*connError); ok {
				return err
			}
			c.report(nil, err)
			failed = true
			continue
		}
		fmt.Fprintln(c.Out, ref)
	}
	if failed {
		return withCode(ExitError, nil)
	}
	return nil
}
