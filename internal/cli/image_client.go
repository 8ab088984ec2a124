package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/moby/term"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// images returns the image API client on the daemon connection.
func (c *CLI) images() (apiv1.ImagesClient, error) {
	if _, err := c.client(); err != nil {
		return nil, err
	}
	if c.conn == nil {
		return nil, fmt.Errorf("no connection to the daemon for images")
	}
	return apiv1.NewImagesClient(c.conn), nil
}

// imageCall sends a JSON request to a unary image call and decodes the answer into out.
func (c *CLI) imageCall(call func(apiv1.ImagesClient, *apiv1.ImageRequest) (*apiv1.ImageReply, error), req, out any) error {
	cl, err := c.images()
	if err != nil {
		return err
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := call(cl, &apiv1.ImageRequest{Json: data})
	if err != nil {
		return c.apiErr(err)
	}
	if out != nil {
		return json.Unmarshal(r.Json, out)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// progressView shows a pull, push or load: one bar per layer on a terminal (mpb), else a
// line per layer when its state changes.
type progressView struct {
	out   io.Writer
	quiet bool
	p     *mpb.Progress
	mu    sync.Mutex
	bars  map[string]*mpb.Bar
	state map[string]string
	// shown is each bar's status for its decorator, which mpb calls from its render
	// goroutine: not under mu (a bar update under mu can wait for that goroutine).
	shown map[string]*atomic.Value
}

func newProgressView(out io.Writer, quiet bool) *progressView {
	v := &progressView{out: out, quiet: quiet, bars: map[string]*mpb.Bar{}, state: map[string]string{}, shown: map[string]*atomic.Value{}}
	if !quiet && isTerminal(out) {
		v.p = mpb.New(mpb.WithOutput(out), mpb.WithWidth(40))
	}
	return v
}

func (v *progressView) event(e types.ImageProgress) {
	if v.quiet {
		return
	}
	key := e.Layer
	if key == "" {
		key = e.Status
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p == nil {
		if v.state[key] != e.Status && e.Status != "Downloading" && e.Status != "Pushing" {
			if e.Layer != "" {
				fmt.Fprintf(v.out, "%s: %s\n", e.Layer, e.Status)
			} else {
				fmt.Fprintln(v.out, e.Status)
			}
		} else if v.state[key] != e.Status {
			fmt.Fprintf(v.out, "%s: %s\n", key, e.Status)
		}
		v.state[key] = e.Status
		return
	}
	b := v.bars[key]
	if b == nil {
		shown := &atomic.Value{}
		shown.Store(e.Status)
		v.shown[key] = shown
		b = v.p.AddBar(max(e.Total, 1),
			mpb.PrependDecorators(decor.Name(key+" ", decor.WC{C: decor.DindentRight}), decor.Any(func(decor.Statistics) string {
				return shown.Load().(string)
			}, decor.WC{W: 16, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")))
		v.bars[key] = b
	}
	v.state[key] = e.Status
	v.shown[key].Store(e.Status)
	if e.Total > 0 {
		b.SetTotal(e.Total, false)
	}
	switch e.Status {
	case "Pull complete", "Already exists", "Loaded", "Pushed":
		b.SetTotal(max(e.Total, 1), true)
	default:
		// Short of the total: mpb completes (and freezes) a bar whose current reaches it,
		// and the layer is complete only when the daemon says so.
		b.SetCurrent(min(e.Current, max(e.Total-1, 0)))
	}
}

func (v *progressView) done() {
	if v.p != nil {
		v.mu.Lock()
		for _, b := range v.bars {
			if !b.Completed() {
				b.Abort(false)
			}
		}
		v.mu.Unlock()
		v.p.Wait()
	}
}

// followEvents reads a progress stream to its result.
func (c *CLI) followEvents(recv func() (*apiv1.ImageEvent, error), view *progressView) (types.ImagePullResult, error) {
	defer view.done()
	var res types.ImagePullResult
	for {
		ev, err := recv()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, c.apiErr(err)
		}
		if len(ev.ProgressJson) > 0 {
			var p types.ImageProgress
			if json.Unmarshal(ev.ProgressJson, &p) == nil {
				view.event(p)
			}
		}
		if len(ev.ResultJson) > 0 {
			json.Unmarshal(ev.ResultJson, &res)
		}
	}
}

// pull pulls name, showing progress on out.
func (c *CLI) pull(name string, out io.Writer, quiet bool) (types.ImagePullResult, error) {
	cl, err := c.images()
	if err != nil {
		return types.ImagePullResult{}, err
	}
	data, _ := json.Marshal(types.ImageRefRequest{Name: name})
	stream, err := cl.Pull(ctx(), &apiv1.ImageRequest{Json: data})
	if err != nil {
		return types.ImagePullResult{}, c.apiErr(err)
	}
	return c.followEvents(stream.Recv, newProgressView(out, quiet))
}
