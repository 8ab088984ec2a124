package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

func init() { register(newImagesCommand) }

// imageRow is one row of `images`; the field names are docker's template names.
type imageRow struct {
	Repository, Tag, Digest, ID, CreatedSince, CreatedAt, Size string
	Containers                                                 int
}

func newImagesCommand(c *CLI) *cobra.Command {
	var quiet, all, digests, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "images [OPTIONS]",
		Aliases: []string{"list-images"},
		Short:   "List images",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []types.ImageSummary
			err := c.imageCall(func(cl apiv1.ImagesClient, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
				return cl.List(ctx(), r)
			}, types.ImageListRequest{All: all, Filters: filters}, &list)
			if err != nil {
				return err
			}
			short := func(id string) string {
				if noTrunc {
					return id
				}
				return strings.TrimPrefix(id, "sha256:")[:12]
			}
			if quiet {
				// One line per row, as docker (an image with two names is listed twice).
				for _, im := range list {
					for range imageRows(im, short) {
						fmt.Fprintln(c.Out, short(im.ID))
					}
				}
				return nil
			}
			if format == "" {
				format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				if digests {
					format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				}
			}
			f, err := newFormatter(c.Out, "--format", format, map[string]string{
				"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
				"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
			})
			if err != nil {
				return withCode(ExitEngine, err)
			}
			for _, im := range list {
				for _, row := range imageRows(im, short) {
					if err := f.row(row); err != nil {
						return withCode(ExitEngine, err)
					}
				}
			}
			return f.flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only image IDs")
	fl.BoolVarP(&all, "all", "a", false, "show untagged images too")
	fl.BoolVar(&digests, "digests", false, "show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	fl.StringVar(&format, "format", "", "format the output with a Go template (table TEMPLATE for columns)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter: reference=PATTERN, dangling=true|false, before=IMAGE, since=IMAGE, label=KEY[=VALUE]")
	return cmd
}

// imageRows is one row per name (repo:tag); an untagged image is one <none> row.
func imageRows(im types.ImageSummary, short func(string) string) []imageRow {
	base := imageRow{ID: short(im.ID), CreatedSince: humanDuration(time.Since(im.Created)) + " ago",
		CreatedAt: im.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), Size: humanSize(im.Size), Containers: im.Containers}
	digestOf := func(repo string) string {
		for _, d := range im.RepoDigests {
			if r, dg, ok := strings.Cut(d, "@"); ok && r == repo {
				return dg
			}
		}
		return "<none>"
	}
	var rows []imageRow
	for _, t := range im.RepoTags {
		r := base
		i := strings.LastIndex(t, ":")
		r.Repository, r.Tag = t[:i], t[i+1:]
		r.Digest = digestOf(r.Repository)
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		r := base
		r.Repository, r.Tag, r.Digest = "<none>", "<none>", "<none>"
		if len(im.RepoDigests) > 0 {
			repo, dg, _ := strings.Cut(im.RepoDigests[0], "@")
			r.Repository, r.Digest = repo, dg
		}
		rows = append(rows, r)
	}
	return rows
}

// humanSize is docker's (go-units) HumanSize: decimal units, 3 significant digits.
func humanSize(n int64) string {
	f := float64(n)
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
