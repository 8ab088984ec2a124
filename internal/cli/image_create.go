package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/reference"
)

// ensureImage pulls the image of a create or run as --pull says (docker's default:
// when it is missing). Progress goes to stderr: stdout is the container's.
func (c *CLI) ensureImage(image, policy string) error {
	switch policy {
	case "missing", "always", "never":
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--pull %q: want missing, always or never", policy)
	}
	if image == "none" || policy == "never" {
		return nil
	}
	if policy == "missing" {
		cl, err := c.images()
		if err != nil {
			return err
		}
		data, _ := json.Marshal(types.ImageRefRequest{Name: image})
		_, err = cl.Inspect(ctx(), &apiv1.ImageRequest{Json: data})
		if err == nil {
			return nil
		}
		if e := c.apiErr(err); !errdefs.IsNotFound(e) {
			return e
		}
		if h := strings.TrimPrefix(image, "sha256:"); len(h) == 64 && reference.IsID(h) {
			return errdefs.Errorf(errdefs.ErrNotFound, "no such image: %s", image)
		}
		if isTerminal(c.Err) {
			// Only on a terminal: a script's failed run gets its one error line alone.
			fmt.Fprintf(c.Err, "Unable to find image '%s' locally\n", image)
		}
	}
	_, err := c.pull(image, c.Err, false)
	return err
}
