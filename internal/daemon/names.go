package daemon

import (
	"math/rand/v2"
	"strconv"
)

var (
	nameLeft  = []string{"brave", "calm", "clever", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud", "quiet", "sharp", "swift", "tender", "vivid", "wise", "zealous"}
	nameRight = []string{"babbage", "curie", "darwin", "euler", "fermat", "galois", "hopper", "kepler", "lovelace", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "turing", "volta", "wiles", "wozniak", "yonath"}
)

// randomName picks a docker-style name that is free now; after a few attempts it adds a
// number, as docker does.
func (d *Daemon) randomName(attempt int) string {
	for {
		n := nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
		if attempt > 3 {
			n += "_" + strconv.Itoa(rand.IntN(1000))
		}
		if _, err := d.store.Get(n); err != nil {
			return n
		}
		attempt++
	}
}
