package opts

// The daemon and the full client link internal/image/reference, which gives ValidateCreate
// distribution's grammar for image references (refcheck.Full); so do these tests.
import _ "github.com/isulad-go/isulad/internal/image/reference"
